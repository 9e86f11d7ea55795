"""Blocks kept on disk (``reference.blocks.cache``): a second machine finds the first
one's blocks, runs them to the interpreter's state, and a cache that cannot be read
turns itself off without changing any result. Standard library only (PyPy too)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reference import benchmark as programs
from reference.blocks.cache import BlockCache
from reference.blocks.tests.machines import both, machine, state


def run_with_cache(directory: Path, kind: str, limit: int = 0) -> tuple:
    program = programs.PROGRAMS["instruction-mix"]
    cpu = machine(program.code(50), 1, kind)
    cpu.block_cache = BlockCache(directory)
    result = cpu.run(limit or program.instructions(50) + 1)
    cpu.block_cache.flush()
    return state(cpu, result), cpu.block_cache


@pytest.mark.parametrize("kind", ["sparse", "flat", "paged"])
def test_a_second_run_takes_every_block_from_the_first_runs_cache(tmp_path: Path,
                                                                   kind: str) -> None:
    program = programs.PROGRAMS["instruction-mix"]
    interpreted, _ = both(program.code(50), program.instructions(50) + 1, kind)
    first, made = run_with_cache(tmp_path, kind)
    second, found = run_with_cache(tmp_path, kind)
    assert first == second == interpreted
    assert made.misses > 0 and made.hits == 0
    assert found.hits == made.misses and found.misses == 0


class Counting:
    """An SQLite connection that counts the statements run through it."""

    def __init__(self, db: object) -> None:
        self.db, self.statements = db, 0

    def execute(self, *args: object) -> object:
        self.statements += 1
        return self.db.execute(*args)  # type: ignore[attr-defined]


def test_a_key_the_file_did_not_hold_is_a_miss_without_a_query(tmp_path: Path) -> None:
    """The keys are read once when the file is opened: a lookup of any other key
    misses at once; one of those keys is still read from the file."""
    _, made = run_with_cache(tmp_path, "flat")
    made.close()
    opened = BlockCache(tmp_path)
    assert opened.keys and opened.keys == made.keys
    counting = Counting(opened.db)
    opened.db = counting  # type: ignore[assignment]
    assert opened.get("0" * 64) is None and counting.statements == 0
    assert opened.get(next(iter(made.keys))) is not None and counting.statements == 1
    assert (opened.hits, opened.misses) == (1, 1)


def test_blocks_for_other_modes_or_bytes_are_other_entries() -> None:
    raws = [bytes.fromhex("01d8"), bytes.fromhex("75f7")]
    keys = {BlockCache.key(raws, 32, 32, "flat"), BlockCache.key(raws, 32, 16, "flat"),
            BlockCache.key(raws, 32, 32, "paged"), BlockCache.key(raws, 32, 32, None),
            BlockCache.key([bytes.fromhex("01d875"), bytes.fromhex("f7")], 32, 32, "flat")}
    assert len(keys) == 5


def test_an_unreadable_cache_turns_itself_off_and_changes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    first, made = run_with_cache(tmp_path, "flat")
    made.close()
    made.path.write_bytes(b"this is not an SQLite database" * 100)
    second, broken = run_with_cache(tmp_path, "flat")
    assert second == first
    assert broken.db is None and "block cache" in capsys.readouterr().err


def test_only_the_newest_caches_are_kept(tmp_path: Path) -> None:
    """Each change to the reference makes a new cache file: older ones go."""
    import os

    from reference.blocks import cache

    for age, name in enumerate(["a", "b", "c", "d"]):
        path = tmp_path / f"{name}.sqlite"
        path.write_bytes(b"")
        os.utime(path, (1000 - age, 1000 - age))  # a is the newest
    (tmp_path / "d.sqlite-wal").write_bytes(b"")
    made = BlockCache(tmp_path)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(["a.sqlite", "b.sqlite", made.path.name] + [
        n for n in left if n.startswith(made.path.name + "-")])
    assert cache.KEEP == 3


def test_a_cache_in_use_is_kept_though_others_were_written_since(tmp_path: Path) -> None:
    """A run that finds all its blocks writes nothing to its cache; opening it must
    still count as a use, or caches that other trees wrote later push it out."""
    import os

    from reference.blocks import cache

    ours = BlockCache(tmp_path)
    ours.close()
    for age, name in enumerate(["a", "b"]):
        path = tmp_path / f"{name}.sqlite"
        path.write_bytes(b"")
        os.utime(path, (2000 - age, 2000 - age))
    os.utime(ours.path, (1000, 1000))  # written long before a and b
    BlockCache(tmp_path).close()  # a warm run of our tree: it reads only
    newest = tmp_path / "c.sqlite"
    newest.write_bytes(b"")  # another tree's first run: ``_prune`` makes room for it
    cache._prune(tmp_path, cache.KEEP - 1)
    assert sorted(p.name for p in tmp_path.glob("*.sqlite")) == sorted(
        ["c.sqlite", ours.path.name])  # a and b, older than our warm run, went


def test_a_cached_block_is_taken_long_before_one_would_be_made(tmp_path: Path) -> None:
    """With the disk cache, a block an earlier run made is taken at the
    ``cached_threshold``-th execution, far below ``block_threshold``; a block the cache
    lacks is not made then (the lookup compiles nothing)."""
    program = programs.PROGRAMS["instruction-mix"]
    limit = program.instructions(50) + 1
    interpreted, _ = both(program.code(50), limit, "flat")
    first, made = run_with_cache(tmp_path, "flat")
    for threshold, expect_hits in ((10_000, True), (10_000, False)):
        cpu = machine(program.code(50), threshold, "flat")
        cpu.cached_threshold = 3
        directory = tmp_path if expect_hits else tmp_path / "empty"
        cpu.block_cache = BlockCache(directory)
        assert state(cpu, cpu.run(limit)) == interpreted
        blocks = [insn for insn in cpu.icache.values() if insn.block and insn.block.length]
        assert (cpu.block_cache.hits == made.misses) is expect_hits
        assert bool(blocks) is expect_hits  # nothing made below the threshold


def test_a_lookup_where_no_block_was_made_decodes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A first run that stopped before making any block leaves a cache with no hints.
    In the second, every cached-only lookup answers before gathering (decoding ahead)
    and hashing a key, and the results are the interpreter's (without the hints, this
    run gathered 19 times for 18 misses)."""
    from reference.blocks import compiler

    program = programs.PROGRAMS["instruction-mix"]
    limit = program.instructions(50) + 1
    interpreted, _ = both(program.code(50), limit, "flat")
    _, made = run_with_cache(tmp_path, "flat", limit=12)
    made.close()
    gathers = []
    real_gather = compiler.gather

    def counted_gather(*args: object, **kwargs: object) -> object:
        gathers.append(args[2])
        return real_gather(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(compiler, "gather", counted_gather)
    cpu = machine(program.code(50), 10_000, "flat")
    cpu.cached_threshold = 3
    cpu.block_cache = BlockCache(tmp_path)
    assert state(cpu, cpu.run(limit)) == interpreted
    assert gathers == [] and (cpu.block_cache.hits, cpu.block_cache.misses) == (0, 0)


def test_the_hints_are_read_back_with_the_blocks(tmp_path: Path) -> None:
    _, made = run_with_cache(tmp_path, "paged")
    made.close()
    assert made.hints and BlockCache(tmp_path).hints == made.hints
    assert BlockCache(tmp_path).windows == made.windows == {
        hint.split(b" ", 3)[3] for hint in made.hints}


def test_a_window_with_spaces_in_it_is_found_before_its_modes(tmp_path: Path) -> None:
    """``may_start`` (no modes needed) answers for the bytes alone, spaces among them;
    ``may_have`` still tells the modes apart."""
    from reference.memory import SparseMemory

    memory = SparseMemory()
    memory.map(0x5000, b"  \x20 x" * 1024)
    cache = BlockCache(tmp_path)
    window = BlockCache.window(memory, 0x5000)
    assert not cache.may_start(window)
    cache.note(BlockCache.hint_of(window, 32, 32, "paged:023"))
    assert cache.may_start(window) and not cache.may_start(BlockCache.window(memory, 0x5001))
    assert cache.may_have(BlockCache.hint_of(window, 32, 32, "paged:023"))
    assert not cache.may_have(BlockCache.hint_of(window, 32, 16, "paged:023"))


def test_a_hint_holds_the_modes_and_the_bytes_up_to_the_page_end() -> None:
    from reference.memory import SparseMemory

    memory = SparseMemory()
    memory.map(0x5000, bytes(range(256)) * 16)
    def hint(physical: int, stack_size: int) -> object:
        return BlockCache.hint_of(BlockCache.window(memory, physical), 32, stack_size, "flat")

    near_end = hint(0x5FFA, 32)
    assert near_end == b"32 32 flat " + bytes(range(0xFA, 0x100))
    assert hint(0x5000, 16) != hint(0x5000, 32)
    assert hint(0x9000, 32) is None  # nothing mapped there
