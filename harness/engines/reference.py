"""The reference PC as an engine: ``python -m reference.pc`` boots the image with the
serial console on its stdio, as the v86 engine runs Node.

It runs under Debian's PyPy when that is installed (``pypy3``; the reference is written
for it) and under this interpreter otherwise; ``python`` chooses another. Its runner
speaks the v86 runner's metric protocol (``X86LAB`` lines on stderr), so instruction
counts at each boot mark are exact, and its clock is virtual: two boots of one image
retire the same instructions to the prompt.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Dict, Optional, Sequence

from ground.cache import REPO_ROOT
from harness.engines.base import BootImage, CountingSession, EngineError, Session
from harness.stages import MARKS
from reference.pypy_gc import environment

PYPY = "pypy3"


def default_python() -> str:
    """PyPy when installed (about ten times faster on the reference), else this Python."""
    return shutil.which(PYPY) or sys.executable


class ReferenceEngine:
    name = "reference"

    def __init__(self, python: Optional[str] = None) -> None:
        self.python = python or os.environ.get("X86LAB_REFERENCE_PYTHON") or default_python()

    def command(self, image: BootImage, memory_mib: int, extra: Sequence[str] = ()) -> list:
        """The exact command line; ``extra`` goes to ``python -m reference.pc``."""
        argv = [self.python, "-m", "reference.pc", "--kernel", str(image.kernel),
                "--append", image.cmdline, "--memory", str(memory_mib)]
        if image.initrd:
            argv += ["--initrd", str(image.initrd)]
        for name, pattern in MARKS:
            argv += ["--stage", f"{name}={pattern.decode('latin-1')}"]
        return argv + list(extra)

    def environment(self, cache: Optional[Path] = None) -> Dict[str, str]:
        """The child's environment: this checkout on its path, PyPy's nursery at a size
        that fits a cache (``reference.pypy_gc``: PyPy's own choice made the boot 1.5x
        slower on a VM that reports a huge L3), ``cache`` as its ``X86LAB_CACHE``."""
        env = environment(dict(os.environ, PYTHONPATH=str(REPO_ROOT)))
        if cache is not None:
            env["X86LAB_CACHE"] = str(cache)
        return env

    def start(
        self, image: BootImage, memory_mib: int = 128, extra: Sequence[str] = (),
        log_path: Optional[Path] = None,
    ) -> Session:
        if shutil.which(self.python) is None and not Path(self.python).exists():
            raise EngineError(f"{self.python} not found (the Python that runs the reference PC)")
        session = CountingSession(self.name, self.command(image, memory_mib, extra),
                                  log_path, env=self.environment())
        # An interpreter in Python: the stage timeouts stretch. Measured under PyPy: the
        # Debian kernel's first line after 2.39 G instructions (its xz decompression),
        # 276-353 s, against the 60 s a stage gets by default; CPython is ~8x slower.
        session.boot_slowdown = 8.0 if "pypy" in Path(self.python).name else 64.0
        return session
