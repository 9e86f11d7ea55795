"""Blocks made by a second process (``reference.blocks.background``): the same code the
parent would make, the interpreter's results whenever they arrive, and a child that
dies or answers with nothing only makes the parent do the work itself."""

from __future__ import annotations

import marshal
from pathlib import Path
from typing import Any, Callable, List, Optional, Tuple

import pytest

from reference import benchmark as programs
from reference.blocks import access, compiler
from reference.blocks.background import Maker, make
from reference.blocks.cache import BlockCache
from reference.blocks.tests.machines import CODE, both, frame, machine, state

PROGRAM = programs.PROGRAMS["instruction-mix"]
LIMIT = PROGRAM.instructions(50) + 1


def made_in_parent(monkeypatch: pytest.MonkeyPatch) -> List[int]:
    """A list that grows by one for each block this process assembles (a child forked
    after this counts in its own copy)."""
    assembled: List[int] = []
    real = compiler.assemble

    def counted(*args: object, **kwargs: object) -> str:
        assembled.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(compiler, "assemble", counted)
    return assembled


def run_collecting(cpu: object, maker: Maker, slice_: int = 200) -> Optional[object]:
    """``cpu.run`` in slices up to LIMIT, collecting between them as the PC does, and
    waiting each time until the child has answered all it was asked."""
    result = None
    while cpu.tsc < LIMIT and result is None:  # type: ignore[attr-defined]
        result = cpu.run(min(slice_, LIMIT - cpu.tsc))  # type: ignore[attr-defined]
        while maker.in_flight and maker.connection.poll(10):
            maker.collect(cpu.block_threshold)  # type: ignore[attr-defined]
        maker.collect(cpu.block_threshold)  # type: ignore[attr-defined]
    return result


def run_with_maker(directory: Path, kind: str,
                   before: Callable[[Maker], None] = lambda maker: None) -> Tuple[Any, ...]:
    """(the final state, the CPU, the maker) of the program with blocks from a child at
    threshold 3; ``before`` sees the maker before the run."""
    cpu = machine(PROGRAM.code(50), 3, kind)
    cpu.block_cache = BlockCache(directory)
    cpu.block_maker = maker = Maker(cpu.block_cache)
    before(maker)
    try:
        return state(cpu, run_collecting(cpu, maker)), cpu, maker
    finally:
        maker.close()


@pytest.mark.parametrize("kind", ["flat", "paged"])
def test_blocks_from_the_second_process_give_the_interpreters_results(
        tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    interpreted, _ = both(PROGRAM.code(50), LIMIT, kind)
    assembled = made_in_parent(monkeypatch)
    final, cpu, maker = run_with_maker(tmp_path, kind)
    assert final == interpreted
    blocks = [insn for insn in cpu.icache.values() if insn.block and insn.block.length]
    assert maker.answered == maker.requested > 0 and not maker.failed
    assert blocks and not assembled  # every block came from the child


def test_the_child_makes_the_code_the_parent_would(tmp_path: Path) -> None:
    cpu = machine(PROGRAM.code(50), 0, "flat")
    memory = access.mode_of(cpu)
    insns = compiler.gather(cpu, CODE, CODE)
    key = BlockCache.key([insn.raw for insn in insns], 32, cpu.stack_size, memory)
    where = f"<block at physical {CODE:#x}>"
    text = compiler.assemble(insns, 0xFFFFFFFF, 32, {}, memory, cpu.stack_size)
    page = cpu.mem.read_bytes(frame("flat", CODE), 0x1000)
    answer = make(key, CODE, page, CODE, cpu.stack_size, memory, where)
    assert answer[0] == key and answer[1]
    assert marshal.dumps(answer[2]) == marshal.dumps(compile(text, where, "exec"))
    assert make("0" * 64, CODE, page, CODE, cpu.stack_size, memory, where) == (
        "0" * 64, None, None)  # other bytes than the key says: no code


def test_a_key_the_child_cannot_make_is_made_here(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The child answers with no code (here: it finds other bytes than every key says,
    as ``make`` does when the page it got gives another block); the parent makes those
    blocks itself at their next run, with the same results."""
    from reference.blocks import background

    interpreted, _ = both(PROGRAM.code(50), LIMIT, "flat")
    assembled = made_in_parent(monkeypatch)
    monkeypatch.setattr(background, "make", lambda key, *rest: (key, None, None))
    final, _, maker = run_with_maker(tmp_path, "flat")
    assert final == interpreted
    assert maker.failed and assembled


def test_a_child_that_dies_leaves_the_work_to_the_parent(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture) -> None:
    interpreted, _ = both(PROGRAM.code(50), LIMIT, "flat")
    assembled = made_in_parent(monkeypatch)

    def kill(maker: Maker) -> None:
        maker.process.kill()
        maker.process.join()

    final, _, maker = run_with_maker(tmp_path, "flat", kill)
    assert final == interpreted
    assert maker.broken and assembled
    assert "block maker stopped" in capsys.readouterr().err


@pytest.mark.parametrize("store_on", [True, False])
def test_a_block_goes_to_the_disk_cache_when_it_comes_back(tmp_path: Path,
                                                          store_on: bool) -> None:
    """Code that never runs again after asking for its block still has the block
    stored, with its hint, for the next run: the answer is stored when collected, not
    when the code next runs. Either way the answer also waits in ``made``, where
    ``compile_block`` takes it without asking the store (with the store off, a file it
    could not write (``_off``), it is only there)."""
    cpu = machine(PROGRAM.code(50), 3, "flat")
    store = cpu.block_cache = BlockCache(tmp_path)
    cpu.block_maker = maker = Maker(store)
    try:
        assert compiler.compile_block(cpu, CODE, CODE) is compiler.PENDING
        if not store_on:
            store.close()  # as ``_off`` leaves it: no file, every lookup a miss
        while maker.in_flight and maker.connection.poll(10):
            maker.collect(cpu.block_threshold)
        assert maker.answered == 1 and not maker.failed
        assert len(maker.made) == 1 and len(store.pending) == store_on
        lookups = (store.hits, store.misses)
        block = compiler.compile_block(cpu, CODE, CODE)
        assert block is not None and block.length and not maker.made
        assert (store.hits, store.misses) == lookups  # taken from ``made``
    finally:
        maker.close()
    store.close()
    again = BlockCache(tmp_path)
    hint = again.hint_of(again.window(cpu.mem, CODE), 32, cpu.stack_size,
                         access.mode_of(cpu))
    stored = again.may_have(hint) and len(again.keys) == 1
    assert stored == store_on


def test_requests_the_child_has_no_room_for_wait_and_go_hottest_first(tmp_path: Path) -> None:
    """With ``WINDOW`` requests in flight the next waits in the parent (and the stop
    record's ``most_queued`` says so); once there is room, the waiting go newest first,
    and after a collection the hottest first: the code that ran most while it waited."""
    from reference.blocks.background import WINDOW

    cpu = machine(PROGRAM.code(50), 3, "flat")
    cpu.block_cache = BlockCache(tmp_path)
    cpu.block_maker = maker = Maker(cpu.block_cache)
    real = maker.connection
    try:
        maker.in_flight = WINDOW  # the child is busy
        assert compiler.compile_block(cpu, CODE, CODE) is compiler.PENDING
        assert len(maker.queued) == 1 and maker.figures()["most_queued"] == 1
        sent: List[bytes] = []

        class Recorder:
            def send_bytes(self, data: bytes) -> None:
                sent.append(data)

            def poll(self) -> bool:
                return False  # nothing came back

        maker.connection = Recorder()  # type: ignore[assignment]
        maker.queued[:] = [("a", b"oldest"), ("b", b"middle"), ("c", b"newest")]
        maker.in_flight = WINDOW - 2  # room for two
        maker._send()
        assert sent == [b"newest", b"middle"] and maker.queued == [("a", b"oldest")]
        assert maker.in_flight == WINDOW

        class Waiting:
            def __init__(self, hits: int) -> None:
                self.hits = hits

        sent.clear()
        maker.queued[:] = [("a", b"hot"), ("b", b"cold"), ("c", b"warm"), ("d", b"gone")]
        maker.waiting.update({"a": [(Waiting(900), 1, 0)], "b": [(Waiting(41), 2, 0)],
                              "c": [(Waiting(300), 3, 0)]})  # "d": none waits any more
        maker.in_flight = WINDOW - 3
        maker.collect(3)
        assert sent == [b"hot", b"warm", b"cold"] and maker.queued == [("d", b"gone")]
    finally:
        maker.connection = real
        maker.close()


def test_instructions_inside_a_waiting_block_count_on_from_where_they_stopped(
        tmp_path: Path) -> None:
    """``run()`` counts an instruction on while its block is being made (the maker's
    ``_heat``); once the block is back, its first instruction is one run short of the
    threshold and the others are where they were when the wait began, or each would
    ask for a block of its own at once."""
    cpu = machine(PROGRAM.code(50), 3, "flat")
    cpu.block_cache = BlockCache(tmp_path)
    cpu.block_maker = maker = Maker(cpu.block_cache)
    try:
        maker.in_flight = 16  # the child is busy: the request stays queued
        block = compiler.compile_block(cpu, CODE, CODE)
        assert block is compiler.PENDING
        first = cpu.icache[CODE]
        first.block = block  # as run() keeps it
        (key, waiting), = maker.waiting.items()
        before = [insn.hits for insn, _, _ in waiting]
        assert waiting[0][0] is first and len(waiting) > 2
        assert all(insn.block is compiler.PENDING for insn, _, _ in waiting)
        for insn, _, _ in waiting:
            insn.hits += 50  # as run() counts while they wait
        maker._release(maker.waiting.pop(key), 3)
        assert [insn.hits for insn, _, _ in waiting] == [2] + before[1:]
        assert all(insn.block is None for insn, _, _ in waiting)
    finally:
        maker.close()


@pytest.mark.parametrize("store_on", [True, False])
def test_answers_kept_beside_the_store_are_the_newest(tmp_path: Path, store_on: bool,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Answers wait in ``made`` as the child marshalled them, and ``take`` gives the
    entry back once. With the store on, only the newest ``KEPT_MADE`` are kept there
    (an older one is in the store); with it off, every one is (nowhere else has it)."""
    from reference.blocks import background

    monkeypatch.setattr(background, "KEPT_MADE", 2)
    store = BlockCache(tmp_path)
    if not store_on:
        store.close()
    maker = Maker(store)
    real = maker.connection
    code = compile("x = 1", "<test>", "exec")
    answers = [marshal.dumps((key, marshal.dumps(([("a", "m", "n")], code))))
               for key in ("k1", "k2", "k3")]

    class Answering:
        def poll(self) -> bool:
            return bool(answers)

        def recv_bytes(self) -> bytes:
            return answers.pop(0)

        def send_bytes(self, data: bytes) -> None:
            raise AssertionError("nothing is queued")

    try:
        maker.connection = Answering()  # type: ignore[assignment]
        maker.in_flight = 3
        assert maker.collect(3) == 3 and maker.answered == 3
        assert list(maker.made) == (["k2", "k3"] if store_on else ["k1", "k2", "k3"])
        assert (store.get("k1") is not None) == store_on  # the oldest: in the store
        taken = maker.take("k3")
        assert taken is not None and taken[0] == [("a", "m", "n")]
        assert taken[1] == code
        assert maker.take("k3") is None  # once
    finally:
        maker.connection = real
        maker.close()
        store.close()
