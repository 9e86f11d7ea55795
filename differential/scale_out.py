"""``x86lab bench --scale-out``: does a Redis campaign go faster with more workers?

One campaign on a private ``redis-server`` (a free 127.0.0.1 port, AOF with ``appendfsync
always``, as a real campaign's server runs), joined in turn by 1 worker, then 2, then 1
and 2 again (``--rounds``), each round a joiner of its own for ``--minutes``. A round's
rate is read from what its workers publish (their ``cases`` in ``x86lab:workers``, which
grow by a whole batch when a batch commits): the window runs from the first commit after
the warm-up (RQ's workers and their sandbox children starting) to the last commit before
the round's end, and the rate is the cases committed between those two commits over the
time between them, so the batch size does not round the figure. The ratio is the mean
2-worker rate over the mean 1-worker rate (the issue's goal: at least 1.9 on two cores);
each 2-worker round over the 1-worker round before it shows the spread. The 1-minute load
average before and after each round is in the record: a figure taken on a busy machine
says so.

Each round also says where the machine's CPU went while it ran (``cpu``): the seconds its
joiner's whole process tree used (RQ workers, work horses, sandbox children, reaped
into the joiner's children's rusage), the Redis server's, the machine's busy and stolen
seconds on all cores (``/proc/stat``), hence the cores the workers had and the cores
everything else took, and the workers' CPU per case. A 2-worker round below twice the
1-worker rate then shows whether the workers lacked cores (others took them, or the
hypervisor did) or needed more CPU per case with two running (shared caches), rather
than leaving that to guesswork.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import socket
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

POLL = 0.2  # seconds between reads of the published counts
WARMUP_MAX = 30.0  # seconds of each round left out at its start (at most a quarter)


class ScaleOutError(RuntimeError):
    """A round gave too few batch commits to measure."""


def rounds_of(rounds: int) -> List[int]:
    """Worker counts of the rounds: 1, 2, 1, 2, ..."""
    return [1 + number % 2 for number in range(rounds)]


def window_rate(samples: Sequence[Tuple[float, int]], start: float, end: float
                ) -> Tuple[int, float]:
    """(cases, seconds) between the first and the last commit seen in [start, end];
    ``samples`` are (time, cases published so far) at each change."""
    inside = [(at, cases) for at, cases in samples if start <= at <= end]
    if len(inside) < 2:
        return 0, 0.0
    return inside[-1][1] - inside[0][1], inside[-1][0] - inside[0][0]


def summarise(rounds: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Mean rate per worker count, their ratio, and each 2-worker round's ratio to the
    1-worker round before it."""
    by_jobs: Dict[int, List[float]] = {}
    for one in rounds:
        by_jobs.setdefault(one["jobs"], []).append(one["cases_per_second"])
    means = {jobs: sum(rates) / len(rates) for jobs, rates in by_jobs.items()}
    pairs = [after["cases_per_second"] / before["cases_per_second"]
             for before, after in zip(rounds, rounds[1:])
             if (before["jobs"], after["jobs"]) == (1, 2)]
    return {"mean_cases_per_second": {str(jobs): rate for jobs, rate in sorted(means.items())},
            "ratio": means[2] / means[1] if 1 in means and 2 in means else None,
            "pair_ratios": pairs}


def _join_round(url: str, plan: Any, jobs: int, minutes: float) -> None:
    """A round's joiner, in a process of its own (its workers die with it)."""
    from differential.cluster import join

    sys.exit(1 if join(url, plan, jobs, minutes, say=lambda line: None) else 0)


def _published(client: Any, prefix: str) -> Tuple[int, int]:
    """(cases, workers) published so far by the workers whose names start with prefix."""
    from differential.cluster import key

    cases, names = 0, set()
    for field, value in client.hgetall(key("workers")).items():
        name, what = field.decode().split("\t")
        if name.startswith(prefix) and what == "cases":
            cases += int(value)
            names.add(name)
    return cases, len(names)


def _machine_seconds() -> Tuple[float, float]:
    """(busy, stolen) CPU seconds of all cores since boot (``/proc/stat``: user, nice,
    system, irq and softirq are busy; steal is time the hypervisor gave elsewhere)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq) / tick, steal / tick


def _reaped_seconds() -> float:
    """CPU seconds of this process's reaped children and their reaped descendants."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _own_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_shares(before: Dict[str, float], after: Dict[str, float],
               cases: int) -> Dict[str, float]:
    """Where the CPU went between two readings (keys: wall, workers, redis, own, busy,
    steal seconds): each as cores (seconds per wall second), the rest of the busy time
    as ``others_cores`` (other people's processes), and the workers' CPU per case."""
    spent = {name: after[name] - before[name] for name in after}
    wall = max(spent["wall"], 1e-9)
    others = spent["busy"] - spent["workers"] - spent["redis"] - spent["own"]
    return {"wall_seconds": spent["wall"], "workers_cores": spent["workers"] / wall,
            "redis_cores": spent["redis"] / wall, "others_cores": max(others, 0.0) / wall,
            "steal_cores": spent["steal"] / wall,
            "workers_us_per_case": spent["workers"] / cases * 1e6 if cases else 0.0}


def _cpu_reading(redis_pid: Optional[int]) -> Dict[str, float]:
    from differential.bench import _process_cpu

    busy, steal = _machine_seconds()
    return {"wall": time.monotonic(), "workers": _reaped_seconds(),
            "redis": _process_cpu(redis_pid) if redis_pid else 0.0, "own": _own_seconds(),
            "busy": busy, "steal": steal}


def _round(url: str, plan: Any, jobs: int, minutes: float, warmup: float,
           redis_pid: Optional[int] = None) -> Dict[str, Any]:
    from differential.cluster import connect

    client = connect(url)
    load_before = os.getloadavg()
    cpu_before = _cpu_reading(redis_pid)
    process = multiprocessing.get_context("spawn").Process(
        target=_join_round, args=(url, plan, jobs, minutes))
    started = time.monotonic()
    process.start()
    prefix = f"{socket.gethostname()}-{process.pid}-"  # cluster.join names its workers so
    samples: List[Tuple[float, int]] = []
    workers = 0
    while process.is_alive():
        cases, workers = _published(client, prefix)
        if not samples or cases != samples[-1][1]:
            samples.append((time.monotonic() - started, cases))
        time.sleep(POLL)
    process.join()
    cpu = cpu_shares(cpu_before, _cpu_reading(redis_pid), samples[-1][1] if samples else 0)
    cases, seconds = window_rate(samples, warmup, minutes * 60)
    if seconds <= 0:
        raise ScaleOutError(f"the {jobs}-worker round saw fewer than two batch commits "
                            f"between {warmup:g} s and {minutes * 60:g} s: give it more "
                            f"--minutes")
    return {"jobs": jobs, "workers_published": workers, "cases": cases, "seconds": seconds,
            "cases_per_second": cases / seconds, "commits": len(samples),
            "load_1min": [load_before[0], os.getloadavg()[0]],
            # non-zero when a worker of the joiner ended badly (seen: one killed by the
            # stop's SIGTERM at the round's end); its counts up to then stand
            "joiner_status": process.exitcode, "cpu": cpu}


def measure(minutes: float = 2.0, rounds: int = 4, warmup: Optional[float] = None,
            plan: Any = None, say: Callable[[str], None] = lambda line: None
            ) -> Dict[str, Any]:
    """Run ``rounds`` rounds (at least 2) of ``minutes`` on a private Redis server and
    return the figures (module doc); ``warmup``: seconds left out at each round's start."""
    from differential.cluster import ClusterPlan, connect
    from differential.redis_server import RedisServer

    plan = plan or ClusterPlan(seed=1)
    warmup = min(WARMUP_MAX, minutes * 15) if warmup is None else warmup
    with tempfile.TemporaryDirectory(prefix="x86lab-scale-out-") as folder:
        server = RedisServer(Path(folder)).start()
        try:
            config = connect(server.url).config_get("append*")
            done: List[Dict[str, Any]] = []
            for number, jobs in enumerate(rounds_of(rounds), start=1):
                say(f"round {number}/{rounds}: {jobs} worker{'s' * (jobs > 1)} for "
                    f"{minutes:g} min")
                done.append(_round(server.url, plan, jobs, minutes, warmup,
                                   server.process.pid if server.process else None))
                say(describe_round(done[-1]))
        finally:
            server.stop()
    return {"minutes": minutes, "warmup_seconds": warmup, "plan": asdict(plan),
            "redis": {"appendonly": config.get("appendonly"),
                      "appendfsync": config.get("appendfsync")},
            "rounds": done, **summarise(done), "cores": os.cpu_count()}


def describe_round(one: Dict[str, Any]) -> str:
    load = one["load_1min"]
    status = one.get("joiner_status")
    cpu = one.get("cpu")
    shares = "" if not cpu else (
        f"; cores: workers {cpu['workers_cores']:.2f}, redis {cpu['redis_cores']:.2f}, "
        f"others {cpu['others_cores']:.2f}, stolen {cpu['steal_cores']:.2f}; "
        f"{cpu['workers_us_per_case']:.0f} us of worker CPU per case")
    return (f"  {one['jobs']} worker{'s' * (one['jobs'] > 1)}: {one['cases']} cases in "
            f"{one['seconds']:.1f} s = {one['cases_per_second']:.0f} cases/s (load "
            f"{load[0]:.2f} -> {load[1]:.2f}{shares})"
            + (f"; its joiner ended with status {status}" if status else ""))


def describe(result: Dict[str, Any]) -> List[str]:
    """Lines for a person: each round, the means and the ratio."""
    lines = [f"scale-out: {len(result['rounds'])} rounds of {result['minutes']:g} min, "
             f"rates after {result['warmup_seconds']:g} s of warm-up, batches of "
             f"{result['plan']['batch_size']} cases, Redis appendfsync "
             f"{result['redis']['appendfsync']}"]
    lines += [describe_round(one) for one in result["rounds"]]
    means = result["mean_cases_per_second"]
    if result["ratio"] is not None:
        lines.append(f"  2 workers / 1 worker: {result['ratio']:.2f} (means {means['2']:.0f} "
                     f"/ {means['1']:.0f} cases/s; each pair: "
                     f"{', '.join(f'{r:.2f}' for r in result['pair_ratios'])}) on "
                     f"{result['cores']} cores")
    return lines
