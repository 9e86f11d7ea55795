"""Every conformance suite, one module each: a module here that defines ``SUITE`` (a
``conformance.suite.Suite``) is a suite, its ``rank`` its column. With the engine
catalogue (``ground.engines``) this gives the matrix's axes and which cells apply."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Dict, Tuple, Type

from conformance.suite import Suite
from ground.engines import BY_NAME, engines


def _discover() -> Tuple[Type[Suite], ...]:
    found = []
    for module in pkgutil.iter_modules(__path__):
        suite = getattr(importlib.import_module(f"{__name__}.{module.name}"), "SUITE", None)
        if suite is not None:
            found.append(suite)
    return tuple(sorted(found, key=lambda suite: suite.rank))


SUITE_CLASSES: Tuple[Type[Suite], ...] = _discover()
BY_SUITE: Dict[str, Type[Suite]] = {suite.name: suite for suite in SUITE_CLASSES}
SUITES: Tuple[str, ...] = tuple(BY_SUITE)

# The matrix's rows: every engine of the catalogue that can run some suite here.
ENGINES: Tuple[str, ...] = tuple(
    name for name in engines() if any(s.applies(BY_NAME[name]) for s in SUITE_CLASSES))
APPLICABLE: Dict[str, Tuple[str, ...]] = {
    name: tuple(s.name for s in SUITE_CLASSES if s.applies(BY_NAME[name])) for name in ENGINES}
"""Which suites each engine can run: an engine that boots nothing steps vectors only, and
this CPU (``native``) is the oracle of the program suites, not a column of them."""

__all__ = ["APPLICABLE", "BY_SUITE", "ENGINES", "SUITES", "SUITE_CLASSES"]
