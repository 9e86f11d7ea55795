"""Boots that go wrong must say where, with the console excerpt (scripted consoles)."""

from __future__ import annotations

import pytest

from harness.console import BootFailure, Console
from harness.stages import StageTimeouts
from harness.tests.fake_session import ScriptedSession
from images.contract import BOOT_MARKER, PROMPT

SHORT = StageTimeouts(kernel=0.3, init=0.3, prompt=0.3)
KERNEL = b"SeaBIOS\r\n[    0.000000] Linux version 6.1.0 (x86lab)\r\n"
USERSPACE = f"{BOOT_MARKER}\r\n{PROMPT}".encode()


def boot(chunks: list, ends: bool = False) -> Console:
    console = Console(ScriptedSession(chunks, ends))
    console.wait_for_boot(SHORT)
    return console


def test_a_clean_boot_passes() -> None:
    assert b"Linux version" in boot([KERNEL, b"[    0.5] Run /init\r\n", USERSPACE]).log


def test_missing_stage_names_it_and_shows_the_console_end() -> None:
    with pytest.raises(BootFailure, match="x86lab-init.*within 0.3 s of kernel") as info:
        boot([KERNEL, b"[    1.0] stuck in a driver\r\n"])
    assert info.value.stage == "init"
    assert "stuck in a driver" in info.value.excerpt


def test_panic_fails_at_once_with_the_panic_text() -> None:
    panic = b"[    2.0] Kernel panic - not syncing: VFS: Unable to mount root fs\r\n"
    with pytest.raises(BootFailure, match="panicked") as info:
        boot([KERNEL, panic])
    assert "Unable to mount root fs" in info.value.excerpt


def test_warning_before_the_prompt_fails_the_boot() -> None:
    warning = b"[    1.0] WARNING: CPU: 0 PID: 1 at mm/slab.c:42 foo+0x1/0x2\r\n"
    with pytest.raises(BootFailure, match="1 failure line.*WARNING:") as info:
        boot([KERNEL, warning, USERSPACE])
    assert "mm/slab.c:42" in info.value.excerpt


def test_engine_exit_before_the_kernel_is_reported() -> None:
    with pytest.raises(BootFailure, match="stopped before kernel.*status 1"):
        boot([b"SeaBIOS\r\n"], ends=True)


def test_a_prompt_that_never_answers_commands_fails_the_boot() -> None:
    class Deaf(ScriptedSession):
        def write(self, data: bytes) -> None:
            self.written += data  # swallows commands: no markers ever come back

    console = Console(Deaf([KERNEL, USERSPACE]))
    with pytest.raises(BootFailure, match="does not run commands") as info:
        console.wait_for_boot(SHORT)
    assert info.value.stage == "shell"
