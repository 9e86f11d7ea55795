"""``x86lab bench --pipeline`` (alias ``fuzz --bench``): the campaign pipeline's cases/s per
core beside the engines alone.

Measured in one run, on the same seeded cases, so the ratios hold even on a shared machine:
- ``campaign``: ``Worker.run_batch`` exactly as a campaign runs it (in each checker's
  sandbox child, with and without memory hooks: generate, Unicorn, reference, compare;
  then record in the worker: ``judging.py``). Per core means
  per CPU-second of this process *and* its sandbox children (read from ``/proc/PID/stat``
  before and after, so their start-up is not counted), so work moved to a child is not
  hidden by running on a second core. Its CPU µs a case in the worker and in the
  children are given apart: the worker's is what a campaign spends outside judging.
- ``unicorn``: the in-process runner alone on the same cases (the hook setting alternating
  as in a batch), ``reference``: the reference alone, ``generate``: case drawing alone.
``load`` is the 1-minute load average before and after: a figure taken on a busy machine
says so. ``coverage`` counts what the measured cases hold (distinct FORMS rows by mode,
modes, legacy prefix bytes, the checkers' hook settings), so a speed-up that narrowed the
cases shows in the same record.
"""

from __future__ import annotations

import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence, Tuple

MIXES = {"forms": 0, "campaign": None}  # bytes share: FORMS rows only, or the campaign's


def _process_cpu(pid: int) -> float:
    """CPU seconds a live process has run (Linux ``/proc``). A process of one thread (a
    sandbox child) is read to the nanosecond from its ``schedstat``; otherwise, or where
    the kernel keeps no ``schedstat``, utime + stime from ``stat``, in clock ticks. Why:
    a 1,000-case bench (the default 5 batches) spends ~0.1 s in its children, so 10 ms
    ticks alone moved its per-core figure by up to a tenth (children 80, 90, 100 or 110
    µs a case and nothing between, issue 18)."""
    try:
        if len(os.listdir(f"/proc/{pid}/task")) == 1:
            return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        pass  # gone, or no schedstat: the ticks say what they can
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:  # replaced after an engine crash: its time is lost (rare)
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_seconds(children: Sequence[int]) -> Tuple[float, float]:
    """CPU time of this process, and of the given live children (the sandbox children)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime, sum(_process_cpu(pid) for pid in children)


def _timed(count: int, work: Callable[[], None],
           children: Sequence[int] = ()) -> Dict[str, float]:
    """Cases per second of wall time and per CPU second; with ``children``, also the CPU
    µs a case spent in this process and in them (what a campaign spends outside its
    children's judging shows in the first)."""
    wall, (own, theirs) = time.perf_counter(), _cpu_seconds(children)
    work()
    wall = time.perf_counter() - wall
    after = _cpu_seconds(children)
    own, theirs = after[0] - own, after[1] - theirs
    figure = {"cases_per_second": count / wall,
              "cases_per_cpu_second": count / max(own + theirs, 1e-9)}
    if children:
        figure["cpu_us_here"] = own / count * 1e6
        figure["cpu_us_in_children"] = theirs / count * 1e6
    return figure


def coverage(cases: Sequence[Any], checkers: Sequence[Any]) -> Dict[str, Any]:
    """What the measured cases cover: (form, mode) pairs of FORMS rows, the modes, each
    legacy prefix byte's count, and the peers' names (Unicorn without and with memory
    hooks: case i goes to checker i mod their number, as in a campaign)."""
    from collections import Counter

    from differential.encoding import split_prefixes

    prefixes = Counter(byte for case in cases for byte in split_prefixes(case.code)[0])
    peers = Counter(checkers[i % len(checkers)].peer.name for i in range(len(cases)))
    return {"forms_by_mode": len({(c.form, c.mode) for c in cases if c.form}),
            "modes": sorted({case.mode for case in cases}),
            "prefix_bytes": {f"{byte:02x}": n for byte, n in sorted(prefixes.items())},
            "peers": dict(sorted(peers.items()))}


def measure(batches: int = 5, seed: int = 1, mix: str = "forms") -> Dict[str, Any]:
    """Figures for ``batches`` campaign batches of the chosen mix (see the module doc)."""
    from differential.campaign import BATCH, Plan, Worker, prepare
    from differential.judging import child_pids, close_checkers
    from differential.runners.reference_runner import ReferenceRunner
    from differential.runners.unicorn_runner import UnicornRunner
    from differential.suite import checkers

    share = MIXES[mix]
    plan = Plan(seed=seed, jobs=1) if share is None else Plan(seed=seed, jobs=1,
                                                             bytes_share=share)
    load_before = os.getloadavg()[0]
    count = batches * BATCH
    with tempfile.TemporaryDirectory(prefix="x86lab-bench-") as folder:
        directory = Path(folder)
        plan = prepare(directory, plan, resume=False)
        worker = Worker(directory, plan, 0, checkers)
        worker.run_batch()  # warm-up: children started, imports done, engines built
        worker.state["next_batch"] = 0
        cases: List[Any] = []
        figures: Dict[str, Any] = {}
        figures["generate"] = _timed(count, lambda: cases.extend(
            worker._case(b, i)[0] for b in range(batches) for i in range(BATCH)))
        engines = [UnicornRunner(memory_hooks=False), UnicornRunner(memory_hooks=True)]
        for engine in engines:
            engine.run(cases[0])
        figures["unicorn"] = _timed(count, lambda: [
            engines[i % 2].run(case) for i, case in enumerate(cases)])
        reference = ReferenceRunner()
        reference.run(cases[0])
        figures["reference"] = _timed(count, lambda: [reference.run(c) for c in cases])

        def campaign() -> None:
            for _ in range(batches):
                worker.run_batch()

        children = child_pids(worker.checkers)
        figures["campaign"] = _timed(count, campaign, children)
        close_checkers(worker.checkers)
    per_core = figures["campaign"]["cases_per_cpu_second"]
    return {"mix": mix, "cases": count, "seed": seed, "figures": figures,
            "coverage": coverage(cases, worker.checkers),
            "ratio_to_unicorn": per_core / figures["unicorn"]["cases_per_cpu_second"],
            "ratio_to_reference": per_core / figures["reference"]["cases_per_cpu_second"],
            "load_1min": [load_before, os.getloadavg()[0]], "cores": os.cpu_count()}


def describe(result: Dict[str, Any]) -> List[str]:
    """Lines for a person: cases/s per core of each stage, then the ratios and the load."""
    lines = [f"{result['cases']} cases of the {result['mix']} mix, seed {result['seed']}"]
    for label, figure in result["figures"].items():
        lines.append(f"  {label:<10} {figure['cases_per_cpu_second']:8.0f} cases/s per core "
                     f"({figure['cases_per_second']:.0f} wall)")
        if "cpu_us_here" in figure:
            lines.append(f"  {'':<10} CPU a case: {figure['cpu_us_in_children']:.1f} µs in "
                         f"the sandbox children, {figure['cpu_us_here']:.1f} µs in the worker")
    covered = result.get("coverage")
    if covered:
        lines.append(f"  covering {covered['forms_by_mode']} (form, mode) pairs, modes "
                     f"{' '.join(covered['modes'])}, prefixes "
                     f"{' '.join(covered['prefix_bytes'])}, peers "
                     f"{', '.join(covered['peers'])}")
    load = result["load_1min"]
    lines.append(f"  campaign/unicorn-alone {result['ratio_to_unicorn']:.2f}, "
                 f"campaign/reference-alone {result['ratio_to_reference']:.2f}; "
                 f"load {load[0]:.2f} -> {load[1]:.2f} on {result['cores']} cores")
    return lines
