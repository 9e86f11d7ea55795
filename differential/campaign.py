"""A fuzzing campaign: K worker processes, each judging batches of cases, everything that
matters on disk as soon as it is known.

Layout of the campaign directory::

    DIR/campaign.json          seed, jobs, forms pattern (fixed for the campaign's life)
    DIR/workers/W.json         per worker: next batch, counts per form, busy seconds
    DIR/divergences/*.json     one file per divergence, written by the worker that found it
    DIR/report.json, .md       written at the end (and rebuildable from the files above)

Batch ``b`` belongs to worker ``b % jobs`` and its cases come from seeds derived from
(campaign seed, b, i), so a batch is the same whoever runs it, and ``--resume`` continues
each worker from the batch after its last completed one. A divergence is written with
fsync before the batch goes on: a SIGKILL loses at most the counts of the unfinished batch.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from differential.check import DIVERGE, KNOWN, Checker
from differential.corpus import write_durably
from differential.draw import RandomDraw
from differential.suite import keep

BATCH = 200
BYTES_SHARE = 30  # percent of cases from random prefixed bytes; the rest from FORMS


class CampaignError(Exception):
    """A campaign directory that does not fit the options (e.g. resuming another seed)."""


@dataclass(frozen=True)
class Plan:
    seed: int
    jobs: int
    forms: str = "*"
    bytes_share: int = BYTES_SHARE


def case_seed(seed: int, batch: int, index: int) -> int:
    """Seed of one case: independent of worker count and of Python's hash randomisation."""
    digest = hashlib.sha256(f"{seed}:{batch}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def prepare(directory: Path, plan: Plan, resume: bool) -> Plan:
    """Create or reopen the campaign directory; on resume the stored plan wins and must
    agree with the options given."""
    stored = directory / "campaign.json"
    if stored.exists():
        if not resume:
            raise CampaignError(f"{directory} already holds a campaign; pass --resume to "
                                f"continue it or choose another --out")
        old = Plan(**json.loads(stored.read_text()))
        if (old.seed, old.jobs, old.forms) != (plan.seed, plan.jobs, plan.forms):
            raise CampaignError(f"{stored}: campaign has seed={old.seed} jobs={old.jobs} "
                                f"forms={old.forms!r}; resume with the same options")
        return old
    (directory / "workers").mkdir(parents=True, exist_ok=True)
    (directory / "divergences").mkdir(exist_ok=True)
    write_durably(stored, json.dumps(asdict(plan)) + "\n")
    return plan


def _load_worker(directory: Path, worker: int) -> Dict[str, Any]:
    path = directory / "workers" / f"{worker}.json"
    if path.exists():
        return json.loads(path.read_text())
    return {"worker": worker, "next_batch": worker, "cases": 0, "busy": 0.0, "forms": {},
            "known": {}}


def _count(state: Dict[str, Any], form: str, status: str) -> None:
    counts = state["forms"].setdefault(form, {})
    counts[status] = counts.get(status, 0) + 1


def _unlisted_label(case) -> str:
    """Bytes matching no FORMS row are counted under Capstone's mnemonic."""
    from differential.operands import decode

    insn = decode(case.mode, case.code)
    return f"(not in FORMS) {insn.mnemonic if insn else '(bad)'}"


class Worker:
    """Runs batches for one worker slot; ``make_checkers`` is injectable so a test can plant
    a deliberately broken runner."""

    def __init__(self, directory: Path, plan: Plan, worker: int,
                 make_checkers: Callable[[], List[Checker]]) -> None:
        from differential.suite import forms_to_test

        self.directory = directory
        self.plan = plan
        self.worker = worker
        self.checkers = make_checkers()
        self.forms = [(f, m) for f, m in forms_to_test(plan.forms) if not f.untestable]
        if not self.forms:
            raise CampaignError(f"no testable form matches {plan.forms!r}")
        self.state = _load_worker(directory, worker)

    def _case(self, batch: int, index: int):
        from differential.attribution import attribute
        from differential.generator import bytes_case, form_case

        seed = case_seed(self.plan.seed, batch, index)
        draw = RandomDraw(seed)
        name = f"seed{self.plan.seed}-b{batch}-i{index}"
        if self.plan.forms == "*" and draw.chance(self.plan.bytes_share):
            return bytes_case(draw.choice(("real16", "prot32")), draw, attribute, name), seed
        form, mode = draw.choice(self.forms)
        return form_case(form, mode, draw, name), seed

    def run_batch(self, report: Optional[Callable[[str, str], None]] = None) -> None:
        batch = self.state["next_batch"]
        started = time.perf_counter()
        for index in range(BATCH):
            case, seed = self._case(batch, index)
            checker = self.checkers[index % len(self.checkers)]
            verdict = checker.check(case)
            _count(self.state, case.form or _unlisted_label(case), verdict.status)
            if verdict.status == KNOWN:
                known = self.state["known"]
                known[verdict.known.id] = known.get(verdict.known.id, 0) + 1
            if verdict.status == DIVERGE:
                keep(checker, verdict, self.directory / "divergences", case_seed=seed,
                     campaign_seed=self.plan.seed, batch=batch, index=index)
            if report is not None and verdict.status in (DIVERGE, KNOWN):
                report(verdict.status, verdict.line)
        self.state["cases"] += BATCH
        self.state["busy"] += time.perf_counter() - started
        self.state["next_batch"] = batch + self.plan.jobs
        write_durably(self.directory / "workers" / f"{self.worker}.json",
                      json.dumps(self.state) + "\n")


def worker_main(directory: str, plan: Plan, worker: int, deadline: float,
                make_checkers: Callable[[], List[Checker]], queue: Any) -> None:
    """Process entry point: run batches until the deadline, reporting to ``queue``."""
    slot = Worker(Path(directory), plan, worker, make_checkers)

    def report(status: str, line: str) -> None:
        queue.put(("found", worker, status, line))

    while time.time() < deadline:
        slot.run_batch(report)
        queue.put(("progress", worker, slot.state))
    queue.put(("done", worker, slot.state))


def start_workers(directory: Path, plan: Plan, minutes: float,
                  make_checkers: Callable[[], List[Checker]]):
    """Start ``plan.jobs`` processes; returns (processes, queue)."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    deadline = time.time() + minutes * 60
    processes = [context.Process(target=worker_main,
                                 args=(str(directory), plan, w, deadline, make_checkers, queue),
                                 daemon=True)
                 for w in range(plan.jobs)]
    for process in processes:
        process.start()
    return processes, queue


def worker_states(directory: Path, jobs: int) -> List[Dict[str, Any]]:
    return [_load_worker(directory, w) for w in range(jobs)]
