"""The engine interface: ``Engine.start(image, ...) -> Session``, a session being the
guest's serial line as a byte stream plus ``stop()`` and ``metrics()``.

Kept small on purpose: v86 and QEMU implement it now, our reference emulator later, and
everything above (console driver, checks, report) sees only this. An engine process is a
child of ours that must never outlive us: it dies with us (PR_SET_PDEATHSIG), at exit
(atexit), and on ``stop()``.
"""

from __future__ import annotations

import atexit
import ctypes
import json
import os
import signal
import subprocess
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Protocol, Sequence

from harness.stages import StageWatcher


class EngineError(Exception):
    """The engine could not start or died; the message says why and shows its stderr."""


class SessionClosed(EngineError):
    """The guest's console ended (engine exited) while somebody was waiting on it."""


class BootImage(Protocol):
    """What an engine needs from an image (``images.build.BuiltImage`` satisfies it)."""

    kernel: Path
    initrd: Optional[Path]
    cmdline: str


@dataclass
class Metrics:
    """What an engine measured about one session.

    ``marks``: seconds from power-on to each boot mark (see ``harness.stages``);
    ``instructions``: guest instructions at each mark, only where the engine counts them;
    ``instructions_now``: the count when ``metrics()`` was called (None if uncountable);
    ``details``: what the engine says about itself (the reference: which interpreter ran).
    """

    engine: str
    marks: Dict[str, float] = field(default_factory=dict)
    instructions: Dict[str, int] = field(default_factory=dict)
    instructions_now: Optional[int] = None
    details: Dict[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "engine": self.engine,
            "marks": dict(self.marks),
            "instructions": dict(self.instructions),
            "instructions_now": self.instructions_now,
            "details": dict(self.details),
        }


class Session:
    """A running guest seen through its first serial port."""

    engine: str
    boot_slowdown: float = 1.0
    """How many times the default stage timeouts (``harness.stages``) this engine may need
    to reach each boot mark."""

    def read(self, timeout: float) -> bytes:
        """Bytes the guest sent; waits up to ``timeout`` for at least one, b"" if none.

        Raises SessionClosed once the engine has exited and everything was read.
        """
        raise NotImplementedError

    def write(self, data: bytes) -> None:
        """Send bytes to the guest's serial port, as if typed."""
        raise NotImplementedError

    def stop(self) -> None:
        """End the guest and its engine process; safe to call twice."""
        raise NotImplementedError

    def metrics(self) -> Metrics:
        raise NotImplementedError

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Engine(Protocol):
    name: str

    def start(
        self, image: BootImage, memory_mib: int = 256, extra: Sequence[str] = (),
        log_path: Optional[Path] = None,
    ) -> Session:
        """Power on ``image`` with ``memory_mib`` of RAM; ``extra`` are engine arguments."""
        ...


def _die_with_parent() -> None:
    """Run in the child before exec: the kernel kills it if we die, so no orphans."""
    PR_SET_PDEATHSIG = 1
    try:
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


_LIVE: weakref.WeakSet[ProcessSession] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for session in list(_LIVE):
        session.stop()


class ProcessSession(Session):
    """A session whose serial line is a child process's stdin/stdout (pipes or a pty), or
    a descriptor of its own: ``console(proc)`` returns it once the process runs (Bochs
    connects its COM1 to a socket of ours); the process's stdout and stderr are then its
    log lines.

    A reader thread drains the child's output into a buffer, keeps the whole console log
    (in memory and, if asked, in ``log_path`` as it arrives) and timestamps boot marks.
    """

    def __init__(
        self, engine: str, argv: Sequence[str], log_path: Optional[Path] = None,
        use_pty: bool = False, env: Optional[Dict[str, str]] = None,
        stop_signal: int = signal.SIGTERM,
        console: Optional[Callable[[subprocess.Popen], int]] = None,
    ) -> None:
        self.engine = engine
        self.stop_signal = stop_signal
        self.argv = list(argv)
        self.t0 = time.monotonic()
        self.watcher = StageWatcher(self.t0)
        self.log = bytearray()
        self._unread = bytearray()
        self._cond = threading.Condition()
        self._eof = False
        self._stopped = False
        self._log_file = open(log_path, "wb") if log_path else None  # noqa: SIM115
        self._stderr_lines: List[str] = []
        if use_pty:
            import pty

            master, slave = pty.openpty()
            self.proc = subprocess.Popen(
                self.argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                preexec_fn=self._child_setup_tty, close_fds=True,
            )
            os.close(slave)
            self._out_fd, self._in_fd = master, master
        elif console is not None:
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, env=env, preexec_fn=_die_with_parent,
                start_new_session=True,
            )
            _LIVE.add(self)
            threading.Thread(target=self._drain_stderr, daemon=True).start()
            try:
                self._out_fd = self._in_fd = console(self.proc)
            except BaseException:
                self._stopped = True
                self._kill()
                raise
        else:
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, env=env, preexec_fn=_die_with_parent,
                start_new_session=True,
            )
            self._out_fd, self._in_fd = self.proc.stdout.fileno(), self.proc.stdin.fileno()
            threading.Thread(target=self._drain_stderr, daemon=True).start()
        _LIVE.add(self)
        self._drainer = threading.Thread(target=self._drain_stdout, daemon=True)
        self._drainer.start()

    @staticmethod
    def _child_setup_tty() -> None:
        import fcntl
        import termios

        os.setsid()  # a new session whose controlling tty is the pty, so ^C reaches jobs
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        # A command started in the background (``make test &``, nohup, some CI runners)
        # inherits SIGINT and SIGQUIT ignored, and a shell cannot undo an ignore it was
        # started with: ^C would then never interrupt a hung command. Start from defaults.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGQUIT, signal.SIG_DFL)
        _die_with_parent()

    # --- the reader threads ---------------------------------------------------------------
    def _drain_stdout(self) -> None:
        """Read the console until it ends. Where the fd is ours (a pty's master, the
        console's socket: ``proc.stdin`` is None) this thread closes it once it has read
        the end, not ``stop``: closed under a thread still reading it, its number went to
        the next session's pty, and this thread read that session's boot marks away (a
        report test's second boot of the host shell then saw no 'Linux version' in 60 s,
        on a loaded machine)."""
        while True:
            try:
                chunk = os.read(self._out_fd, 65536)
            except OSError:  # a pty reports EIO when the child side closes
                chunk = b""
            with self._cond:
                if not chunk:
                    self._eof = True
                    self._cond.notify_all()
                    if self.proc.stdin is None:
                        try:
                            os.close(self._out_fd)
                        except OSError:
                            pass
                    return
                self.log += chunk
                self._unread += chunk
                self.watcher.feed(chunk)
                self.on_output(chunk)
                if self._log_file:
                    self._log_file.write(chunk)
                    self._log_file.flush()
                self._cond.notify_all()

    def _drain_stderr(self) -> None:
        for raw in self.proc.stderr or self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._cond:
                self._stderr_lines.append(line)
                self.on_stderr_line(line)
                self._cond.notify_all()

    def on_output(self, chunk: bytes) -> None:
        """Hook for subclasses (called with the lock held)."""

    def on_stderr_line(self, line: str) -> None:
        """Hook for subclasses (called with the lock held)."""

    def stderr_tail(self, lines: int = 8) -> str:
        with self._cond:
            return "\n".join(self._stderr_lines[-lines:])

    # --- Session ----------------------------------------------------------------------------
    def read(self, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._unread:
                if self._eof:
                    raise SessionClosed(self._closed_message())
                left = deadline - time.monotonic()
                if left <= 0:
                    return b""
                self._cond.wait(left)
            data = bytes(self._unread)
            self._unread.clear()
            return data

    def _closed_message(self) -> str:
        code = self.proc.poll()
        why = f"{self.engine} exited" + (f" with status {code}" if code is not None else "")
        tail = self.stderr_tail()
        return why + (f"; its stderr ends:\n{tail}" if tail else "")

    def write(self, data: bytes) -> None:
        if self._stopped:
            raise SessionClosed(f"{self.engine} session was stopped")
        if self._eof and self.proc.stdin is None:  # the reader closed our fd: its number
            raise SessionClosed(self._closed_message())  # may be another session's now
        try:
            os.write(self._in_fd, data) if len(data) < 4096 else self._write_all(data)
        except (BrokenPipeError, OSError) as exc:
            raise SessionClosed(f"{self._closed_message()} ({exc})") from exc

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._in_fd, view):]

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._kill()
        # The child is gone: the reader sees the console end and closes a fd of ours
        # itself (``_drain_stdout``). If something else still holds the console open it
        # stays open: better one fd left than a reader on a number reused. (Pipes are
        # the Popen's to close, as before.)
        if self.proc.stdin is None:
            self._drainer.join(timeout=STOP_DRAIN_S)
        with self._cond:
            if self._log_file:
                self._log_file.close()
                self._log_file = None
        _LIVE.discard(self)

    def _kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, self.stop_signal)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)

    def metrics(self) -> Metrics:
        with self._cond:
            return Metrics(engine=self.engine, marks=dict(self.watcher.times))


STOP_DRAIN_S = 5.0
"""How long ``stop`` waits for the reader thread to see the console end."""


METRIC_PREFIX = "X86LAB "
"""Runners that count instructions (v86's ``runner.js``, the reference PC) print JSON
metric lines with this prefix on stderr: ``stage`` at each boot mark, ``counter`` on
SIGUSR1; each carries ``instructions``."""


class CountingSession(ProcessSession):
    """A ProcessSession that also collects the runner's instruction counts."""

    def __init__(self, engine: str, argv: Sequence[str], log_path: Optional[Path],
                 env: Optional[Dict[str, str]] = None) -> None:
        self.instructions: dict = {}
        self.counter: Optional[int] = None
        self.records: List[dict] = []
        """Every metric record, in order (the reference's ``stop`` says why it ended)."""
        self.details: Dict[str, object] = {}
        self._counter_serial = 0
        super().__init__(engine, argv, log_path, env=env)

    def on_stderr_line(self, line: str) -> None:
        if not line.startswith(METRIC_PREFIX):
            return
        record = json.loads(line[len(METRIC_PREFIX):])
        self.records.append(record)
        if record["event"] == "stage":
            self.instructions[record["name"]] = record["instructions"]
        elif record["event"] == "started":  # what the engine says about itself
            for key in ("interpreter", "virtual_clock"):
                if key in record:
                    self.details[key] = record[key]
        self.counter = record.get("instructions", self.counter)
        self._counter_serial += 1

    def metrics(self) -> Metrics:
        """Asks the runner for a fresh count (SIGUSR1) and waits briefly for the answer."""
        with self._cond:
            seen = self._counter_serial
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGUSR1)
            deadline = time.monotonic() + 2.0
            with self._cond:
                while self._counter_serial == seen and time.monotonic() < deadline:
                    self._cond.wait(deadline - time.monotonic())
        with self._cond:
            return Metrics(
                engine=self.engine, marks=dict(self.watcher.times),
                instructions=dict(self.instructions), instructions_now=self.counter,
                details=dict(self.details),
            )
