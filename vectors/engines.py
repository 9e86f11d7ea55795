"""Engine names on the command line -> runners from ``differential/runners``.

Imported lazily: the format, files and replay modules work without Unicorn or the
reference, and a missing engine is a one-line set-up error rather than a traceback.
"""

from __future__ import annotations

import importlib
from typing import Any, Dict, Tuple

from ground.case import Runner

# name -> (module, class or factory, keyword arguments). Unicorn with memory hooks
# installed takes other code paths inside Unicorn (flag bugs have hidden there: see the
# notes). Unicorn runs in a sacrificial child process (differential/sandbox.py): it aborts
# its process on some instructions, and that must fail one vector, not the whole run.
ENGINES: Dict[str, Tuple[str, str, Dict[str, Any]]] = {
    "reference": ("differential.runners.reference_runner", "ReferenceRunner", {}),
    "unicorn": ("differential.sandbox", "sandboxed_unicorn", {}),
    "unicorn-memhooks": ("differential.sandbox", "sandboxed_unicorn", {"memory_hooks": True}),
}


class EngineUnavailable(RuntimeError):
    """The engine's runner cannot be imported or built (not written yet, or not installed)."""


def make_runner(name: str) -> Runner:
    """A fresh runner for the engine called ``name`` (one of ``ENGINES``)."""
    if name not in ENGINES:
        raise EngineUnavailable(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")
    module_name, class_name, options = ENGINES[name]
    try:
        module = importlib.import_module(module_name)
        return getattr(module, class_name)(**options)
    except (ImportError, AttributeError) as exc:
        raise EngineUnavailable(f"engine {name!r} is not available ({exc}); "
                                f"is {module_name} installed?") from None
