"""Engines by name. Each starts an image and hands back a serial-console Session."""

from __future__ import annotations

from typing import Tuple

from ground.engines import BOOTS_IMAGE, BY_NAME, engines, load
from harness.engines.base import (  # noqa: F401 - the interface, re-exported
    BootImage,
    Engine,
    EngineError,
    Metrics,
    Session,
    SessionClosed,
)

ENGINE_NAMES: Tuple[str, ...] = engines(BOOTS_IMAGE)
"""The engines that boot an image, from the catalogue (``ground.engines``)."""


def get_engine(name: str) -> Engine:
    """The engine called ``name``; a clear error naming the choices otherwise."""
    entry = BY_NAME.get(name)
    if entry is None or not entry.boots:
        choices = sorted(e.name for e in BY_NAME.values() if e.boots)
        raise EngineError(f"unknown engine {name!r}; choose from {', '.join(choices)}")
    return load(entry.boots)()
