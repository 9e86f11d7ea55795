"""Blocks made in a second process while the first goes on interpreting (issue 14).

Why: a cold boot of the tiny image spends about a third of its time making blocks
(generating their Python from the semantics and ``compile()``), all on one core while
the machine has two. Here ``compile_block`` hands the work to a child process and
returns ``PENDING``; ``run()`` interprets the code meanwhile, as it does below the
threshold. The PC collects finished blocks every 20,000 steps (``Maker.collect``, called
between pieces of a batch: ``reference.pc.machine.Pc._run_cpu``), and the next time the
instruction runs ``compile_block`` finds the block made, as it finds one in the disk
cache. With the work off its core the PC makes blocks sooner, at 100 runs
(``reference.cpu.MAKER_BLOCK_THRESHOLD``). Nothing the guest sees depends on when a
block arrives: a block runs exactly what the interpreter would (``reference.step``), and
the virtual clock counts instructions, not time, so the results and the instruction
counts are those of a run without blocks; only the host's time changes.

What the child gets is what the block depends on (``reference.blocks.cache``: the
instruction bytes and the modes), as the 4 KiB physical page the block lies in (a block
never leaves its first page) and where in it the block starts; it decodes the page
afresh, gathers and assembles the block as ``compile_block`` would, and answers with
the same entry the disk cache holds: the key, where each module-level name comes from,
and the code object (``marshal``). A child that made other instructions than the parent
gathered (a different key) answers with no code, and the parent makes that block
itself. If the child dies, the parent makes every later block itself (one line on
stderr). At most ``WINDOW`` requests are in flight, so neither side ever blocks on a full
pipe while the other waits for it; the others wait in the parent and go newest first,
and after each collection hottest first (``Maker._send``). ``--record-blocks FILE``
writes each request to a file that ``python -m reference.blocks.replay`` makes again,
to measure this side alone.
"""

from __future__ import annotations

import marshal
import multiprocessing
import signal
import sys
from typing import TYPE_CHECKING, Any, BinaryIO, Dict, List, Optional, Set, Tuple

from reference.blocks.cache import unpacked

if TYPE_CHECKING:  # pragma: no cover
    from reference.blocks.cache import BlockCache
    from reference.cpu import Cpu
    from reference.isa.decoder import Insn

WINDOW = 16
"""Requests sent and not yet answered: 16 pages of 4 KiB stay well inside a socket's
buffer (``multiprocessing.Pipe`` is a Unix socket pair: ~208 KiB each way on Linux)."""

KEPT_MADE = 512
"""Answers the parent keeps unmarshalled-on-demand beside the disk cache (``take``): a
block is mostly taken at its code's next run, just after it came; an older one is
looked up in the disk cache like any other."""

Entry = Tuple[List[Tuple[str, str, str]], Any]
"""What the disk cache holds for a block: (alias, module, name) of its names, code."""


class Maker:
    """The child process that makes blocks, and the parent's side of the bargain: which
    instructions wait for which block, what is queued, what has come back."""

    def __init__(self, store: BlockCache, record: Optional[BinaryIO] = None) -> None:
        self.store = store  # the PC's disk cache: answers go there as they come (``collect``)
        self.record = record  # a file each request is written to (``reference.blocks.replay``)
        context = multiprocessing.get_context("fork")
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child,), daemon=True,
                                       name="x86lab-block-maker")
        self.process.start()
        child.close()
        # key -> (insn, physical, 0) of the block's first instruction, (insn, -1, its
        # count when it began to wait) of the rest
        self.waiting: Dict[str, List[Tuple[Insn, int, int]]] = {}
        self.queued: List[Tuple[str, bytes]] = []  # (key, request), sent from the end
        self.in_flight = 0
        # answers not yet taken, as the child marshalled them (``take``): the newest
        # ``KEPT_MADE`` while the store keeps them too, every one while it is off
        self.made: Dict[str, bytes] = {}
        self.hints: Dict[str, Optional[bytes]] = {}  # key -> the hint where it starts
        self.failed: Set[str] = set()  # keys the child could not make: made here
        self.broken = False
        self.requested = self.answered = 0
        self.most_queued = 0  # the longest the queue got: how far the child fell behind

    def request(self, cpu: Cpu, key: str, insns: List[Insn], physical: int,
                stack_size: int, memory: Optional[str], where: str,
                hint: Optional[bytes] = None) -> bool:
        """Ask for the block ``key`` of ``insns`` starting at ``physical`` (its first
        instruction waits for it; ``hint``: the disk cache's hint there); False if it
        cannot be asked (the child is gone, the page is not readable)."""
        from reference.blocks.compiler import PENDING

        insn = insns[0]
        if self.broken or key in self.failed:
            return False
        if key in self.waiting:
            self.waiting[key].append((insn, physical, 0))
            return True
        base = physical & ~0xFFF
        try:
            page = bytes(cpu.mem.read_bytes(base, 0x1000, "fetch"))
        except Exception:  # noqa: BLE001 - not RAM: the parent makes the block itself
            return False
        self.waiting[key] = [(insn, physical, 0)]
        self.hints[key] = hint
        for inside in insns[1:]:  # see ``_release``
            if inside.block is None:
                inside.block = PENDING
                self.waiting[key].append((inside, -1, inside.hits))
        payload = marshal.dumps((key, base, page, physical, stack_size, memory, where))
        self.queued.append((key, payload))
        if self.record is not None:
            from reference.blocks.replay import write_request
            write_request(self.record, payload)
        self.requested += 1
        self.most_queued = max(self.most_queued, len(self.queued))
        self._send()
        return True

    def _send(self) -> None:
        """Send queued requests while fewer than ``WINDOW`` are in flight, from the end
        of the queue: the newest, and after each ``collect`` the hottest (``_heat``).
        Why: on a cold boot the child falls behind (the tiny image: ~6,000 blocks, ~200
        requests queued at worst), and the newest request is for the code running now,
        while the oldest may be for code already left behind (its block is still made
        later and stored for the next boot). Tiny boot to the prompt, CPython, empty
        block cache, 7 alternating pairs: 22.5-24.3 s (mean 23.5) newest first against
        23.6-25.5 s (mean 24.3) oldest first, faster in every pair. Then (stop 31) the
        hottest first after each collection: 24.69-24.95 M of the 28.42 M instructions
        retired in blocks (6 boots) against 24.49-24.75 M newest first (3 boots,
        alternating), 0.2 M fewer interpreted."""
        while self.queued and self.in_flight < WINDOW and not self.broken:
            try:
                self.connection.send_bytes(self.queued.pop()[1])
            except OSError as error:
                self._lost(error)
                return
            self.in_flight += 1

    def collect(self, threshold: int) -> int:
        """Take the blocks that came back: each instruction that waited for one runs
        ``compile_block`` again at its next execution (its count one short of
        ``threshold``), which takes the block from ``made`` (``take``), or from the
        disk cache once ``made`` has let it go. Each block goes into the disk cache as
        it comes, not when its code next runs: code that stops running while its block
        is made would otherwise never have it stored, and the next boot would ask for it
        again (a warm tiny boot asked for ~1,600 blocks at threshold 40, ~150 at 100,
        every time). The child's marshalled entry is stored as it came and unmarshalled
        only by ``take``: before, each block was unmarshalled here, marshalled again for
        the store, then read back from SQLite and unmarshalled when its code ran, ~44 µs
        a block (timeit over a cold boot's 6,227 entries: loads 11.0, dumps 12.3, the
        SELECT 9.5 µs), where ``take`` costs one load, ~11 µs. Returns how many came
        back."""
        count = 0
        while not self.broken:
            try:
                if not self.connection.poll():
                    break
                key, entry = marshal.loads(self.connection.recv_bytes())
            except (OSError, EOFError, ValueError) as error:
                self._lost(error)
                break
            self.in_flight -= 1
            self.answered += 1
            count += 1
            hint = self.hints.pop(key, None)
            if entry is None:
                self.failed.add(key)
            else:
                self.made[key] = entry
                if self.store.db is not None:
                    self.store.put_entry(key, entry)
                    self.store.note(hint)
                    if len(self.made) > KEPT_MADE:  # the oldest: its code ran no more
                        del self.made[next(iter(self.made))]
            self._release(self.waiting.pop(key, []), threshold)
        if len(self.queued) > 1:
            self.queued.sort(key=self._heat)
        self._send()
        return count

    def _heat(self, queued: Tuple[str, bytes]) -> int:
        """How often the first instruction of a queued block has run: ``run()`` counts
        on while its block is being made, so the requests for the code running most
        go first (``_send`` takes them from the end)."""
        waiting = self.waiting.get(queued[0])
        return waiting[0][0].hits if waiting else 0

    def take(self, key: str) -> Optional[Entry]:
        """The entry of block ``key`` if the child made it and it is still kept here
        (once: the caller keeps the block), unmarshalled only now: a block whose code
        stopped running while it was made is never taken."""
        entry = self.made.pop(key, None)
        return None if entry is None else unpacked(entry)

    def _release(self, waiting: List[Tuple[Insn, int, int]], threshold: int) -> None:
        """Let the instructions that waited count again: the block's first one run
        short of the threshold, the others from where they stopped (``run()`` counts
        on while an instruction waits, for ``_heat``). Those others waited too
        because, once a block exists, ``run()`` no longer counts the instructions inside
        it (the block runs them); counted while it was being made, each reached the
        threshold soon after the first and asked for a block of its own (9,118 requests
        in a boot that makes 2,770 blocks without the second process)."""
        from reference.blocks.compiler import PENDING

        for insn, physical, hits in waiting:
            if insn.block is PENDING:
                insn.block = None
                insn.hits = max(threshold - 1, 0) if physical >= 0 else hits

    def _lost(self, error: BaseException) -> None:
        """The child is gone: every waiting instruction counts again, and the parent
        makes its blocks itself from now on."""
        if not self.broken:
            print(f"reference: block maker stopped ({error!r}); blocks are made in this "
                  "process", file=sys.stderr)
        self.broken = True
        for waiting in self.waiting.values():
            self._release(waiting, 1)
        self.waiting.clear()
        self.hints.clear()

    def figures(self) -> Dict[str, Any]:
        """What the child did, for the PC's stop record: blocks asked for, answered,
        answered with no code (made here instead), whether it stopped early, and the
        most requests that waited unsent at once (``_send``)."""
        return {"requested": self.requested, "answered": self.answered,
                "failed": len(self.failed), "stopped": self.broken,
                "most_queued": self.most_queued}

    def close(self) -> None:
        """Stop the child (what it had not sent back is lost: it is only speed)."""
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(timeout=5)
        try:
            self.connection.close()
        except OSError:
            pass


_decoded: Dict[int, Tuple[bytes, Dict[int, Any]]] = {}
"""In the child, per page asked about: its bytes at the last request and the
instructions decoded from them (by physical address), which ``make`` reuses while the
page holds the same bytes. Why: the blocks of a page overlap (a cold tiny boot's 6,170
blocks hold ~160,000 instructions of ~11,400 distinct byte strings), and decoding each
block's instructions afresh was ~0.4 ms of the ~1.4 ms a block cost beyond its
snippets."""


def make(key: str, base: int, page: bytes, physical: int, stack_size: int,
         memory: Optional[str], where: str) -> Tuple[str, Optional[List[Tuple[str, str, str]]],
                                                     Any]:
    """The child's work for one request: (key, origins, code), or (key, None, None) when
    the page gives another block than ``key`` (see the module docstring)."""
    from reference.blocks import compiler
    from reference.blocks.cache import BlockCache
    from reference.cpu import Cpu
    from reference.memory import SparseMemory

    ram = SparseMemory()
    ram.map(base, page)
    cpu = Cpu(ram, mode="prot32")  # CS.D = 1: ``compile_block`` makes only 32-bit blocks
    seen = _decoded.get(base)
    if seen is not None and seen[0] == page:
        cpu.icache = seen[1]
    else:
        _decoded[base] = (page, cpu.icache)
    insns = compiler.gather(cpu, physical, physical)
    if BlockCache.key([insn.raw for insn in insns], 32, stack_size, memory) != key:
        return key, None, None
    _, origins, code = compiler.made(insns, 32, {}, memory, stack_size, where)
    return key, origins, code


def _serve(connection: Any) -> None:
    """The child: answer requests until the parent closes its end (or dies: its end
    of the socket closes with it). Ctrl-C reaches the whole process group: it is the
    parent's to handle."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            request = marshal.loads(connection.recv_bytes())
        except (EOFError, OSError):
            return
        try:
            key, origins, code = make(*request)
        except Exception:  # noqa: BLE001 - whatever went wrong, the parent makes it
            key, origins, code = request[0], None, None
        # the entry as the disk cache stores it, marshalled apart: the parent stores
        # these bytes as they are and unmarshals them only for a block it runs (``take``)
        entry = None if code is None else marshal.dumps((origins, code))
        try:
            connection.send_bytes(marshal.dumps((key, entry)))
        except OSError:  # the parent is gone
            return
