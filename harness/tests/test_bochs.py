"""Bochs: its generated configuration, its boot disk, its set-up errors, and one real boot.

The boot disk is built for real (mtools and syslinux are quick) from stand-in files, in a
cache of the test's own; only the last test boots Linux.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from ground import assets
from harness.engines import EngineError
from harness.engines.bochs import BochsEngine, _accept, bochsrc
from images import bootdisk
from images.errors import ImageError


@dataclass
class Image:
    kernel: Path
    initrd: Path
    cmdline: str = "console=ttyS0 panic=-1"


@pytest.fixture
def image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Image:
    monkeypatch.setenv("X86LAB_CACHE", str(tmp_path / "cache"))
    (tmp_path / "bzImage").write_bytes(b"kernel bytes" * 1000)
    (tmp_path / "initrd").write_bytes(bytes(range(256)) * 4096)  # 1 MiB
    return Image(tmp_path / "bzImage", tmp_path / "initrd")


def _mtools(*argv: str) -> bytes:
    return subprocess.run(argv, check=True, capture_output=True).stdout


def test_the_boot_disk_holds_the_files_the_command_line_and_syslinux(image: Image) -> None:
    disk = bootdisk.ensure_boot_disk(image)
    img = str(disk.path)
    assert _mtools("mtype", "-i", img, "::linux") == image.kernel.read_bytes()
    assert _mtools("mtype", "-i", img, "::initrd") == image.initrd.read_bytes()
    config = _mtools("mtype", "-i", img, "::syslinux.cfg").decode()
    assert "  APPEND console=ttyS0 panic=-1\n" in config and "INITRD initrd" in config
    listing = _mtools("mdir", "-a", "-i", img, "::").decode().upper()
    assert "LDLINUX" in listing  # installed by syslinux, not by us
    sector = disk.path.read_bytes()[:512]
    assert sector[3:11] == b"SYSLINUX" and sector[510:] == b"\x55\xaa"
    size = disk.path.stat().st_size
    assert size == disk.cylinders * disk.heads * disk.sectors_per_track * 512
    assert disk.manifest["disk"]["size"] == size


def test_the_boot_disk_is_cached_by_its_inputs(image: Image) -> None:
    first = bootdisk.ensure_boot_disk(image)
    stamp = first.path.stat().st_mtime_ns
    assert bootdisk.ensure_boot_disk(image).path == first.path
    assert first.path.stat().st_mtime_ns == stamp  # not rebuilt
    image.cmdline += " quiet"
    assert bootdisk.ensure_boot_disk(image).path != first.path


def test_a_damaged_boot_disk_is_rebuilt(image: Image) -> None:
    disk = bootdisk.ensure_boot_disk(image)
    with open(disk.path, "r+b") as handle:
        handle.seek(600)
        handle.write(b"\xff")
    again = bootdisk.ensure_boot_disk(image)
    assert again.path == disk.path
    assert assets.sha256_file(again.path) == again.manifest["disk"]["sha256"]


def test_a_multi_line_command_line_is_refused() -> None:
    with pytest.raises(ImageError, match="one line"):
        bootdisk.syslinux_config("console=ttyS0\nDEFAULT evil", True)


@pytest.mark.parametrize("payload", [0, 1, bootdisk.CYLINDER_BYTES * 3])
def test_the_disk_has_room_for_its_payload(payload: int) -> None:
    cylinders = bootdisk.cylinders_for(payload)
    assert cylinders * bootdisk.CYLINDER_BYTES >= payload + bootdisk.SLACK_BYTES
    assert (cylinders - 1) * bootdisk.CYLINDER_BYTES < payload + bootdisk.SLACK_BYTES


def test_bochsrc_wires_com1_to_our_port_and_keeps_the_disk_untouched(image: Image,
                                                                      tmp_path: Path) -> None:
    disk = bootdisk.ensure_boot_disk(image)
    text = bochsrc(disk, 96, 4321, tmp_path / "journal", ["cpu: ips=1000000"])
    lines = text.splitlines()
    assert "megs: 96" in lines
    assert "com1: enabled=1, mode=socket-client, dev=127.0.0.1:4321" in lines
    ata = next(line for line in lines if line.startswith("ata0-master:"))
    assert f"path={disk.path}" in ata and "mode=volatile" in ata
    assert f"cylinders={disk.cylinders}, heads=16, spt=63" in ata
    assert lines[-1] == "cpu: ips=1000000"


def test_missing_bochs_is_a_one_line_set_up_error(image: Image,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("harness.engines.bochs.shutil.which", lambda name: None)
    with pytest.raises(EngineError, match="apt-get install bochs"):
        BochsEngine().start(image)


def test_an_engine_that_exits_before_connecting_is_reported(tmp_path: Path) -> None:
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    started = time.monotonic()
    with pytest.raises(EngineError, match="exited with status 0 before connecting"):
        _accept(listener, proc, timeout=30)
    assert time.monotonic() - started < 10
    listener.close()


BOOT_BOUND_S = 120.0
"""A tiny boot took 9-11 s here (2 shared cores); the bound leaves room for a busy host."""


@pytest.mark.boot
@pytest.mark.slow
def test_bochs_boots_the_tiny_kernel_to_a_shell_that_answers() -> None:
    from harness.guest import find_image, start_guest
    from harness.stages import StageTimeouts

    started = time.monotonic()
    guest = start_guest("bochs", find_image("tiny"), "tiny",
                        timeouts=StageTimeouts(kernel=BOOT_BOUND_S, init=BOOT_BOUND_S,
                                               prompt=BOOT_BOUND_S))
    try:
        assert time.monotonic() - started < BOOT_BOUND_S
        assert guest.console.run_check("uname -m").strip() == "i686"
        assert guest.console.run_check("echo $((6 * 7))").strip() == "42"
        marks = guest.session.metrics().marks
        assert set(marks) >= {"kernel", "init", "prompt"}
    finally:
        guest.stop()
    assert guest.session.proc.poll() is not None  # stop() ended Bochs
