"""Engine command lines and set-up errors (no guest is booted here)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.engines import EngineError, get_engine
from harness.engines.qemu import QemuEngine
from harness.engines.v86 import INITRD_BASE_MIB, V86Engine


@dataclass
class Image:
    kernel: Path
    initrd: Path
    cmdline: str = "console=ttyS0"


@pytest.fixture
def image(tmp_path: Path) -> Image:
    (tmp_path / "bzImage").write_bytes(b"k")
    (tmp_path / "initrd").write_bytes(bytes(3 * 2**20))  # 3 MiB
    return Image(tmp_path / "bzImage", tmp_path / "initrd")


def test_qemu_command_puts_the_serial_line_on_stdio(image: Image) -> None:
    argv = QemuEngine().command(image, 96, ["-cpu", "pentium"])
    assert argv[0] == "qemu-system-i386"
    def after(flag: str) -> str:
        return argv[argv.index(flag) + 1]

    assert (after("-kernel"), after("-initrd")) == (str(image.kernel), str(image.initrd))
    assert (after("-m"), after("-serial"), after("-append")) == ("96", "stdio", "console=ttyS0")
    assert "-no-reboot" in argv and argv[-2:] == ["-cpu", "pentium"]


def test_v86_runner_gets_the_image_and_stage_patterns(image: Image) -> None:
    argv = V86Engine().command(image, 128)
    config = json.loads(argv[-1])
    assert (config["bzimage"], config["memory_mib"]) == (str(image.kernel), 128)
    assert [name for name, _ in config["stages"]] == ["kernel", "init", "prompt"]


def test_v86_refuses_memory_that_the_initrd_would_not_fit(image: Image) -> None:
    with pytest.raises(EngineError, match="needs more than 67 MiB"):
        V86Engine().start(image, memory_mib=INITRD_BASE_MIB + 2)


def test_unknown_engine_names_the_choices() -> None:
    with pytest.raises(EngineError, match="choose from bochs, local, qemu, reference, v86"):
        get_engine("pcem")
