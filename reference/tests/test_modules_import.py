"""Every module of ``reference`` imports, tests excluded. Both interpreters run it: under
pypy3 (``test_pypy_suite.py``, where only the standard library and pytest are installed)
it shows that the whole package, not only what the other tests reach, is Python 3.9 and
standard-library only."""

from __future__ import annotations

import importlib
import pkgutil

import reference


def test_every_module_imports() -> None:
    imported = []
    for info in pkgutil.walk_packages(reference.__path__, "reference."):
        if ".tests" not in info.name:
            importlib.import_module(info.name)
            imported.append(info.name)
    # the walk went down into the subpackages (a missing __init__.py would hide one)
    for name in ("reference.isa.decoder", "reference.system.paging", "reference.x87.fpu",
                 "reference.pc.machine", "reference.pc.devices.uart", "reference.benchmark"):
        assert name in imported
