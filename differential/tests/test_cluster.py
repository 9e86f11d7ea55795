"""Campaigns across machines: workers share one real redis-server (started here on a free
127.0.0.1 port). What must hold: no batch runs twice, divergences and counts land in
Redis, a dead work horse's batch is retried and counted once, a batch that keeps killing
its worker becomes a finding, and a SIGKILLed Redis (AOF, fsync always) loses nothing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("rq")
pytest.importorskip("redis")
if shutil.which("redis-server") is None:  # scripts/apt-packages.txt installs it
    pytest.fail("redis-server is missing: run scripts/setup.sh", pytrace=False)

from differential.cluster import QUEUE, ClusterPlan, connect, key  # noqa: E402
from differential.tests.redis_server import RedisServer  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PLANTS = "differential.tests.cluster_plants"


@pytest.fixture
def server(tmp_path):
    redis = RedisServer(tmp_path / "redis").start()
    yield redis
    redis.stop()


def _joiner(url: str, plan: ClusterPlan, jobs: int, seconds: float) -> subprocess.Popen:
    """``join`` in its own process (its workers die with it), as on another machine."""
    code = (f"from differential.cluster import ClusterPlan, join\n"
            f"import sys\n"
            f"sys.exit(1 if join({url!r}, ClusterPlan(**{plan.__dict__!r}), {jobs}, "
            f"{seconds / 60!r}) else 0)\n")
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "x86lab.cli", "fuzz", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def _wait(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _runs(client) -> dict:
    return {int(k): int(v) for k, v in client.hgetall(key("runs")).items()}


def _leases(client) -> set:
    """Batch numbers RQ still holds: queued, being dequeued (its intermediate queue, which
    RQ's maintenance requeues), running (started) or failed."""
    from rq import Queue
    from rq.registry import FailedJobRegistry, StartedJobRegistry

    queue = Queue(QUEUE, connection=client)
    ids = set(queue.job_ids) | set(queue.intermediate_queue.get_job_ids()) | \
        set(StartedJobRegistry(queue=queue).get_job_ids()) | \
        set(FailedJobRegistry(queue=queue).get_job_ids())
    return {int(i.split("-")[1]) for i in ids}


def test_two_workers_share_one_campaign_and_no_batch_runs_twice(server, tmp_path):
    plan = ClusterPlan(seed=3, forms="CLC", batch_size=20, checkers=f"{PLANTS}:divergent")
    joiner = _joiner(server.url, plan, jobs=2, seconds=15)
    output = joiner.communicate(timeout=120)[0].decode()
    assert joiner.returncode == 0, output
    client = connect(server.url)
    done = {int(b) for b in client.smembers(key("done"))}
    runs = _runs(client)
    assert len(done) >= 4, (done, output)
    assert all(n == 1 for n in runs.values()), runs  # no batch ran twice
    workers = {k.decode().split("\t")[0] for k in client.hkeys(key("workers"))}
    assert len(workers) == 2, workers  # both workers took batches
    cases = sum(int(v) for k, v in client.hgetall(key("workers")).items()
                if k.endswith(b"\tcases"))
    assert cases == 20 * len(done)  # each done batch counted once
    stored = client.hgetall(key("divergences"))
    assert stored and {int(f.split(b":")[0]) for f in stored} <= set(runs)
    assert client.llen(key("found")) == len(stored)  # each published once
    forms = {k: int(v) for k, v in client.hgetall(key("forms")).items()}
    diverged = sum(n for k, n in forms.items() if k.endswith(b"\tdiverge"))
    signatures = {k: int(v) for k, v in client.hgetall(key("signatures")).items()}
    assert diverged and sum(signatures.values()) == diverged  # every hit grouped, once
    per_signature = {}
    for value in stored.values():
        mark = json.loads(value)["signature"]
        per_signature[mark] = per_signature.get(mark, 0) + 1
    assert set(per_signature) == {k.decode() for k in signatures}
    assert max(per_signature.values()) <= 5 < max(signatures.values())  # grouped, counted
    status = _cli("status", "--campaign", server.url, "--once")
    assert status.returncode == 0 and "divergences" in status.stdout, status.stderr
    report = _cli("report", "--campaign", server.url, "--out", str(tmp_path / "report"))
    assert report.returncode == 1, report.stderr  # divergences: the tool found failures
    saved = json.loads((tmp_path / "report" / "report.json").read_text())
    assert saved["divergences"] == len(stored) and saved["cases"] == cases
    assert len(list((tmp_path / "report" / "divergences").glob("*.json"))) == len(stored)


def test_a_batch_that_keeps_killing_its_worker_is_a_finding(server, tmp_path):
    from differential.cluster import RETRIES

    plan = ClusterPlan(batch_size=5, checkers=f"{PLANTS}:kills_its_process")
    joiner = _joiner(server.url, plan, jobs=1, seconds=6)
    output = joiner.communicate(timeout=120)[0].decode()
    client = connect(server.url)
    runs = _runs(client)
    assert runs.get(0) == 1 + RETRIES, (runs, output)  # retried, then given up: no loop
    assert client.scard(key("done")) == 0
    report = _cli("report", "--campaign", server.url, "--out", str(tmp_path / "report"))
    assert report.returncode == 1
    text = (tmp_path / "report" / "report.md").read_text()
    assert "batch-0 failed after its retries" in text


@pytest.mark.slow
def test_sigkill_of_a_worker_then_of_redis_loses_no_divergence_or_lease(server):
    plan = ClusterPlan(seed=5, batch_size=50, checkers=f"{PLANTS}:slow_divergent")
    joiner = _joiner(server.url, plan, jobs=1, seconds=40)
    client = connect(server.url)
    try:
        # 1. SIGKILL the process running a batch, mid-batch
        batch, pid = _wait(lambda: next(((int(b), int(v.split(b"\t")[1])) for b, v in
                                         client.hgetall(key("running")).items()), None),
                           60, "a running batch")
        time.sleep(0.3)
        os.kill(pid, signal.SIGKILL)
        _wait(lambda: client.sismember(key("done"), batch), 60, f"batch {batch} retried")
        assert _runs(client)[batch] == 2  # run again by RQ, once
        # 2. SIGKILL the Redis server while the campaign goes on, then restart it
        _wait(lambda: client.scard(key("done")) >= 3, 60, "three batches done")
        before = set(client.hkeys(key("divergences")))
        done_before = set(client.smembers(key("done")))
        leased_before = {b for b in range(int(client.get(key("next-batch"))))
                         if str(b).encode() not in done_before}
        server.kill()
    finally:
        joiner.kill()
        joiner.wait()
    server.start()
    client = connect(server.url)
    assert before <= set(client.hkeys(key("divergences")))  # every divergence survived
    assert done_before <= set(client.smembers(key("done")))
    done_after = {int(b) for b in client.smembers(key("done"))}
    missing = {b for b in leased_before if b not in done_after} - _leases(client)
    assert not missing, missing  # every batch handed out is done, queued, running or failed
    # 3. a new joiner continues the same campaign; every batch still counts once
    joiner = _joiner(server.url, plan, jobs=1, seconds=5)
    joiner.communicate(timeout=120)
    assert client.scard(key("done")) > len(done_before)
    cases = sum(int(v) for k, v in client.hgetall(key("workers")).items()
                if k.endswith(b"\tcases"))
    assert cases == 50 * client.scard(key("done"))
