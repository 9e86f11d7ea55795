"""The size of PyPy's nursery for the reference, set by whoever starts it under PyPy.

PyPy's garbage collector allocates young objects in a nursery. Unless
``PYPY_GC_NURSERY`` says otherwise, the nursery is half the last-level cache the CPU
reports, and ``4M`` where PyPy cannot read a cache size. A virtual machine may report a
huge cache.
- An Intel Xeon VM (family 6, model 167) reported 480 MiB of L3, so PyPy's nursery was
  240 MB, far larger than any cache.
- The tiny image's boot to the prompt on the interpreter (``python -m reference.pc``,
  PyPy 3.9) then took 16.4-16.5 s, against 11.4-11.7 s with a 4 MiB nursery (three
  pairs, alternating, on a quiet machine). Any size from 512 KiB to 16 MiB did as well
  (8 and 16 MiB: 10.6-11.1 s); 32 MiB took ~30 % longer (issue 14).
- The GC's own time was not the cost: 0.26 s at 240 MB, 0.60 s at 4 MiB. The cost was
  cache misses, with young objects spread over 240 MB.
- The reference's tests under PyPy (``reference/tests/test_pypy_suite.py``) took
  59-61 s with 240 MB, 58.8-61.2 s with 16 MiB, 62 s with 8 MiB and 70-73 s with 4 MiB.
  Short runs that keep what they allocate pay for each collection.
- The benchmark loops (``reference.benchmark``) allocate little and ran at the same
  speed either way.

So every launcher of the reference under PyPy in this project sets ``NURSERY`` (16 MiB,
through ``environment``), unless the caller has set the variable. The PC reports the
size its process got (``nursery_bytes``) and warns on stderr when the size is over
``LARGE`` and nobody chose it: no variable, or one PyPy could not read (``requested``),
which PyPy ignores without a word.
"""

from __future__ import annotations

import platform
from typing import Dict, Mapping, Optional

VARIABLE = "PYPY_GC_NURSERY"
NURSERY_BYTES = 16 << 20
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
    """The nursery of this process's PyPy, in bytes; None under CPython. (Read from the
    stats' raw record: the public ``nursery_size`` is text, such as "240.0MB".)"""
    if platform.python_implementation() != "PyPy":
        return None
    import gc

    return int(gc.get_stats()._s.nursery_size)  # type: ignore[attr-defined]


_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def requested(text: str) -> Optional[int]:
    """The bytes a ``PYPY_GC_NURSERY`` value asks for, read as PyPy reads it (a number,
    an optional K, M or G, an optional B: "16M", "512k", "4.5MB", "1e6"), or None for
    text PyPy cannot read: it then keeps its own size, and says nothing. (PyPy may
    still round a size it reads, or raise one below its minimum.)"""
    value = text.strip()
    if len(value) > 1 and value[-1] in "bB":
        value = value[:-1]
    factor = _UNITS.get(value[-1:].upper(), 1)
    if factor > 1:
        value = value[:-1]
    try:
        number = float(value)
    except ValueError:
        return None
    return int(number * factor) if number > 0 else None


def warning(size: Optional[int], env: Mapping[str, str]) -> Optional[str]:
    """What to tell the user about a nursery of ``size`` bytes, or None: a warning when
    the size is over ``LARGE`` and the user did not choose it (no variable, or one PyPy
    could not read)."""
    if size is None or size <= LARGE:
        return None
    asked = env.get(VARIABLE)
    if asked is not None and requested(asked) is not None:
        return None
    why = ("half the last-level cache this CPU reports" if asked is None
           else f"PyPy's own choice: it could not read {VARIABLE}={asked}")
    return (f"PyPy's GC nursery is {size >> 20} MiB ({why}). Sizes this large slowed "
            f"the reference's boot by up to 1.5x. Set {VARIABLE}={NURSERY} (x86lab's own "
            f"launchers do).")
