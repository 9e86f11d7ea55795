"""``x86lab bench --ir`` (``harness.cost_bench``): reading callgrind's total, the marginal
cost between two sizes, the command line's refusals, and (slow) that a run under
callgrind repeats its count where seconds do not."""

from __future__ import annotations

import shutil
import subprocess
import sys

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


def test_workloads_measure_a_boot_window_and_a_batch() -> None:
    from differential.campaign import BATCH

    boot, case = cost_bench.workloads(1_000, 5_000)
    assert boot.sizes == (1_000, 6_000) and boot.scale == 1
    assert case.sizes == (1, 2) and case.scale == BATCH
    argv = case.command("python", 2, None)
    assert argv[-3:] == ["differential.throughput", "--stages", "2"]


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
