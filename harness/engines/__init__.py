"""Engines by name. Each starts an image and hands back a serial-console Session."""

from __future__ import annotations

from typing import Dict, Tuple

from harness.engines.base import (  # noqa: F401 - the interface, re-exported
    BootImage,
    Engine,
    EngineError,
    Metrics,
    Session,
    SessionClosed,
)

ENGINE_NAMES: Tuple[str, ...] = ("v86", "qemu")


def get_engine(name: str) -> Engine:
    """The engine called ``name``; a clear error naming the choices otherwise."""
    engines: Dict[str, type] = _engine_classes()
    if name not in engines:
        raise EngineError(f"unknown engine {name!r}; choose from {', '.join(sorted(engines))}")
    return engines[name]()


def _engine_classes() -> Dict[str, type]:
    from harness.engines.local import LocalShellEngine
    from harness.engines.qemu import QemuEngine
    from harness.engines.v86 import V86Engine

    return {"v86": V86Engine, "qemu": QemuEngine, "local": LocalShellEngine}
