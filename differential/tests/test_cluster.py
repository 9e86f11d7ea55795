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
from typing import Optional

import pytest

pytest.importorskip("rq")
pytest.importorskip("redis")
if shutil.which("redis-server") is None:  # scripts/apt-packages.txt installs it
    pytest.fail("redis-server is missing: run scripts/setup.sh", pytrace=False)

from differential.cluster import QUEUE, ClusterPlan, connect, key  # noqa: E402
from differential.redis_server import RedisServer  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PLANTS = "differential.tests.cluster_plants"


@pytest.fixture
def server(tmp_path):
    redis = RedisServer(tmp_path / "redis").start()
    yield redis
    redis.stop()


def _joiner(url: str, plan: ClusterPlan, jobs: int, seconds: float,
            known: Optional[Path] = None) -> subprocess.Popen:
    """``join`` in its own process (its workers die with it), as on another machine;
    ``known``: the known-differences file it would pin (default: the checkout's)."""
    pin = f"PinnedList.read({str(known)!r})" if known else "None"
    code = (f"from differential.cluster import ClusterPlan, join\n"
            f"from differential.known import PinnedList\n"
            f"import sys\n"
            f"sys.exit(1 if join({url!r}, ClusterPlan(**{plan.__dict__!r}), {jobs}, "
            f"{seconds / 60!r}, known={pin}) else 0)\n")
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


def _totals(client, name: str) -> dict:
    return {k.decode(): int(v) for k, v in client.hgetall(key(name)).items()}


def test_a_campaign_judges_with_the_known_list_it_started_with(server, tmp_path):
    """The file the campaign pinned changes between batches (its entry goes, an entry with
    a key this code does not know comes: the commit that made every later batch raise
    KnownListError), and a second joiner brings another list: every batch is still judged
    with the pinned one."""
    from differential.tests.broken_runner import PLANTED_ENTRY, UNREADABLE_ENTRY

    source, other = tmp_path / "known.toml", tmp_path / "other.toml"
    source.write_text(PLANTED_ENTRY)
    other.write_text(PLANTED_ENTRY.replace("planted-eax-bit-31", "another-id"))
    plan = ClusterPlan(seed=3, forms="CLC", batch_size=20, checkers=f"{PLANTS}:pinned_divergent")
    first = _joiner(server.url, plan, jobs=1, seconds=25, known=source)
    client = connect(server.url)
    try:
        _wait(lambda: client.scard(key("done")) >= 2, 60, "two batches done")
        source.write_text(UNREADABLE_ENTRY)
        changed = client.scard(key("done"))
        second = _joiner(server.url, plan, jobs=1, seconds=12, known=other)
        said = second.communicate(timeout=120)[0].decode()
        assert second.returncode == 0, said
        assert "judging with the campaign's pinned known list" in said
    finally:
        output = first.communicate(timeout=120)[0].decode()
    assert first.returncode == 0, output
    done = client.scard(key("done"))
    assert done >= changed + 2, (done, changed)  # batches judged after the change
    workers = {k.decode().split("\t")[0] for k in client.hkeys(key("workers"))}
    assert len(workers) == 2  # the second joiner's worker judged batches too
    statuses = {}
    for label, n in _totals(client, "forms").items():
        statuses[label.split("\t")[1]] = statuses.get(label.split("\t")[1], 0) + n
    assert statuses == {"known": 20 * done}  # not one divergence, not one failure
    assert _totals(client, "known") == {"planted-eax-bit-31": 20 * done}
    assert not client.hlen(key("refusals"))
    assert client.get(key("known-list")).decode() == PLANTED_ENTRY


def test_a_joiner_that_cannot_read_the_pinned_list_says_so_once(server):
    """A newer x86lab started the campaign with an entry this code cannot read: the
    joiner says so (exit 2, one line), the refusal is in Redis, and no batch runs."""
    from differential.known import PinnedList
    from differential.tests.broken_runner import UNREADABLE_ENTRY

    pinned = PinnedList(UNREADABLE_ENTRY)
    stored = ClusterPlan(seed=3, forms="CLC", known_sha256=pinned.digest)
    client = connect(server.url)
    client.set(key("plan"), json.dumps(stored.__dict__, sort_keys=True))
    client.set(key("known-list"), pinned.text)
    joined = _cli("--campaign", server.url, "--jobs", "1", "--minutes", "0.1",
                  "--seed", "3", "--forms", "CLC")
    assert joined.returncode == 2, joined.stderr
    assert "cannot read the known list the campaign pinned" in joined.stderr
    assert joined.stderr.count("key_from_the_future") == 1
    assert "Traceback" not in joined.stderr
    assert client.hlen(key("refusals")) == 1 and not _runs(client)
    status = _cli("status", "--campaign", server.url, "--once")
    assert "refused the campaign" in status.stdout, status.stdout


def test_a_campaign_of_another_draw_version_refuses_a_joiner(server):
    """A campaign an older x86lab started (its plan has no draw_version: MT19937 draws)
    is refused in one line: this code would judge other cases under its batch numbers."""
    from differential.known import PinnedList

    pinned = PinnedList.read()
    stored = {k: v for k, v in ClusterPlan(seed=3, forms="CLC",
                                            known_sha256=pinned.digest).__dict__.items()
              if k != "draw_version"}
    client = connect(server.url)
    client.set(key("plan"), json.dumps(stored, sort_keys=True))
    client.set(key("known-list"), pinned.text)
    joined = _cli("--campaign", server.url, "--jobs", "1", "--minutes", "0.1",
                  "--seed", "3", "--forms", "CLC")
    assert joined.returncode == 2, joined.stderr
    assert "was drawn by draw version 1" in joined.stderr
    assert "Traceback" not in joined.stderr
    assert not _runs(client)


@pytest.mark.parametrize("plant, said", [
    ("child_cannot_read_the_pin", "key_from_the_future"),
    ("cannot_import", "ImportError"),
])
def test_a_job_whose_code_cannot_judge_stops_its_worker(server, plant, said):
    """The sandbox child (a fresh interpreter when the checkout was edited under its
    worker, so maybe newer code than the worker's; else a fork) cannot read the pinned
    list, or a module does not import (the checkout edited under the worker): the
    worker records that once and stops, so the batch is not failed again and again by
    it, nor every later batch; RQ keeps the batch for a worker that can."""
    plan = ClusterPlan(seed=3, forms="CLC", batch_size=20, checkers=f"{PLANTS}:{plant}")
    joiner = _joiner(server.url, plan, jobs=1, seconds=30)
    output = joiner.communicate(timeout=120)[0].decode()
    client = connect(server.url)
    runs = _runs(client)
    assert runs == {0: 1}, (runs, output)  # started once: no retry loop on this worker
    refusals = {k.decode(): v.decode() for k, v in client.hgetall(key("refusals")).items()}
    assert len(refusals) == 1, refusals
    assert said in next(iter(refusals.values()))
    assert 0 in _leases(client)  # queued again (RQ's retry), not lost
