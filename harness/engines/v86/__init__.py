"""v86 as an engine: our Node runner (``runner.js`` here) boots the image headless.

v86 is the engine the project's web pages will run, so its behaviour is the one to pin
down; it also counts guest instructions, which makes boot cost comparable across machines
(wall time is not: the host is shared). The runner reports the count at each boot mark and
on SIGUSR1 as ``X86LAB {json}`` lines on stderr; stdout is the raw serial line.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Optional, Sequence, Tuple

from harness.engines.base import BootImage, CountingSession, EngineError, Session
from harness.stages import MARKS

HERE = Path(__file__).resolve().parent
RUNNER = HERE / "runner.js"
PROFILER = HERE / "profiler.js"
"""The boot profiler runner.js imports; the web page loads the same file (?profile=1)."""
BIOS = Path("/usr/share/seabios/bios.bin")
VGA_BIOS = Path("/usr/share/seabios/vgabios-stdvga.bin")
INITRD_BASE_MIB = 64  # v86 loads the initrd at 64 MiB, so RAM must reach past its end
NET_DEVICE = "ne2k"
"""The NIC every v86 guest gets, with or without a network backend: v86's default, and
part of the device set a web page's saved state is pinned to."""
WEBSOCKET_NODE_MAJOR = 22
"""Node versions before this need --experimental-websocket for v86's Wisp adapter."""


def net_device(relay_url: Optional[str] = None, kind: str = NET_DEVICE) -> dict:
    """v86's ``net_device`` option: the NIC, and a Wisp relay behind it if given (v86
    takes only ``wisp://``/``wisps://`` URLs for Wisp; it answers DHCP itself)."""
    device: dict = {"type": kind}
    if relay_url:
        device["relay_url"] = relay_url
    return device


def _node_websocket_flags() -> Tuple[str, ...]:
    try:
        version = subprocess.run(["node", "--version"], capture_output=True, text=True,
                                 timeout=30).stdout
        major = int(version.strip().lstrip("v").split(".")[0])
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return ()
    return ("--experimental-websocket",) if major < WEBSOCKET_NODE_MAJOR else ()


def _check_installed() -> None:
    if shutil.which("node") is None:
        raise EngineError("node not found; install Node.js (apt-get install nodejs)")
    if not (HERE / "node_modules" / "v86" / "build" / "v86.wasm").exists():
        raise EngineError(f"v86 is not installed; run: (cd {HERE} && npm ci)")
    if not BIOS.exists():
        raise EngineError(f"{BIOS} missing; install it: apt-get install seabios")


class V86Engine:
    """v86 in Node; ``relay_url`` (``wisp://HOST:PORT/``) puts a Wisp relay behind the
    guest's NIC, ``nic`` picks the card (``ne2k``, ``virtio``, or ``none``)."""

    name = "v86"

    def __init__(self, relay_url: Optional[str] = None, nic: str = NET_DEVICE) -> None:
        self.relay_url = relay_url
        self.nic = nic

    def command(self, image: BootImage, memory_mib: int, extra: Sequence[str] = ()) -> list:
        """``node [extra...] runner.js CONFIG``: ``extra`` are Node options (e.g. a heap size)."""
        if self.relay_url:
            extra = (*_node_websocket_flags(), *extra)
        config = {
            "bios": str(BIOS),
            "vga_bios": str(VGA_BIOS) if VGA_BIOS.exists() else None,
            "bzimage": str(image.kernel),
            "initrd": str(image.initrd) if image.initrd else None,
            "cmdline": image.cmdline,
            "memory_mib": memory_mib,
            "stages": [[name, pattern.decode("latin-1")] for name, pattern in MARKS],
            "net_device": net_device(self.relay_url, self.nic),
        }
        return ["node", *extra, str(RUNNER), json.dumps(config)]

    def start(
        self, image: BootImage, memory_mib: int = 256, extra: Sequence[str] = (),
        log_path: Optional[Path] = None,
    ) -> Session:
        _check_installed()
        if image.initrd:
            need = INITRD_BASE_MIB + Path(image.initrd).stat().st_size / 2**20
            if memory_mib <= need:
                raise EngineError(
                    f"v86 needs more than {need:.0f} MiB of RAM for this initrd (it is loaded"
                    f" at {INITRD_BASE_MIB} MiB); got {memory_mib} MiB, try --memory 256"
                )
        return CountingSession("v86", self.command(image, memory_mib, extra), log_path)
