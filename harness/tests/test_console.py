"""The console driver against the host's /bin/sh on a pty (fast: no kernel needed)."""

from __future__ import annotations

import hashlib
import random
import signal
import time
from typing import Iterator, List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.console import MAX_LINE, CommandFailed, CommandTimeout, Console, Result
from harness.engines.local import LocalShellEngine


@pytest.fixture(scope="module")
def console() -> Iterator[Console]:
    session = LocalShellEngine().start(None)
    con = Console(session, default_timeout=10)
    con.wait_for_boot()
    yield con
    session.stop()


def test_output_and_status_come_from_markers(console: Console) -> None:
    result = console.run("echo one; echo two >&2; (exit 5)")
    assert (result.output, result.status) == ("one\ntwo\n", 5)


def test_output_without_trailing_newline_is_kept_exactly(console: Console) -> None:
    assert console.run("printf 'a b'").output == "a b"
    assert console.run("printf 'x\\n\\n'").output == "x\n\n"


def test_multi_line_command(console: Console) -> None:
    result = console.run("for i in 1 2 3; do\n  echo $((i * i))\ndone\nfalse")
    assert (result.output, result.status) == ("1\n4\n9\n", 1)


def test_command_that_prints_something_like_a_prompt(console: Console) -> None:
    assert console.run("echo 'x86lab# '; echo __X86LAB_END_0_0").output == (
        "x86lab# \n__X86LAB_END_0_0\n")


def test_run_check_raises_with_the_output(console: Console) -> None:
    with pytest.raises(CommandFailed, match="status 3:\nboom"):
        console.run_check("echo boom; exit_code=3; (exit $exit_code)")


@pytest.mark.parametrize("use_base64", [True, False], ids=["base64", "printf-octal"])
def test_binary_file_round_trip(console: Console, use_base64: bool) -> None:
    data = random.Random(7).randbytes(3000) + bytes(range(256))
    console.has_base64 = use_base64
    try:
        console.write_file("/tmp/x86lab-console-test.bin", data)
        assert console.read_file("/tmp/x86lab-console-test.bin") == data
    finally:
        console.has_base64 = True
    digest = console.run_check("md5sum /tmp/x86lab-console-test.bin").split()[0]
    assert digest == hashlib.md5(data).hexdigest()
    console.run_check("rm /tmp/x86lab-console-test.bin")


@given(data=st.binary(max_size=600))
@settings(max_examples=15)
def test_any_bytes_survive_the_round_trip(console: Console, data: bytes) -> None:
    console.write_file("/tmp/x86lab-console-prop.bin", data)
    assert console.read_file("/tmp/x86lab-console-prop.bin") == data


def test_hung_command_is_interrupted_and_console_stays_usable(console: Console) -> None:
    with pytest.raises(CommandTimeout, match="interrupted with \\^C"):
        console.run("sleep 1000", timeout=1)
    assert console.run("echo alive").output == "alive\n"


def test_hung_command_is_interrupted_even_when_we_were_started_ignoring_sigint() -> None:
    """As under ``nohup make test &``: our process ignores SIGINT, which children inherit;
    the console's shell must still let ^C interrupt a command."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        session = LocalShellEngine().start(None)
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        con = Console(session, default_timeout=10)
        con.wait_for_boot()
        with pytest.raises(CommandTimeout, match="interrupted with \\^C"):
            con.run("sleep 1000", timeout=1)
        assert con.run("echo alive").output == "alive\n"
    finally:
        session.stop()


def test_line_longer_than_the_shell_accepts_is_sent_as_a_script(console: Console) -> None:
    words = " ".join(f"w{i}" for i in range(MAX_LINE // 2))
    result = console.run(f"echo {words} | wc -w; (exit 6)")
    assert (result.output.split(), result.status) == ([str(MAX_LINE // 2)], 6)
    assert console.run("ls /tmp/.x86lab-cmd-* 2>/dev/null").output == ""


def test_a_kernel_message_on_the_begin_line_does_not_stall_the_command() -> None:
    """Seen on QEMU with the Debian kernel under load: printk text right after the BEGIN
    marker, on its line. The command's output and status must still come through."""
    import re

    from harness.tests.fake_session import ScriptedSession

    class NoisySession(ScriptedSession):
        def write(self, data: bytes) -> None:
            self.written += data
            for token in re.findall(rb"__X86LAB_BEGIN ([0-9a-f]+)", data):
                self.chunks.append(b"__X86LAB_BEGIN_%s[    2.444459] clocksource: Switched "
                                   b"to clocksource tsc\r\nhi\r\n\r\n__X86LAB_END_%s_ran_3\r\n"
                                   % (token, token))

    result = Console(NoisySession([]), default_timeout=2).run("echo hi; (exit 3)")
    assert (result.output, result.status) == ("hi\n", 3)


# --- the channel is byte-exact, and knows when a command cannot run (issue 16) ----------


@pytest.fixture(scope="module")
def readline_console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """bash with readline on the pty: a shell whose line editor completes on TAB, as
    BusyBox's does in the guests (dash has no line editor, so it would hide the bug)."""
    import shutil

    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    wrapper = tmp_path_factory.mktemp("bash") / "bash-norc"
    wrapper.write_text(f'#!/bin/sh\nexec {bash} --norc --noprofile "$@"\n')
    wrapper.chmod(0o755)
    session = LocalShellEngine(str(wrapper)).start(None)
    con = Console(session, default_timeout=10)
    con.wait_for_boot()
    yield con
    session.stop()


@pytest.mark.parametrize("cmd, expected", [
    ('echo "[\t]"', b"[\t]\n"),
    ("echo /proc/versio\t", b"/proc/versio\n"),  # unquoted TAB separates words
    ("echo 'a\x15b'", b"a\x15b\n"),  # ^U (line kill at a tty) is just a byte
], ids=["tab-in-quotes", "tab-not-completed", "ctrl-u"])
def test_a_line_editor_never_sees_the_command(readline_console: Console, cmd: str,
                                              expected: bytes) -> None:
    assert readline_console.run(cmd).data == expected


def test_output_comes_back_as_bytes(console: Console) -> None:
    result = console.run("printf '\\377\\200a\\r\\n'")
    assert result.data == b"\xff\x80a\r\n"
    assert result.output == "\ufffd\ufffda\r\n"  # text only for display


@given(text=st.binary(max_size=300).filter(lambda b: b"\0" not in b))
@settings(max_examples=25, deadline=None)
def test_any_command_bytes_reach_the_shell_exactly(console: Console, text: bytes) -> None:
    quoted = b"'" + text.replace(b"'", b"'\\''") + b"'"
    assert console.run(b"printf '%s' " + quoted).data == text


@pytest.mark.parametrize("cmd", ['echo "x', "echo )", "if true; then echo no"],
                         ids=["open-quote", "stray-paren", "no-fi"])
def test_a_syntax_error_ends_at_once_with_the_shells_message(console: Console,
                                                             cmd: str) -> None:
    start = time.monotonic()
    result = console.run(f"echo ran-anyway; {cmd}", timeout=20)
    assert time.monotonic() - start < 5
    assert (result.ended, result.status) == ("syntax", 2)
    assert b"yntax error" in result.data and b"ran-anyway" not in result.data
    assert console.run("echo alive").data == b"alive\n"


def test_an_empty_command_ends_at_once_with_status_0(console: Console) -> None:
    start = time.monotonic()
    assert console.run("", timeout=20) == Result(b"", 0, "ran")
    assert time.monotonic() - start < 5


def test_a_shell_error_that_abandons_the_line_ends_at_once(console: Console) -> None:
    """``${x?}`` makes an interactive shell drop the rest of its input line, end marker
    included, unless the command is kept from doing so."""
    start = time.monotonic()
    result = console.run("echo ${x86lab_unset?is unset}; echo after", timeout=20)
    assert time.monotonic() - start < 5
    assert result.status != 0 and b"is unset" in result.data and b"after" not in result.data
    assert console.run("echo alive").data == b"alive\n"


def test_own_shell_keeps_exit_to_the_command(console: Console) -> None:
    assert console.run("echo bye; exit 7", own_shell=True) == Result(b"bye\n", 7, "ran")
    assert console.run("echo alive").data == b"alive\n"


def test_state_persists_between_commands_in_the_shell(console: Console) -> None:
    console.run("cd /tmp; x86lab_var=kept")
    assert console.run("pwd; echo $x86lab_var").data == b"/tmp\nkept\n"
    console.run("cd /")


def test_commands_are_exact_without_base64_in_the_guest(console: Console) -> None:
    """A guest without base64 gets the command as printf octal escapes."""
    console.has_base64 = False
    try:
        assert console.run("printf '[\t]\\377'; (exit 4)") == Result(b"[\t]\xff", 4, "ran")
        assert console.run('echo "x').ended == "syntax"
    finally:
        console.has_base64 = True


def test_a_file_whose_name_is_not_plain_ascii_round_trips(readline_console: Console) -> None:
    path = "/tmp/x86lab \u00e9\tname"
    data = bytes(range(256)) * 3
    readline_console.write_file(path, data)
    assert readline_console.read_file(path) == data
    readline_console.run_check(b"rm '/tmp/x86lab \xc3\xa9\tname'")


def test_a_stopped_sessions_reader_never_reads_the_next_sessions_console(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Stopping a pty session while its reader thread is between two reads (here held
    there on purpose, as a loaded machine holds it) must not leave that thread reading
    the fd number the next session's pty gets: it would take that session's output
    (once, a report test's second boot of the host shell saw no boot mark in 60 s)."""
    import os
    import threading

    from harness.engines.base import ProcessSession

    real_read = os.read
    first_reader: List[int] = []

    def read(fd: int, size: int) -> bytes:
        if threading.get_ident() in first_reader:
            time.sleep(0.5)  # the first session's reader, after its first chunk
        data = real_read(fd, size)
        if b"one" in data and not first_reader:
            first_reader.append(threading.get_ident())
        return data

    monkeypatch.setattr(os, "read", read)
    first = ProcessSession("first", ["/bin/sh", "-c", "echo one; exec sleep 30"],
                           use_pty=True)
    deadline = time.monotonic() + 10
    while not first_reader and time.monotonic() < deadline:
        time.sleep(0.01)
    first.stop()
    # when stop returns, no reader of the stopped session may still be about to read
    assert first_reader and not [thread for thread in threading.enumerate()
                                 if thread.ident == first_reader[0]]
    second = ProcessSession("second", ["/bin/sh", "-c", "echo two-marker; exec sleep 30"],
                            use_pty=True)
    try:
        seen = b""
        deadline = time.monotonic() + 5
        while b"two-marker" not in seen and time.monotonic() < deadline:
            seen += second.read(0.5)
        assert b"two-marker" in seen
        assert b"two-marker" not in bytes(first.log)
    finally:
        second.stop()
