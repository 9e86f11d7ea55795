"""The size of PyPy's nursery for the reference, set by whoever starts it under PyPy.

PyPy's garbage collector allocates young objects in a nursery. Unless
``PYPY_GC_NURSERY`` says otherwise, the nursery is half the last-level cache the CPU
reports, and ``4M`` where PyPy cannot read a cache size. A virtual machine may report a
huge cache.
- An Intel Xeon VM (family 6, model 167) reported 480 MiB of L3, so PyPy's nursery was
  240 MB, far larger than any cache.
- The tiny image's boot to the prompt on the interpreter (``python -m reference.pc``,
  PyPy 3.9) then took 16.3-17.0 s of CPU. With any nursery from 512 KiB to 16 MiB it
  took 10.8-12.1 s; with 32 MiB, 14.8 s (issue 14).
- The benchmark loops (``reference.benchmark``) allocate little and ran at the same
  speed either way.

So every launcher of the reference under PyPy in this project sets ``NURSERY`` (through
``environment``), unless the caller has set the variable. It is PyPy's own fallback size.
The PC reports the size its process got (``nursery_bytes``) and warns on stderr when the
size is over ``LARGE``.
"""

from __future__ import annotations

import platform
from typing import Dict, Mapping, Optional

VARIABLE = "PYPY_GC_NURSERY"
NURSERY_BYTES = 4 << 20
NURSERY = f"{NURSERY_BYTES >> 20}M"
LARGE = 32 << 20
"""A nursery over this is worth a warning: 32 MiB already cost the boot ~30 %."""


def environment(env: Mapping[str, str]) -> Dict[str, str]:
    """``env`` with ``PYPY_GC_NURSERY`` set to ``NURSERY``, unless ``env`` sets it. It
    is harmless for CPython, which ignores the variable."""
    out = dict(env)
    out.setdefault(VARIABLE, NURSERY)
    return out


def nursery_bytes() -> Optional[int]:
    """The nursery of this process's PyPy, in bytes; None under CPython."""
    if platform.python_implementation() != "PyPy":
        return None
    import gc

    return int(gc.get_stats()._s.nursery_size)  # type: ignore[attr-defined]


def warning(size: Optional[int], env: Mapping[str, str]) -> Optional[str]:
    """What to tell the user about a nursery of ``size`` bytes, or None: a warning when
    the size is over ``LARGE`` and the user did not ask for that size."""
    if size is None or size <= LARGE or VARIABLE in env:
        return None
    return (f"PyPy's GC nursery is {size >> 20} MiB (half the last-level cache this CPU "
            f"reports). Sizes this large slowed the reference's boot by up to 1.5x. "
            f"Set {VARIABLE}={NURSERY} (x86lab's own launchers do).")
