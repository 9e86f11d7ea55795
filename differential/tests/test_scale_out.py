"""``x86lab bench --scale-out``: the rounds' structure and arithmetic (not their speed: a
test on a shared machine cannot promise a ratio)."""

from __future__ import annotations

import shutil

import pytest

from differential.scale_out import rounds_of, summarise, window_rate


def test_rounds_alternate_one_and_two_workers():
    assert rounds_of(4) == [1, 2, 1, 2]
    assert rounds_of(3) == [1, 2, 1]


def test_the_window_runs_from_the_first_to_the_last_commit_inside_it():
    # commits at 0.5 s (warm-up, left out), 2, 3 and 4.5 s (inside 1..5), 9 s (after)
    samples = [(0.5, 0), (2.0, 100), (3.0, 200), (4.5, 300), (9.0, 400)]
    assert window_rate(samples, 1.0, 5.0) == (200, 2.5)  # 300 - 100 cases, 4.5 - 2.0 s
    assert window_rate(samples, 1.0, 2.5) == (0, 0.0)  # one commit: nothing to measure


def test_ratio_is_the_mean_two_worker_rate_over_the_mean_one_worker_rate():
    rounds = [{"jobs": 1, "cases_per_second": 100.0}, {"jobs": 2, "cases_per_second": 190.0},
              {"jobs": 1, "cases_per_second": 110.0}, {"jobs": 2, "cases_per_second": 200.0}]
    result = summarise(rounds)
    assert result["mean_cases_per_second"] == {"1": 105.0, "2": 195.0}
    assert result["ratio"] == pytest.approx(195 / 105)
    assert result["pair_ratios"] == pytest.approx([1.9, 200 / 110])


def test_cpu_shares_split_the_machine_between_workers_redis_and_others():
    from differential.scale_out import cpu_shares

    before = {"wall": 100.0, "workers": 5.0, "redis": 1.0, "own": 2.0, "busy": 50.0,
              "steal": 3.0}
    # 10 s of wall: the workers used 18 s (1.8 cores), Redis 0.5 s, this process 0.5 s,
    # and the machine was busy 20 s in all, so 1 s went to other people's processes
    after = {"wall": 110.0, "workers": 23.0, "redis": 1.5, "own": 2.5, "busy": 70.0,
             "steal": 4.0}
    shares = cpu_shares(before, after, cases=36000)
    assert shares["wall_seconds"] == pytest.approx(10.0)
    assert shares["workers_cores"] == pytest.approx(1.8)
    assert shares["redis_cores"] == pytest.approx(0.05)
    assert shares["others_cores"] == pytest.approx(0.1)
    assert shares["steal_cores"] == pytest.approx(0.1)
    assert shares["workers_us_per_case"] == pytest.approx(18.0 / 36000 * 1e6)  # 500 us


def test_a_short_scale_out_run_has_its_rounds_and_their_arithmetic(capsys):
    pytest.importorskip("rq")
    if shutil.which("redis-server") is None:  # scripts/apt-packages.txt installs it
        pytest.fail("redis-server is missing: run scripts/setup.sh", pytrace=False)
    from differential.cluster import ClusterPlan
    from differential.scale_out import describe, measure

    plan = ClusterPlan(seed=3, forms="CLC", batch_size=20,
                       checkers="differential.tests.cluster_plants:divergent")
    result = measure(minutes=0.15, rounds=2, warmup=2.0, plan=plan)
    assert result["redis"] == {"appendonly": "yes", "appendfsync": "always"}
    assert [one["jobs"] for one in result["rounds"]] == [1, 2]
    assert [one["workers_published"] for one in result["rounds"]] == [1, 2]
    for one in result["rounds"]:
        assert one["cases"] > 0 and one["cases"] % 20 == 0  # whole batches
        assert 0 < one["seconds"] <= 0.15 * 60 - 2.0  # inside the window
        assert one["cases_per_second"] == pytest.approx(one["cases"] / one["seconds"])
        assert one["joiner_status"] == 0
        cpu = one["cpu"]  # the joiner's tree was reaped into this process's rusage
        assert cpu["workers_cores"] > 0 and cpu["workers_us_per_case"] > 0
        assert cpu["redis_cores"] > 0  # the workers talked to it
        assert cpu["wall_seconds"] >= 0.15 * 60
    first, second = (one["cases_per_second"] for one in result["rounds"])
    assert result["ratio"] == pytest.approx(second / first)
    assert result["pair_ratios"] == pytest.approx([second / first])
    lines = describe(result)
    assert len(lines) == 4 and "2 workers / 1 worker" in lines[-1]


def test_scale_out_options_are_checked(capsys):
    from x86lab.cli import main

    assert main(["bench", "--scale-out", "--rounds", "1"]) == 2
    assert "--rounds of at least 2" in capsys.readouterr().err
    assert main(["bench", "--scale-out", "--pipeline"]) == 2
