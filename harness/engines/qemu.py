"""QEMU (TCG) as an engine: ``qemu-system-i386 -kernel -initrd -append``, serial on stdio.

QEMU is the fast, well-trodden peer: when a check fails on v86 but passes here, suspect
v86; when both fail, suspect the image. It cannot count guest instructions cheaply (the
``-icount`` plugin route costs a lot), so its metrics carry wall times only.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional, Sequence

from harness.engines.base import BootImage, EngineError, ProcessSession, Session

QEMU = "qemu-system-i386"


class QemuEngine:
    name = "qemu"

    def command(self, image: BootImage, memory_mib: int, extra: Sequence[str] = ()) -> list:
        """The exact command line, separate so that it can be shown and tested."""
        argv = [QEMU, "-kernel", str(image.kernel)]
        if image.initrd:
            argv += ["-initrd", str(image.initrd)]
        argv += [
            "-append", image.cmdline, "-m", str(memory_mib), "-accel", "tcg",
            "-no-reboot", "-serial", "stdio", "-display", "none", "-monitor", "none",
        ]
        return argv + list(extra)

    def start(
        self, image: BootImage, memory_mib: int = 256, extra: Sequence[str] = (),
        log_path: Optional[Path] = None,
    ) -> Session:
        if shutil.which(QEMU) is None:
            raise EngineError(f"{QEMU} not found; install it: apt-get install qemu-system-x86")
        return ProcessSession(self.name, self.command(image, memory_mib, extra), log_path)
