"""The shell checks on every selected engine x kernel (boots: marked boot and slow)."""

from __future__ import annotations

import pytest

from harness.checks import CHECKS, Check, context
from harness.console import CommandTimeout, Console
from harness.guest import Guest


@pytest.mark.parametrize("check", CHECKS, ids=[c.name for c in CHECKS])
def test_check(guest: Guest, check: Check) -> None:
    check.func(context(guest.console, guest.memory_mib, check.name))


def test_hung_command_is_interrupted_and_console_recovers(shell: Console) -> None:
    # Blocked on terminal input, not on a timer: a guest whose clock is broken still hangs.
    with pytest.raises(CommandTimeout):
        shell.run("cat /dev/tty", timeout=3)
    assert shell.run("echo still here").output == "still here\n"


def test_multi_line_command_with_heredoc(shell: Console) -> None:
    result = shell.run("cat <<'EOF' | wc -l\none\ntwo\nthree\nEOF\n(exit 4)")
    assert (result.output.strip(), result.status) == ("3", 4)
