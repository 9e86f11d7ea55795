"""Driving a guest's shell over its serial console, the way labgrid's ShellDriver does:
``run(cmd) -> Result(data, status)``, ``run_check(cmd) -> output``, plus binary-safe
``write_file``/``read_file`` and boot-stage waiting.

The channel is byte-exact both ways. A command never reaches the shell as typed keys
(where a TAB completes, ^U erases a line and a long line is cut): its bytes go over as
base64 text inside a here-document with a one-off terminator, the guest decodes them into
a shell variable, ``sh -n`` checks that they parse, and only then does the shell run them
(``eval``, so ``cd`` and variables persist as at a real console). Each exchange is
framed by markers around the output::

    printf '%s_%s\n' __X86LAB_BEGIN TOKEN; ...decode, check, run...;
    printf '\n%s_%s_%s_%s\n' __X86LAB_END TOKEN KIND $status

with a fresh random TOKEN. KIND says how it ended: ``ran``, ``syntax`` (the shell could
not parse the command: nothing ran, status is the shell's, 2) or ``staging`` (the guest
could not decode it). The tty's echo is turned off once the shell answers (and what it
echoed before comes out ahead of BEGIN, which is assembled by printf, so the echo never
contains a marker). The output is exactly the bytes between the two markers, as bytes:
the tty's LF -> CR LF is undone, nothing is decoded (``Result.output`` is the text for
display).
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
Command = Union[str, bytes]
MAX_LINE = 900  # below BusyBox's line-editing limit (1024) and the tty's (4095)
CHUNK = 1536  # file bytes per round trip: the guest's tty queue (4 KiB) never overflows
STAGED = "/tmp/.x86lab-cmd-"
"""Where a command too big for one round trip is assembled before it runs (+ token)."""


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

    def __init__(self, cmd: Command, result: Result) -> None:
        super().__init__(f"{_shown(cmd)!r} exited with status {result.status}:\n"
                         f"{result.output}")
        self.result = result


@dataclass(frozen=True)
class Result:
    """What a command printed (exact bytes), its exit status, and how it ended.

    ``ended`` is ``ran`` when the shell ran it; ``syntax`` when it did not parse (nothing
    ran; ``status`` and ``data`` are the shell's); ``staging`` when the guest could not
    decode it.
    """

    data: bytes
    status: int
    ended: str = "ran"

    @property
    def output(self) -> str:
        """The output as text, for display and for callers that parse text."""
        return self.data.decode("utf-8", "replace")

    @property
    def ran(self) -> bool:
        return self.ended == "ran"


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
        timeouts = (timeouts or StageTimeouts()).scaled(self.session.boot_slowdown)
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
        # stty acts on its stdin, which a typed line has from /dev/null: hand it the tty.
        self._typed("stty -echo <&1 2>/dev/null; PS1=''; PS2=''; dmesg -n 1 2>/dev/null",
                    timeout)
        self.has_base64 = self._typed("command -v base64 >/dev/null", timeout).status == 0

    def sync(self, timeout: float = 30.0) -> None:
        """Drop anything pending and make sure the shell answers a fresh marker."""
        self._buffer.clear()
        self._typed(":", timeout=timeout, recover=False)

    # --- commands -------------------------------------------------------------------------
    def run(self, cmd: Command, timeout: Optional[float] = None, recover: bool = True,
            own_shell: bool = False) -> Result:
        """Run ``cmd`` (text or bytes: any lines, any length, any bytes but NUL).

        ``cmd`` runs in the shell itself (so ``cd`` and variables persist, and ``exit``
        ends the shell, as at a real console), or with ``own_shell`` in a child ``sh -c``
        (``exit N`` then ends just the command). A command that does not parse does not
        run: the result has ``ended == "syntax"`` and the shell's message and status. On a
        timeout the command is interrupted with ^C, the console re-synchronised, and
        CommandTimeout raised: the console stays usable.
        """
        timeout = self.default_timeout if timeout is None else timeout
        data = cmd.encode() if isinstance(cmd, str) else bytes(cmd)
        token = secrets.token_hex(8)
        source = self._staged_source(data, token, timeout)
        # ``command`` keeps a shell error inside the command (``${x?}``, a bad ``cd`` in
        # some shells) from abandoning the rest of our line, end marker included.
        runner = 'sh -c "$__x86lab_c"' if own_shell else 'command eval "$__x86lab_c"'
        script = (
            f"__x86lab_k=staging; __x86lab_c={source} &&"
            ' { __x86lab_k=syntax; sh -nc "$__x86lab_c"; } &&'
            f" {{ __x86lab_k=ran; {runner}; }} </dev/null; "
            + _end_marker(token, "$__x86lab_k", "$?") + "\n"
        )
        return self._exchange(script, token, timeout, recover, cmd)

    def _staged_source(self, data: bytes, token: str, timeout: float) -> str:
        """Shell text that expands to ``data``: a here-document of base64 when it fits
        one round trip, else a file assembled in the guest beforehand (then removed)."""
        if self.has_base64 and len(data) <= CHUNK:
            text = base64.encodebytes(data).decode()
            end = f"__X86LAB_EOF_{token}"
            return f"$(base64 -d <<'{end}'\n{text}{end}\n)"
        staged = f"{STAGED}{token}"
        self.write_file(staged, data, timeout)
        return f"$(cat {staged}; rm -f {staged})"

    def _typed(self, line: str, timeout: Optional[float] = None,
               recover: bool = True) -> Result:
        """Type the driver's own command (printable ASCII, short lines) as keys: one
        write, no staging. Used before the guest's tools are known and for file chunks."""
        timeout = self.default_timeout if timeout is None else timeout
        token = secrets.token_hex(8)
        script = (f"{{ {line}\n}}</dev/null; " + _end_marker(token, "ran", "$?") + "\n")
        return self._exchange(script, token, timeout, recover, line)

    def _exchange(self, script: str, token: str, timeout: float, recover: bool,
                  cmd: Command) -> Result:
        """Send BEGIN marker + ``script`` and collect what lies before the END marker."""
        begin_line = f"printf '%s_%s\\n' __X86LAB_BEGIN {token}; "
        self.session.write((begin_line + script).encode())
        # The rest of the BEGIN line is skipped: a kernel message printed while the marker
        # goes out can land on the same line (seen on QEMU with the Debian kernel: "tsc:
        # Refined TSC clocksource calibration" right after the marker, before dmesg -n 1).
        begin = re.compile(rb"__X86LAB_BEGIN_" + token.encode() + rb"[^\n]*\n")
        end = re.compile(rb"\r\n__X86LAB_END_" + token.encode() + rb"_([a-z]+)_(\d+)\r\n")
        deadline = time.monotonic() + timeout
        try:
            self.expect(begin, max(deadline - time.monotonic(), 0))
            match = self._expect_end(end, deadline)
        except TimeoutError:
            if recover:
                self.interrupt()
            raise CommandTimeout(
                f"{_shown(cmd)!r} did not finish within {timeout:g} s"
                f"{' (interrupted with ^C)' if recover else ''}; console ends:\n"
                f"{kernel_log.last_lines(self.log, 10)}"
            ) from None
        # The tty turned each LF into CR LF (ONLCR); every CR LF is one of those.
        output = match.string[: match.start()].replace(b"\r\n", b"\n")
        return Result(output, int(match.group(2)), match.group(1).decode())

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

    def run_check(self, cmd: Command, timeout: Optional[float] = None) -> str:
        """Run ``cmd``; its output, or CommandFailed (with the output) on non-zero status."""
        return self._checked(self.run(cmd, timeout), cmd)

    @staticmethod
    def _checked(result: Result, cmd: Command) -> str:
        if result.status != 0 or not result.ran:
            raise CommandFailed(cmd, result)
        return result.output

    def _internal(self, cmd: str, timeout: Optional[float]) -> str:
        """The driver's own command: typed when it is plain ASCII, else sent as data."""
        typeable = all(" " <= ch <= "~" for ch in cmd.replace("\n", ""))
        lines_fit = max(len(line) for line in cmd.split("\n")) <= MAX_LINE
        if typeable and lines_fit:
            return self._checked(self._typed(cmd, timeout), cmd)
        return self.run_check(cmd, timeout)

    def interrupt(self, attempts: int = 3) -> None:
        """Send ^C until the shell answers a fresh marker again."""
        for _ in range(attempts):
            self.session.write(b"\x03")
            # The ^C may reach the shell only while it reads the line we type next (slow
            # emulators: seen on v86) and make it drop that line, or the dying command may
            # read it: type a fresh line before sending another ^C.
            for wait in (2.0, 8.0):
                try:
                    self.sync(timeout=wait)
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
        self._internal(f": > {quoted}", timeout)
        for start in range(0, len(data), CHUNK):
            chunk = data[start: start + CHUNK]
            if self.has_base64:
                text = base64.encodebytes(chunk).decode()
                self._internal(f"base64 -d >> {quoted} <<'__X86LAB_EOF'\n{text}__X86LAB_EOF",
                               timeout)
            else:
                for part in range(0, len(chunk), MAX_LINE // 5):
                    escaped = "".join(f"\\{b:03o}" for b in chunk[part: part + MAX_LINE // 5])
                    self._internal(f"printf '{escaped}' >> {quoted}", timeout)

    def read_file(self, path: str, timeout: Optional[float] = None) -> bytes:
        """The exact bytes of ``path`` in the guest."""
        quoted = _quote(path)
        if self.has_base64:
            text = self._internal(f"base64 {quoted}", timeout)
            decode = base64.b64decode
        else:
            text = self._internal(f"od -An -v -tx1 {quoted}", timeout)
            decode = bytes.fromhex
        try:
            return decode("".join(text.split()))
        except ValueError as exc:
            raise ConsoleError(f"{path}: the guest's dump is garbled ({exc}); it ends:\n"
                               f"{text[-300:]}") from None


def _end_marker(token: str, kind: str, status: str) -> str:
    """The printf that ends an exchange: a line of its own, assembled so that the echo of
    our typing never matches it."""
    return f"printf '\\n%s_%s_%s_%s\\n' __X86LAB_END {token} {kind} {status}"


def _shown(cmd: Command) -> str:
    """A command as text for messages."""
    return cmd if isinstance(cmd, str) else cmd.decode("utf-8", "replace")


def _quote(path: str) -> str:
    """Single-quote a path for the guest's shell."""
    return "'" + path.replace("'", "'\\''") + "'"
