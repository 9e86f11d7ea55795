"""``x86lab bench --ir`` (``harness.cost_bench``): reading callgrind's total, the marginal
cost between two sizes, the command line's refusals, and (slow) that a run under
callgrind repeats its count where seconds do not."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import List, Optional, Tuple

import pytest

from ground.cache import REPO_ROOT
from harness import cost_bench


def test_the_total_is_callgrinds_last_collected_line() -> None:
    stderr = ("==12== Callgrind, a call-graph generating cache profiler\n"
              "==12== Collected : 1000\n==12==\n==12== I   refs:      1,000\n"
              "==13== Collected : 123456789\n")
    assert cost_bench.collected(stderr) == 123456789


def test_no_total_is_an_error_that_shows_the_output() -> None:
    with pytest.raises(cost_bench.CostBenchError, match="valgrind: something broke"):
        cost_bench.collected("python: fine\nvalgrind: something broke\n")


def test_the_marginal_cost_cancels_what_both_runs_share() -> None:
    # start-up 5,000; 7 host instructions a unit; two sizes 100 and 300 units apart
    small, large = 5_000 + 7 * 100, 5_000 + 7 * 300
    assert cost_bench.marginal(small, large, 200, 1) == 7
    assert cost_bench.marginal(small, large, 1, 200) == 7  # one step of 200 cases


IMAGE = SimpleNamespace(kernel=Path("bzImage"), initrd=None, cmdline="console=ttyS0")


def test_workloads_measure_boot_windows_and_a_batch() -> None:
    from differential.campaign import BATCH
    from reference.cpu import MAKER_BLOCK_THRESHOLD

    boot, blocks, case = cost_bench.workloads(1_000, 5_000)
    assert boot.sizes == (1_000, 6_000) and boot.scale == 1 and not boot.filled
    assert "--no-block-cache" in boot.command("python", 6_000, IMAGE)
    assert blocks.sizes == (cost_bench.BLOCKS_START,
                            cost_bench.BLOCKS_START + cost_bench.BLOCKS_SPAN)
    assert blocks.filled and blocks.filler is not None
    for command, threshold in ((blocks.filler, MAKER_BLOCK_THRESHOLD),
                               (blocks.command, cost_bench.TAKE_ONLY)):
        argv = command("python", 7_000, IMAGE)
        assert "--no-block-cache" not in argv and "--no-block-maker" in argv
        assert argv[argv.index("--block-threshold") + 1] == str(threshold)
        assert argv[-2:] == ["--budget", "7000"]
    assert case.sizes == (1, 2) and case.scale == BATCH and not case.filled
    argv = case.command("python", 2, None)
    assert argv[-3:] == ["differential.throughput", "--stages", "2"]


def test_the_blocks_window_is_counted_on_a_cache_filled_first(monkeypatch) -> None:
    """Each tree's block cache is filled by an uncounted run of the larger size before
    any run is counted; only the blocks' runs see that cache."""
    events: List[Tuple[str, str, Optional[Path]]] = []

    def fill(tree: Path, argv: List[str], cache: Path) -> None:
        events.append(("fill", argv[-1], cache))

    def measure_one(tree: Path, argv: List[str], scratch: Path,
                    cache: Optional[Path] = None) -> int:
        events.append(("count", argv[-1], cache))
        return 1_000 * int(argv[-1])  # 1,000 host instructions a unit of size

    monkeypatch.setattr(cost_bench, "fill", fill)
    monkeypatch.setattr(cost_bench, "measure_one", measure_one)
    monkeypatch.setattr("harness.guest.find_image", lambda kernel: IMAGE)
    figures = cost_bench.measure()  # (no cache file made: the same, empty, after)
    larger = str(cost_bench.BLOCKS_START + cost_bench.BLOCKS_SPAN)
    assert events[0][:2] == ("fill", larger) and events[0][2] is not None
    assert all(kind == "count" for kind, _, _ in events[1:]) and len(events) == 7
    caches = {size: cache for kind, size, cache in events[1:]}
    assert caches[larger] == caches[str(cost_bench.BLOCKS_START)] == events[0][2]
    assert caches[str(cost_bench.BOOT_START)] is None and caches["1"] is None
    rows = {row["workload"]: row["this tree"] for row in figures["figures"]}
    assert rows["boot, blocks"] == rows["boot, interpreter"] == 1_000


@pytest.mark.parametrize("arguments, says", [
    (["--against", "HEAD"], "--against belongs to the ir bench"),
    (["--ir", "--boot"], "different benches"),
    (["--ir", "--pipeline"], "different benches"),
])
def test_the_command_line_refuses_what_does_not_go_together(arguments, says) -> None:
    done = subprocess.run([sys.executable, "-m", "x86lab.cli", "bench", *arguments],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert says in done.stderr


def test_an_unknown_revision_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(cost_bench.CostBenchError, match="cannot check out 'no-such-rev"):
        cost_bench.worktree("no-such-rev-x86lab", tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind not installed")
def test_a_boot_window_under_callgrind_repeats_its_count(tmp_path) -> None:
    """The reason for the bench: the same run counts the same host instructions (within
    0.1 %, where its seconds swing by tens of percent on this machine), and more guest
    instructions count more."""
    from harness.guest import find_image

    image = find_image("tiny")
    boot = cost_bench.workloads()[0]
    runs = [cost_bench.measure_one(REPO_ROOT, boot.command(sys.executable, size, image),
                                   tmp_path) for size in (20_000, 20_000, 60_000)]
    first, again, longer = runs
    assert abs(first - again) <= first * 0.001
    assert longer > first + 40_000 * 100  # at least 100 host instructions a guest one


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind not installed")
def test_a_blocks_window_on_a_filled_cache_repeats_its_count(tmp_path) -> None:
    """The blocks' window is as repeatable as the interpreter's once its cache is full:
    which blocks exist no longer depends on anything but the guest's instructions."""
    from harness.guest import find_image

    image = find_image("tiny")
    blocks = cost_bench.workloads()[1]
    cache = tmp_path / "cache"
    cost_bench.fill(REPO_ROOT, blocks.filler(sys.executable, 400_000, image), cache)
    filled = cost_bench.cached_blocks(cache)
    runs = [cost_bench.measure_one(REPO_ROOT, blocks.command(sys.executable, size, image),
                                   tmp_path, cache) for size in (200_000, 200_000, 400_000)]
    first, again, longer = runs
    assert len(filled) == 1 and sum(filled.values()) > 10  # blocks were made, once
    assert cost_bench.cached_blocks(cache) == filled  # and only taken since
    assert abs(first - again) <= first * 0.001
    assert longer > first + 200_000 * 100


def test_a_run_whose_block_cache_went_off_is_an_error(tmp_path) -> None:
    """Its blocks would then be made in the counted run: say so rather than count it."""
    argv = [sys.executable, "-c", "import sys; sys.stderr.write("
            f"'{cost_bench.OFF_NOTICE} /x/y.sqlite off: database is locked\\n')"]
    with pytest.raises(cost_bench.CostBenchError, match="off: database is locked"):
        cost_bench.fill(REPO_ROOT, argv, tmp_path)
    cost_bench._run(REPO_ROOT, argv, None, argv, "not filled")  # no cache asked: no error


def test_counted_runs_that_make_blocks_are_an_error(monkeypatch) -> None:
    """A counted run that made blocks (here: one that writes a block cache file the
    filling run did not, as an edit to the tree mid-bench does by moving the cache's
    fingerprint) would count making them: the bench refuses its figures."""
    def fill(tree: Path, argv: List[str], cache: Path) -> None:
        pass

    def measure_one(tree: Path, argv: List[str], scratch: Path,
                    cache: Optional[Path] = None) -> int:
        if cache is not None:
            _block_file(cache, "made while counted")
        return 1_000 * int(argv[-1])

    monkeypatch.setattr(cost_bench, "fill", fill)
    monkeypatch.setattr(cost_bench, "measure_one", measure_one)
    monkeypatch.setattr("harness.guest.find_image", lambda kernel: IMAGE)
    with pytest.raises(cost_bench.CostBenchError, match="did not run on the filled block cache"):
        cost_bench.measure()


def _block_file(cache: Path, key: str) -> None:
    """Add block ``key`` to a block cache file under ``cache`` (as a run that made it)."""
    import sqlite3

    (cache / "reference-blocks").mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(str(cache / "reference-blocks" / "tree.sqlite")) as db:
        db.execute("CREATE TABLE IF NOT EXISTS blocks (key TEXT PRIMARY KEY, "
                   "entry BLOB NOT NULL)")
        db.execute("INSERT OR IGNORE INTO blocks VALUES (?, x'00')", (key,))
