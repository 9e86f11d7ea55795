"""Engine names on the command line -> runners (the catalogue's ``runner`` column).

Imported lazily: the format, files and replay modules work without Unicorn or the
reference, and a missing engine is a one-line set-up error rather than a traceback.
"""

from __future__ import annotations

import importlib
from typing import Any, Dict, Tuple

from ground.case import Runner
from ground.engines import CATALOGUE

# name -> (module, class or factory, keyword arguments): every engine of the catalogue
# (``ground.engines``) that runs one case at a time, variants included.
ENGINES: Dict[str, Tuple[str, str, Dict[str, Any]]] = {
    entry.name: (*entry.runner.split(":"), dict(entry.options))
    for entry in CATALOGUE if entry.runner
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
