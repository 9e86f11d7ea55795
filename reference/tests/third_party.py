"""Third-party oracles (Unicorn, Keystone, Capstone, Hypothesis) for the reference's tests.

``reference/`` itself uses the standard library only, and its tests run twice: under
CPython in ``.venv`` (which ``pyproject.toml`` gives every oracle) and under Debian's
pypy3 in ``.venv-pypy`` (pytest only: the oracles have no PyPy 3.9 wheels, and the point
of that run is to show the reference itself works there). A test that needs an oracle
asks for it through :func:`require`:

- under CPython a missing package is an error, as it is a declared dependency: the main
  suite never skips an oracle check quietly;
- under any other interpreter it is a skip that names the package.
"""

from __future__ import annotations

import importlib
import platform
from types import ModuleType

import pytest


def require(module: str) -> ModuleType:
    """Import ``module``; skip the calling test (or module, at import) when it is missing
    and the interpreter is not CPython. The skip is reported at the caller's line."""
    __tracebackhide__ = True
    if platform.python_implementation() == "CPython":
        return importlib.import_module(module)
    return pytest.importorskip(
        module, reason=f"{module} is a CPython-only oracle (the PyPy run has pytest only)")
