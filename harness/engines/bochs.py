"""Bochs as an engine: its BIOS boots a disk made from the image, COM1 is a socket of ours.

Bochs is the accuracy reference among open emulators: an interpreter written instruction
by instruction from the manuals. It has no ``-kernel``, so ``images.bootdisk`` puts the
same bzImage, initramfs and command line on a SYSLINUX disk. Debian's build (2.7) has no
headless display and its debugger is compiled in, so the configuration below is what
runs without a window or a prompt (notes/reference-system-and-speed.md, "Bochs
headless"): the RFB display that never waits for a viewer, a dummy sound driver (ALSA
aborts without one), and the debugger told to ``c``ontinue from a command file.

The guest's first serial port connects to a socket we listen on (127.0.0.1, a free
port), which carries the bytes exactly (a pty would add its own line discipline).
``clock: sync=none`` makes guest time follow executed instructions, so a run does not
depend on how busy the host is. Instruction counts are not reported: Bochs gives them
only through its debugger, which would have to stop the guest to answer.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

from harness.engines.base import BootImage, EngineError, ProcessSession, Session
from images.bootdisk import BootDisk, ensure_boot_disk
from images.errors import ImageError

BOCHS = "bochs"
BIOS_DIR = Path("/usr/share/bochs")
ROMS = {"BIOS-bochs-latest": "bochsbios", "VGABIOS-lgpl-latest": "vgabios"}
"""The ROM images Bochs needs and the Debian package of each."""
CPU_MODEL = "core2_penryn_t9600"
"""A CPU with SSE3: the default (bx_generic, an Athlon without it) raised #UD on FISTTP in
Linux's test_FISTTP selftest, which does not ask CPUID first."""
IPS = 16_000_000
"""Instructions per guest second (``clock: sync=none``), near what Bochs runs here, so a
guest-side time limit means about as many wall seconds as it says. At the default 4 M a
guest's ``timeout 60`` was 240 M instructions, 14 s of wall time: ldt_gdt was cut off."""
CONNECT_TIMEOUT = 30.0
"""Seconds Bochs may take from exec to connecting COM1 (it does so while powering on)."""


def bochsrc(disk: BootDisk, memory_mib: int, port: int, redolog: Path,
            extra: Sequence[str] = ()) -> str:
    """The configuration file: BIOS, the boot disk (writes go to ``redolog``, so sessions
    share the cached disk untouched), COM1 to ``127.0.0.1:port``, no window, no sound.
    ``extra`` lines are appended (a later line overrides an earlier one)."""
    lines = [
        f"megs: {memory_mib}",
        f"romimage: file={BIOS_DIR / 'BIOS-bochs-latest'}",
        f"vgaromimage: file={BIOS_DIR / 'VGABIOS-lgpl-latest'}",
        'display_library: rfb, options="timeout=0"',
        "sound: driver=dummy",
        "speaker: enabled=0",
        "mouse: enabled=0",
        f"ata0-master: type=disk, path={disk.path}, mode=volatile, journal={redolog}, "
        f"cylinders={disk.cylinders}, heads={disk.heads}, spt={disk.sectors_per_track}",
        "boot: disk",
        f"com1: enabled=1, mode=socket-client, dev=127.0.0.1:{port}",
        f"cpu: model={CPU_MODEL}, ips={IPS}",
        "clock: sync=none, time0=local",
        "log: -",
        "panic: action=fatal",
        "error: action=report",
        "info: action=ignore",
        "debug: action=ignore",
    ]
    return "\n".join(lines + list(extra)) + "\n"


def _accept(listener: socket.socket, proc: subprocess.Popen, timeout: float) -> int:
    """Wait for Bochs to connect COM1 and return the connection's descriptor; an
    EngineError if Bochs exits or does not connect within ``timeout``."""
    listener.settimeout(0.2)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            connection, _ = listener.accept()
        except socket.timeout:
            if proc.poll() is not None:
                raise EngineError(f"bochs exited with status {proc.returncode} before "
                                  "connecting its serial port") from None
            continue
        connection.setblocking(True)
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection.detach()
    raise EngineError(f"bochs did not connect its serial port within {timeout:g} s")



def missing_bochs() -> str:
    """Why Bochs cannot run here (the program or a BIOS image is missing, with the apt
    package to install), or "" when it can."""
    if shutil.which(BOCHS) is None:
        return "bochs not found; install it: apt-get install bochs bochsbios vgabios"
    for rom, package in ROMS.items():
        if not (BIOS_DIR / rom).exists():
            return f"{BIOS_DIR / rom} not found; install it: apt-get install {package}"
    return ""

class BochsSession(ProcessSession):
    """A Bochs process and its COM1 socket; ``stop()`` also removes its scratch folder."""

    boot_slowdown = 3.0
    """Debian's XZ-compressed kernel took 93 s here from power-on to "Linux version" (the
    default allows 60 s) and 88-129 s to the prompt; the tiny kernel 7-11 s."""

    def __init__(self, argv: Sequence[str], listener: socket.socket, scratch: Path,
                 log_path: Optional[Path]) -> None:
        self.scratch = scratch
        try:
            # Bochs holds no state worth a clean shutdown (writes go to a scratch redolog).
            super().__init__("bochs", argv, log_path, stop_signal=signal.SIGKILL,
                             console=lambda proc: self._connect(listener, proc))
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        finally:
            listener.close()

    def _connect(self, listener: socket.socket, proc: subprocess.Popen) -> int:
        try:
            return _accept(listener, proc, CONNECT_TIMEOUT)
        except EngineError as exc:
            try:
                proc.wait(timeout=1)  # let its last words reach the stderr reader
            except subprocess.TimeoutExpired:
                pass
            time.sleep(0.1)
            tail = self.stderr_tail()
            raise EngineError(f"{exc}; its output ends:\n{tail}" if tail else str(exc)) from None

    def stop(self) -> None:
        super().stop()
        shutil.rmtree(self.scratch, ignore_errors=True)


class BochsEngine:
    name = "bochs"

    def command(self, config: Path, commands: Path) -> list:
        """``-q``: no start menu; ``-rc``: debugger commands (``c``: run) instead of stdin."""
        return [BOCHS, "-q", "-f", str(config), "-rc", str(commands)]

    def start(
        self, image: BootImage, memory_mib: int = 256, extra: Sequence[str] = (),
        log_path: Optional[Path] = None,
    ) -> Session:
        """Power on ``image``; ``extra`` are bochsrc lines added to the generated ones."""
        missing = missing_bochs()
        if missing:
            raise EngineError(missing)
        try:
            disk = ensure_boot_disk(image)
        except ImageError as exc:
            raise EngineError(f"cannot make the Bochs boot disk: {exc}") from None
        scratch = Path(tempfile.mkdtemp(prefix="x86lab-bochs-"))
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        config, commands = scratch / "bochsrc", scratch / "commands"
        config.write_text(bochsrc(disk, memory_mib, listener.getsockname()[1],
                                  scratch / "redolog", extra))
        commands.write_text("c\n")
        return BochsSession(self.command(config, commands), listener, scratch, log_path)
