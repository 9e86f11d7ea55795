"""Run a runner in a sacrificial child process, so that an engine that aborts (Unicorn 2.1.4
raises SIGABRT on ``lock bt* reg``) ends one child, not the campaign or the replay.

``SandboxedRunner(module, cls, kwargs)`` is a ``Runner``: ``run(case)`` returns the child
runner's ``Outcome`` or raises ``EngineCrashed``. ``run_many(cases)`` sends a whole batch in
one message and gets one answer per case as each finishes, so when the child dies the case
it died on is known exactly: the first without an answer (no bisection needed). That case
is then run again alone in a fresh child, which tells a case that crashes by itself from a
crash that needs the earlier cases of the batch; both are ``EngineCrashed`` results, never
outcomes. The other cases go on in the fresh child.

Wire format on the child's stdin/stdout: frames of a 4-byte little-endian length and a
pickle. Parent -> child: the runner spec, then ``("run", [case, ...])`` or ``("call", method,
[item, ...])`` (the child runner's ``method`` on each item: ``judging.py``). Child -> parent:
``("ready", runner name)``, then per case ``("ok", outcome)`` or ``("raised", text)``.
``python -m differential.sandbox PARENT_PID`` is a fresh child's entry point; a child
made by ``fork`` (``can_fork``: the usual case) runs ``serve`` on a pair of pipes.

A forked child puts its answers in memory it shares with its parent (``SharedAnswers``,
mapped before the fork) instead of the pipe, and says ``("shared", count)`` on the pipe
once a request's are all there: a frame and a flush per answer, and the parent woken for
many of them, cost 2-6 µs of CPU a campaign case and a tenth of its wall time (issue 18,
40 batches, alternating, load 0.6-1.6). What it wrote there outlives an abort, so the
case it died on is still the first without an answer. Should the memory fill up, or the
runner raise, it says ``("shared", count)`` at that point and sends the rest on the pipe
as a fresh interpreter (no shared memory) always does.
"""

from __future__ import annotations

import gc
import importlib
import mmap
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, BinaryIO, Callable, Dict, List, NamedTuple, Optional, Tuple, Union

from ground.case import Case, Death, EngineCrashed, Outcome

HEADER = struct.Struct("<I")
CASE_TIMEOUT = 30.0  # seconds without an answer before the child counts as hung
START_TIMEOUT = 60.0
BATCH_PATIENCE = 0.004  # seconds between reads of a batch's answers (~10-15 cases)
PATIENT_ABOVE = 24  # answers still due: fewer than this are read as they come
PACKAGE_ROOT = Path(__file__).resolve().parent.parent


class SandboxError(RuntimeError):
    """The child could not be started, or its runner raised a Python exception."""


Answer = Union[Outcome, EngineCrashed]


class SandboxCrash(NamedTuple):
    """The child died (or hung) on an item: how, and whether it did so again alone."""

    death: Death
    alone: bool


class SharedAnswers:
    """A request's answers in memory shared by a forked child and its parent, after a
    header of two counts: answers complete and bytes used. Each answer is a frame of
    its length, its kind and its bytes: a ``str`` (a campaign case that agreed is
    answered by its label: most answers) as UTF-8 text, anything else pickled.
    Encoding a label costs ~0.07 µs against ~0.6 µs for pickling it; writing an answer
    took 1.0 µs instead of 1.3-1.8, taking it 0.4 instead of 0.8 (issue 18). Any str
    goes as text, a lone surrogate too. The child writes a frame, then the counts; the
    parent clears it before each request and takes the answers it has not taken yet,
    also after the child died."""

    CAPACITY = 1 << 24  # bytes (anonymous memory: only the pages written are used)
    _HEAD = struct.Struct("<QQ")
    _FRAME = struct.Struct("<IB")  # an answer's length and kind
    _TEXT, _PICKLED = 0, 1

    def __init__(self, capacity: int = 0) -> None:
        self.capacity = capacity or self.CAPACITY
        self._memory = mmap.mmap(-1, self._HEAD.size + self.capacity)  # MAP_SHARED
        self._taken = 0  # the parent's: answers taken of this request, and their bytes
        self._taken_bytes = 0

    @property
    def count(self) -> int:
        return self._HEAD.unpack_from(self._memory, 0)[0]

    def clear(self) -> None:
        self._HEAD.pack_into(self._memory, 0, 0, 0)
        self._taken = self._taken_bytes = 0

    def put(self, answer: Any) -> bool:
        """The child's: add an answer; False (nothing written) when it does not fit."""
        if answer.__class__ is str:
            kind, data = self._TEXT, answer.encode("utf-8", "surrogatepass")
        else:
            kind, data = self._PICKLED, pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        frame = self._FRAME.pack(len(data), kind) + data
        count, used = self._HEAD.unpack_from(self._memory, 0)
        if used + len(frame) > self.capacity:
            return False
        start = self._HEAD.size + used
        self._memory[start:start + len(frame)] = frame
        self._HEAD.pack_into(self._memory, 0, count + 1, used + len(frame))
        return True

    def take(self) -> List[Any]:
        """The parent's: the answers written since it last took them."""
        count, used = self._HEAD.unpack_from(self._memory, 0)
        data = self._memory[self._HEAD.size + self._taken_bytes:self._HEAD.size + used]
        out, at, frame, text = [], 0, self._FRAME, self._TEXT
        for _ in range(count - self._taken):
            size, kind = frame.unpack_from(data, at)
            at += frame.size
            out.append(data[at:at + size].decode("utf-8", "surrogatepass") if kind == text else
                       pickle.loads(data[at:at + size]))
            at += size
        self._taken, self._taken_bytes = count, used
        return out


def _frame(payload: Any) -> bytes:
    data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(data)) + data


def _interpreter_started() -> float:
    """When this process's interpreter started (its first import of our sources came
    after): Linux's start time of the process in ``/proc``, else now. A process made by
    ``fork`` (an RQ work horse) keeps its parent's figure: imported at the parent's
    start, this module is inherited with it."""
    try:
        since_boot = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = next(int(line.split()[1]) for line in
                    Path("/proc/stat").read_text().splitlines() if line.startswith("btime"))
        return boot + since_boot / os.sysconf("SC_CLK_TCK") - 1.0  # btime is whole seconds
    except (OSError, ValueError, IndexError, StopIteration):
        return time.time()


_LOADED_AT = _interpreter_started()


def edited_sources(since: Optional[float] = None) -> List[str]:
    """The loaded modules of this checkout (files under ``PACKAGE_ROOT``) whose source
    file changed after ``since`` (or is gone): the code this process runs is then no
    longer the code on disk. A module imported after ``since`` and edited before its
    import counts too (a fresh interpreter is never wrong, only slower)."""
    since = _LOADED_AT if since is None else since
    root = str(PACKAGE_ROOT) + os.sep
    edited = []
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not path or not path.startswith(root):
            continue
        try:
            if os.stat(path).st_mtime > since:
                edited.append(path)
        except OSError:
            edited.append(path)
    return edited


def can_fork() -> bool:
    """Whether a sandbox child may be a fork of this process rather than a fresh
    interpreter: POSIX, ``FORK`` on, one thread (a fork copies only the calling thread,
    and a lock another thread held stays held in the child), and no source file of ours
    edited since this process imported it (a fresh interpreter would run the edited
    code: an edit that cannot judge must show as it does with spawn, see cluster.py)."""
    import threading

    return FORK and hasattr(os, "fork") and threading.active_count() == 1 \
        and not edited_sources()


FORK = True  # start children by fork when can_fork() (module doc); False: always spawn


class _Forked:
    """The parts of ``subprocess.Popen`` that ``_Child`` uses, for a child made by
    ``os.fork``: its pid, its stdin/stdout pipes, ``poll``, ``wait`` and ``kill``."""

    def __init__(self, pid: int, stdin: BinaryIO, stdout: BinaryIO) -> None:
        self.pid, self.stdin, self.stdout = pid, stdin, stdout
        self.returncode: Optional[int] = None

    def poll(self) -> Optional[int]:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)  # -N for signal N
        return self.returncode

    def wait(self, timeout: Optional[float] = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is None:
                self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
            elif time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"sandbox child {self.pid}", timeout or 0)
            else:
                time.sleep(0.005)
        return self.returncode  # type: ignore[return-value]

    def kill(self) -> None:
        if self.returncode is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _fork(stderr: BinaryIO, shared: SharedAnswers) -> _Forked:
    """Fork a sandbox child (``can_fork()`` said it may): it serves the runner spec it
    is sent on a pipe exactly as ``child_main`` does, from the modules this process has
    already imported (the ~0.4-0.5 s CPU a fresh interpreter spends importing and
    compiling our sources is not paid: issue 18), and leaves by ``os._exit`` so that
    nothing it inherited (sockets, other children's pipes, ``__del__`` methods) is
    flushed, closed or run by it."""
    to_child, from_parent = os.pipe()[::-1]
    from_child, to_parent = os.pipe()
    parent = os.getpid()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # or the child could write the parent's pending output again
    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            gc.freeze()  # what it inherited is never collected here (no __del__ runs)
            os.dup2(stderr.fileno(), 1)
            os.dup2(stderr.fileno(), 2)
            os.dup2(from_parent, 0)
            sys.stdout = sys.stderr = open(2, "w", buffering=1, closefd=False)  # not the
            # parent's stream objects (their buffers, or a test runner's capture)
            keep = os.dup(to_parent)
            os.closerange(3, keep)  # other children's pipes, sockets: theirs, not ours
            os.closerange(keep + 1, 1 << 16)
            for number in (signal.SIGTERM, signal.SIGHUP, signal.SIGALRM, signal.SIGUSR1,
                           signal.SIGUSR2, signal.SIGCHLD, signal.SIGRTMIN):
                if callable(signal.getsignal(number)):  # the worker's Python handlers
                    signal.signal(number, signal.SIG_DFL)
            if callable(signal.getsignal(signal.SIGINT)):
                signal.signal(signal.SIGINT, signal.default_int_handler)
            code = serve(parent, os.fdopen(0, "rb"), os.fdopen(keep, "wb"), shared)
        except BaseException:  # noqa: BLE001 - told on stderr, as a fresh child would
            import traceback

            traceback.print_exc()
            sys.stderr.flush()
        finally:
            os._exit(code)
    os.close(from_parent)
    os.close(to_parent)
    return _Forked(pid, os.fdopen(to_child, "wb"), os.fdopen(from_child, "rb"))


class _Child:
    """One live child process and a buffered, deadline-aware reader of its frames."""

    def __init__(self, spec: Tuple[str, str, Dict[str, Any]]) -> None:
        self.stderr = tempfile.TemporaryFile()
        self.forked = can_fork()
        self.process: Any
        self.shared: Optional[SharedAnswers] = None  # a forked child's answers
        if self.forked:
            self.shared = SharedAnswers()
            self.process = _fork(self.stderr, self.shared)
        else:
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(
                [str(PACKAGE_ROOT)] +
                [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
            self.process = subprocess.Popen(
                [sys.executable, "-m", "differential.sandbox", str(os.getpid())],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, env=env)
        self._buffer = b""
        self.ended = False  # its stdout reached EOF: it exited or was killed
        self.patience = 0.0  # seconds to wait before each read (see SandboxedRunner)
        self.send(spec)
        reply = self.receive(time.monotonic() + START_TIMEOUT)
        if not isinstance(reply, tuple) or reply[0] != "ready":
            death = self.death()
            raise SandboxError(f"could not start {spec[0]}.{spec[1]} in a child process "
                               f"({death.signal}; {death.detail or 'no message'})")
        self.name: str = reply[1]

    def send(self, payload: Any) -> bool:
        """False when the child is gone (its stdin pipe is broken)."""
        try:
            assert self.process.stdin is not None
            self.process.stdin.write(_frame(payload))
            self.process.stdin.flush()
            return True
        except (BrokenPipeError, OSError):
            return False

    def _fill(self, size: int, deadline: float) -> bool:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        while len(self._buffer) < size:
            if self.patience:  # let a batch's answers gather: one wake-up reads many
                time.sleep(self.patience)
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return False
            chunk = os.read(fd, max(size - len(self._buffer), 1 << 16))
            if not chunk:
                self.ended = True
                return False
            self._buffer += chunk
        return True

    def receive(self, deadline: float) -> Optional[Any]:
        """The next frame, or None if the child died or said nothing before ``deadline``."""
        buffer = self._buffer
        if len(buffer) > HEADER.size:  # most of a batch's answers: already read, whole
            end = HEADER.size + HEADER.unpack_from(buffer)[0]
            if len(buffer) >= end:
                self._buffer = buffer[end:]
                return pickle.loads(buffer[HEADER.size:end])
        if not self._fill(HEADER.size, deadline):
            return None
        (size,) = HEADER.unpack(self._buffer[:HEADER.size])
        if not self._fill(HEADER.size + size, deadline):
            return None
        data = self._buffer[HEADER.size:HEADER.size + size]
        self._buffer = self._buffer[HEADER.size + size:]
        return pickle.loads(data)

    def death(self, hung_after: float = 0.0) -> Death:
        """Make sure the child is gone and say how it ended."""
        if self.process.poll() is None:
            self.process.kill()
        code = self.process.wait()
        self.stderr.seek(0)
        lines = self.stderr.read().decode("utf-8", "replace").strip().splitlines()
        detail = lines[-1][:200] if lines else ""
        if hung_after:
            return Death(f"no answer within {hung_after:g} s", detail)
        if code < 0:
            try:
                return Death(signal.Signals(-code).name, detail)
            except ValueError:
                return Death(f"signal {-code}", detail)
        return Death(f"exit status {code}", detail)

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                assert self.process.stdin is not None
                self.process.stdin.close()  # the child ends at EOF
                self.process.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdin, self.process.stdout, self.stderr):
            if stream is not None:
                try:
                    stream.close()
                except OSError:  # a broken pipe's unflushed buffer: nothing to keep
                    pass


class SandboxedRunner:
    """A runner living in a child process that is restarted whenever it dies."""

    def __init__(self, module: str, cls: str, kwargs: Optional[Dict[str, Any]] = None,
                 case_timeout: float = CASE_TIMEOUT) -> None:
        self.spec = (module, cls, dict(kwargs or {}))
        self.case_timeout = case_timeout
        self._child: Optional[_Child] = None
        self._name = ""
        self.restarts = 0  # children replaced after a death (for reports and tests)

    def _live(self) -> _Child:
        if self._child is None:
            self._child = _Child(self.spec)
            self._name = self._child.name
        return self._child

    @property
    def pid(self) -> int:
        """The live child's process id (started if needed): for CPU accounting."""
        return self._live().process.pid

    @property
    def name(self) -> str:
        """The wrapped runner's own name (asked of the child, which starts it if needed)."""
        return self._name or self._live().name

    def _attempt(self, items: List[Any], method: str = "",
                 meanwhile: Optional[Callable[[], None]] = None
                 ) -> Tuple[List[Any], Optional[Death]]:
        """Answers for a prefix of ``items`` (cases to ``run``, or arguments of the child
        runner's ``method``); a Death if the child ended before the rest. ``meanwhile``
        runs once the request is sent, while the child works on it."""
        child = self._live()
        answers: List[Any] = []

        def accept(made: List[Any]) -> None:
            answers.extend(made if method else
                           [_restore_pages(outcome, items[len(answers) + at])
                            for at, outcome in enumerate(made)])

        shared = child.shared
        if shared is not None:
            shared.clear()
        alive = child.send(("call", method, items) if method else ("run", items))
        if meanwhile is not None:
            try:
                meanwhile()
            except BaseException:  # its answers would be read as the next request's
                self._discard()
                raise
        while alive and len(answers) < len(items):
            # Waking for every answer cost the parent ~35 µs a case of a campaign batch
            # (a select, a read and a context switch each): while many answers are still
            # due they are read a few milliseconds' worth at a time; the last ones (and a
            # single case) at once, so the batch's end is not delayed.
            child.patience = BATCH_PATIENCE if len(items) - len(answers) > PATIENT_ABOVE \
                else 0.0
            before = None if shared is None else shared.count
            reply = child.receive(time.monotonic() + self.case_timeout)
            if reply is None and before is not None and not child.ended and \
                    shared.count > before:  # answering into shared memory: not hung
                continue
            if reply is None:
                alive = False
            elif reply[0] == "shared":
                accept(shared.take())
            elif reply[0] == "raised":  # the child would answer the rest: start afresh
                self._discard()
                item = items[len(answers)]
                raise SandboxError(f"{child.name} raised {reply[1]} on "
                                   f"{getattr(item, 'name', item)}")
            else:
                accept([reply[1]])
        if alive:
            return answers, None
        if shared is not None:
            accept(shared.take())  # made before it died
        hung = not child.ended and child.process.poll() is None
        death = child.death(self.case_timeout if hung else 0.0)
        self._discard()
        self.restarts += 1
        return answers, death

    def _discard(self) -> None:
        if self._child is not None:
            self._child.close()
            self._child = None

    def call_many(self, method: str, items: List[Any],
                  meanwhile: Optional[Callable[[], None]] = None) -> List[Any]:
        """One answer per item, in order, from the child runner's ``method`` (``run`` for
        cases when empty); a ``SandboxCrash`` for the item the child died on, which was
        then tried again alone in a fresh child. The items after it go on there.
        ``meanwhile`` is called once, while the child works on the request (a campaign
        worker writes its state file then: ``campaign.Worker``)."""
        answers: List[Any] = []
        pending = list(items)
        while pending:
            done, death = self._attempt(pending, method, meanwhile)
            meanwhile = None
            answers.extend(done)
            if death is None:
                break
            _, again = self._attempt([pending[len(done)]], method)
            answers.append(SandboxCrash(again or death, alone=again is not None))
            pending = pending[len(done) + 1:]
        if meanwhile is not None:  # no items: nothing was sent
            meanwhile()
        return answers

    def run_many(self, cases: List[Case]) -> List[Answer]:
        """One answer per case, in order: an ``Outcome``, or ``EngineCrashed`` for the case
        the engine died on."""
        return [EngineCrashed(self.name, case, answer.death, answer.alone)
                if isinstance(answer, SandboxCrash) else answer
                for case, answer in zip(cases, self.call_many("", cases))]

    def run(self, case: Case) -> Outcome:
        answer = self.run_many([case])[0]
        if isinstance(answer, EngineCrashed):
            raise answer
        return answer

    def close(self) -> None:
        self._discard()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown: nothing left to report to
            pass


def sandboxed_unicorn(memory_hooks: bool = False) -> SandboxedRunner:
    """Unicorn in a sacrificial child: it aborts the whole process on some instructions
    (known_divergences.toml, unicorn-lock-bt-register-abort), and a crash must become a
    finding, not the end of a campaign or a replay. A missing Unicorn is an ImportError
    here, at once, as it would be in-process."""
    import importlib.util

    if importlib.util.find_spec("unicorn") is None:
        raise ImportError("No module named 'unicorn'")
    return SandboxedRunner("differential.runners.unicorn_runner", "UnicornRunner",
                           {"memory_hooks": memory_hooks})


def _drop_unchanged_pages(outcome: Outcome, case: Case) -> Outcome:
    """Pages the instruction left as they were travel back as None (pickling them twice
    per case was most of the sandbox's cost)."""
    memory = {base: None if data == case.memory.get(base) else data
              for base, data in outcome.memory.items()}
    return Outcome(outcome.regs, memory, outcome.exception, outcome.notes)  # type: ignore


def _restore_pages(outcome: Outcome, case: Case) -> Outcome:
    memory = {base: case.memory[base] if data is None else data
              for base, data in outcome.memory.items()}
    return Outcome(outcome.regs, memory, outcome.exception, outcome.notes)


def _read_exact(stream: BinaryIO, size: int) -> Optional[bytes]:
    data = stream.read(size)
    return data if data is not None and len(data) == size else None


def _read_frame(stream: BinaryIO) -> Optional[Any]:
    header = _read_exact(stream, HEADER.size)
    if header is None:
        return None
    body = _read_exact(stream, HEADER.unpack(header)[0])
    return None if body is None else pickle.loads(body)


def child_main(parent: int) -> int:
    """A fresh interpreter's entry point: serve one runner on stdin/stdout."""
    channel = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything the runner prints goes to stderr, not into the frames
    return serve(parent, sys.stdin.buffer, channel)


def serve(parent: int, requests: BinaryIO, channel: BinaryIO,
          shared: Optional[SharedAnswers] = None) -> int:
    """Serve one runner until the parent closes ``requests`` (or dies: then so do we).
    With ``shared`` (a forked child) the answers go there first (module doc)."""
    from differential.lifeline import die_with_parent

    die_with_parent(parent)
    spec = _read_frame(requests)
    if spec is None:
        return 0
    module, cls, kwargs = spec
    runner = getattr(importlib.import_module(module), cls)(**kwargs)
    gc.freeze()  # the imports' ~40,000 objects live as long as we do: no GC pass walks them
    channel.write(_frame(("ready", runner.name)))
    channel.flush()
    while True:
        request = _read_frame(requests)
        if request is None:
            return 0
        call = getattr(runner, request[1]) if request[0] == "call" else None
        expect = getattr(runner, "expect", None)
        if call is not None and expect is not None:
            expect(request[-1])  # it may work ahead (JudgingRunner); answers still go one by one
        sharing = shared is not None
        for item in request[-1]:
            try:
                made = call(item) if call is not None else \
                    _drop_unchanged_pages(runner.run(item), item)
            except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises
                reply: Tuple[str, Any] = ("raised", f"{type(exc).__name__}: {exc}")
            else:
                if sharing and shared.put(made):  # type: ignore[union-attr]
                    continue
                reply = ("ok", made)
            if sharing:  # full, or raised: the rest on the pipe, after the shared ones
                channel.write(_frame(("shared", shared.count)))  # type: ignore[union-attr]
                sharing = False
            channel.write(_frame(reply))
            channel.flush()
        if sharing:
            channel.write(_frame(("shared", shared.count)))  # type: ignore[union-attr]
            channel.flush()


if __name__ == "__main__":
    sys.exit(child_main(int(sys.argv[1])))
