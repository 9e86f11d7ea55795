"""Driving a guest's shell over its serial console, the way labgrid's ShellDriver does:
``run(cmd) -> Result(output, status)``, ``run_check(cmd) -> output``, plus binary-safe
``write_file``/``read_file`` and boot-stage waiting.

How a command's output is found without guessing at prompts: each command is wrapped as
::

    printf '%s_%s\\n' __X86LAB_BEGIN TOKEN; { CMD
    }</dev/null; printf '\\n%s_%s_%s\\n' __X86LAB_END TOKEN $?

with a fresh random TOKEN. The shell parses the whole wrapper before running any of it, so
whatever the terminal echoes (our typing, continuation prompts) comes out before the BEGIN
line; and because the marker is assembled by printf, the echoed text never contains the
marker itself. The output is exactly what lies between the two markers.
"""

from __future__ import annotations

import base64
import re
import secrets
import time
from dataclasses import dataclass
from typing import Optional, Union

from harness import kernel_log
from harness.engines.base import Session, SessionClosed
from harness.stages import MARKS, StageTimeouts

Pattern = Union[bytes, "re.Pattern[bytes]"]
MAX_LINE = 900  # below BusyBox's line-editing limit (1024) and the tty's (4095)
CHUNK = 1536  # file bytes per round trip: the guest's tty queue (4 KiB) never overflows


class ConsoleError(Exception):
    """Base of the console driver's errors; messages carry a console excerpt."""


class BootFailure(ConsoleError):
    """The guest did not reach a stage in time, or its kernel log shows a failure."""

    def __init__(self, message: str, stage: str, excerpt: str) -> None:
        super().__init__(f"{message}\n--- console ---\n{excerpt}")
        self.stage = stage
        self.excerpt = excerpt


class CommandTimeout(ConsoleError):
    """A command did not finish in time (the console was recovered with ^C)."""


class CommandFailed(ConsoleError):
    """``run_check`` saw a non-zero exit status."""

    def __init__(self, cmd: str, result: Result) -> None:
        super().__init__(f"{cmd!r} exited with status {result.status}:\n{result.output}")
        self.result = result


@dataclass(frozen=True)
class Result:
    output: str
    status: int


class Console:
    """A shell on the far side of a Session's serial line."""

    def __init__(self, session: Session, default_timeout: float = 30.0) -> None:
        self.session = session
        self.default_timeout = default_timeout
        self.log = bytearray()  # everything read, for excerpts
        self.boot_log = b""  # the console up to the prompt, for the kernel-log scan
        self._buffer = bytearray()
        self.has_base64 = True

    # --- reading ------------------------------------------------------------------------
    def _fill(self, deadline: float) -> bool:
        """Read what the guest sent; False once the deadline passes with nothing new."""
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        chunk = self.session.read(min(left, 1.0))
        self.log += chunk
        self._buffer += chunk
        return True

    def expect(self, pattern: Pattern, timeout: float) -> re.Match[bytes]:
        """Consume console bytes up to and including ``pattern``; TimeoutError if absent."""
        regex = re.compile(re.escape(pattern)) if isinstance(pattern, bytes) else pattern
        deadline = time.monotonic() + timeout
        while True:
            match = regex.search(self._buffer)
            if match:
                del self._buffer[: match.end()]
                return match
            self._fail_on_panic()
            if not self._fill(deadline):
                raise TimeoutError(f"no {regex.pattern!r} within {timeout:g} s")

    def _fail_on_panic(self) -> None:
        """A panic never ends in a prompt: stop waiting at once and show it."""
        if b"Kernel panic" in self._buffer:
            time.sleep(0.5)  # let the rest of the panic message arrive
            self._fill(time.monotonic() + 0.5)
            raise BootFailure(f"{self.session.engine}: the kernel panicked", "panic",
                              kernel_log.last_lines(self.log, 30))

    # --- booting ------------------------------------------------------------------------
    def wait_for_boot(self, timeouts: Optional[StageTimeouts] = None) -> None:
        """Wait for each boot mark in turn, then get the shell ready for ``run``.

        Raises BootFailure naming the stage that did not come, or the failure patterns
        (panic, oops, WARNING, ...) the kernel log shows even if the prompt did come.
        """
        timeouts = (timeouts or StageTimeouts()).scaled()
        previous = "power-on"
        for mark, pattern in MARKS:
            limit = timeouts.for_mark(mark)
            try:
                self.expect(pattern, limit)
            except TimeoutError:
                raise BootFailure(
                    f"{self.session.engine}: no {pattern.decode()!r} ({mark}) within"
                    f" {limit:g} s of {previous}", mark, kernel_log.last_lines(self.log),
                ) from None
            except SessionClosed as exc:
                raise BootFailure(
                    f"{self.session.engine} stopped before {mark}: {exc}", mark,
                    kernel_log.last_lines(self.log),
                ) from None
            previous = mark
        self.boot_log = bytes(self.log)
        try:
            self.prepare(timeouts.prompt)
        except (CommandTimeout, SessionClosed) as exc:
            raise BootFailure(f"{self.session.engine}: the shell printed its prompt but does"
                              f" not run commands ({exc.__class__.__name__})", "shell",
                              kernel_log.last_lines(self.log)) from None
        findings = kernel_log.scan(self.boot_log)
        if findings:
            first = findings[0]
            raise BootFailure(
                f"{self.session.engine}: the console log shows {len(findings)} failure"
                f" line(s), first {first.pattern!r}", "kernel-log", first.excerpt,
            )

    def prepare(self, timeout: float = 30.0) -> None:
        """Quiet the console and learn which file tools the guest has.

        Kernel messages would land in the middle of command output (the console is shared),
        so only emergencies (a panic) may print from now on; ``dmesg`` still has the rest.
        """
        self.sync(timeout)
        self.run("stty -echo 2>/dev/null; PS1=''; PS2=''; dmesg -n 1 2>/dev/null", timeout)
        self.has_base64 = self.run("command -v base64 >/dev/null", timeout).status == 0

    def sync(self, timeout: float = 30.0) -> None:
        """Drop anything pending and make sure the shell answers a fresh marker."""
        self._buffer.clear()
        self.run(":", timeout=timeout, recover=False)

    # --- commands -------------------------------------------------------------------------
    def run(self, cmd: str, timeout: Optional[float] = None, recover: bool = True) -> Result:
        """Run ``cmd`` (any number of lines, of any length) in the guest's shell.

        ``cmd`` runs in the shell itself (so ``cd`` and variables persist, and ``exit``
        ends the shell, as at a real console; wrap it in ``( )`` to avoid that).
        Lines longer than MAX_LINE go over as a script file. Returns the output (text,
        CR LF turned to LF; for exact bytes use ``read_file``) and exit status. On a
        timeout the command is interrupted with ^C, the console re-synchronised, and
        CommandTimeout raised: the console stays usable.
        """
        timeout = self.default_timeout if timeout is None else timeout
        token = secrets.token_hex(8)
        if max(len(line.encode()) for line in cmd.split("\n")) > MAX_LINE:
            cmd = self._ship_script(cmd, token, timeout)
        wrapped = (
            f"printf '%s_%s\\n' __X86LAB_BEGIN {token}; {{ {cmd}\n"
            f"}}</dev/null; printf '\\n%s_%s_%s\\n' __X86LAB_END {token} $?\n"
        )
        self.session.write(wrapped.encode())
        # The rest of the BEGIN line is skipped: a kernel message printed while the marker
        # goes out can land on the same line (seen on QEMU with the Debian kernel: "tsc:
        # Refined TSC clocksource calibration" right after the marker, before dmesg -n 1).
        begin = re.compile(rb"__X86LAB_BEGIN_" + token.encode() + rb"[^\n]*\n")
        end = re.compile(rb"\r\n__X86LAB_END_" + token.encode() + rb"_(\d+)\r\n")
        deadline = time.monotonic() + timeout
        try:
            self.expect(begin, max(deadline - time.monotonic(), 0))
            match = self._expect_end(end, deadline)
        except TimeoutError:
            if recover:
                self.interrupt()
            raise CommandTimeout(
                f"{cmd!r} did not finish within {timeout:g} s"
                f"{' (interrupted with ^C)' if recover else ''}; console ends:\n"
                f"{kernel_log.last_lines(self.log, 10)}"
            ) from None
        output = match.string[: match.start()].replace(b"\r\n", b"\n")
        return Result(output.decode("utf-8", "replace"), int(match.group(1)))

    def _ship_script(self, cmd: str, token: str, timeout: float) -> str:
        """A line too long to type goes over as a file; the shell sources it, then
        removes it, keeping the command's status."""
        script = f"/tmp/.x86lab-cmd-{token}"
        self.write_file(script, cmd.encode() + b"\n", timeout)
        return f". {script}\n__x86lab_status=$?; rm -f {script}; (exit $__x86lab_status)"

    def _expect_end(self, end: re.Pattern[bytes], deadline: float) -> re.Match[bytes]:
        """Like expect, but keeps the output in front of the marker in ``match.string``."""
        while True:
            match = end.search(self._buffer)
            if match:
                taken = bytes(self._buffer[: match.end()])
                del self._buffer[: match.end()]
                return end.search(taken)  # type: ignore[return-value]
            if not self._fill(deadline):
                raise TimeoutError

    def run_check(self, cmd: str, timeout: Optional[float] = None) -> str:
        """Run ``cmd``; its output, or CommandFailed (with the output) on non-zero status."""
        result = self.run(cmd, timeout)
        if result.status != 0:
            raise CommandFailed(cmd, result)
        return result.output

    def interrupt(self, attempts: int = 3) -> None:
        """Send ^C until the shell answers a fresh marker again."""
        for _ in range(attempts):
            self.session.write(b"\x03")
            try:
                self.sync(timeout=10.0)
                return
            except CommandTimeout:
                continue
        raise ConsoleError(
            f"the shell stayed unresponsive after {attempts} ^C; console ends:\n"
            f"{kernel_log.last_lines(self.log, 10)}"
        )

    # --- files ----------------------------------------------------------------------------
    def write_file(self, path: str, data: bytes, timeout: Optional[float] = None) -> None:
        """Create ``path`` in the guest holding exactly ``data`` (any bytes).

        Sent in chunks, one round trip each, as base64 (or printf octal escapes where the
        guest lacks base64), so no byte is mangled by the tty and no queue overflows.
        """
        quoted = _quote(path)
        self.run_check(f": > {quoted}", timeout)
        for start in range(0, len(data), CHUNK):
            chunk = data[start: start + CHUNK]
            if self.has_base64:
                text = base64.encodebytes(chunk).decode()
                self.run_check(f"base64 -d >> {quoted} <<'__X86LAB_EOF'\n{text}__X86LAB_EOF",
                               timeout)
            else:
                for part in range(0, len(chunk), MAX_LINE // 5):
                    escaped = "".join(f"\\{b:03o}" for b in chunk[part: part + MAX_LINE // 5])
                    self.run_check(f"printf '{escaped}' >> {quoted}", timeout)

    def read_file(self, path: str, timeout: Optional[float] = None) -> bytes:
        """The exact bytes of ``path`` in the guest."""
        quoted = _quote(path)
        if self.has_base64:
            text = self.run_check(f"base64 {quoted}", timeout)
            decode = base64.b64decode
        else:
            text = self.run_check(f"od -An -v -tx1 {quoted}", timeout)
            decode = bytes.fromhex
        try:
            return decode("".join(text.split()))
        except ValueError as exc:
            raise ConsoleError(f"{path}: the guest's dump is garbled ({exc}); it ends:\n"
                               f"{text[-300:]}") from None


def _quote(path: str) -> str:
    """Single-quote a path for the guest's shell."""
    return "'" + path.replace("'", "'\\''") + "'"
