"""A fuzzing campaign: K worker processes, each judging batches of cases, everything that
matters on disk as soon as it is known.

Layout of the campaign directory::

    DIR/campaign.json          seed, jobs, forms pattern, the known list's sha256 (fixed
                               for the campaign's life)
    DIR/known_divergences.toml the known-differences list as it was when the campaign
                               started: every batch is judged with it, even after the
                               working tree's file gains entries (``PinnedList``)
    DIR/campaign.lock          flock held while a campaign runs (one writer at a time)
    DIR/workers/W.json         per worker: next batch, counts per form, busy seconds
    DIR/divergences/*.json     one file per divergence, written by the worker that found it
    DIR/report.json, .md       written at the end (and rebuildable from the files above)

Batch ``b`` belongs to worker ``b % jobs`` and its cases come from streams named by
(campaign seed, b, i), so a batch is the same whoever runs it, and ``--resume`` continues
each worker from the batch after its last completed one. A divergence is written with
fsync before the batch goes on. The worker's state counting its batches done is written
while a later batch is judged, at most once every ``STATE_EVERY_S`` seconds, and when
the worker ends (``Worker.flush``): a SIGKILL loses at most the counts of the batches of
that last second and of the unfinished one, a power loss those of the batches after the
state file the file system kept; they are judged again, to the same answers.
Workers die with the campaign process (``lifeline``); a worker that fails sends its reason
and leaves its traceback in ``DIR/workers/W.error.txt``.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
import traceback
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from differential.attribution import attribute
from differential.campaign_files import (
    CampaignError,
    check_divergences,
    plan_fields,
    read_json,
    usable_directory,
    worker_state,
)
from differential.check import AGREE, CRASHED, DIVERGE, KNOWN, Checker
from differential.corpus import save, write_atomically, write_durably
from differential.draw import StreamDraw
from differential.generator import bytes_case, form_case
from differential.judging import judge_keys
from differential.known import KnownListError, PinnedList

BATCH = 200
BYTES_SHARE = 30  # percent of cases from random prefixed bytes; the rest from FORMS
PINNED_NAME = "known_divergences.toml"  # the campaign's pinned known list, in its folder
DRAW_VERSION = 2
"""How a case is drawn from its name: 1, MT19937 seeded by a sha256 of it (before issue
18's SHAKE-128 streams), 2, ``StreamDraw``. A campaign's plan records it: code that
draws otherwise would judge other cases under the same batch numbers, so it refuses."""


@dataclass(frozen=True)
class Plan:
    seed: int
    jobs: int
    forms: str = "*"
    bytes_share: int = BYTES_SHARE
    known_sha256: str = ""  # of the pinned known list (set when the campaign starts)
    draw_version: int = DRAW_VERSION  # a stored plan without it is version 1


def case_key(seed: int, batch: int, index: int) -> bytes:
    """Name of one case's stream: independent of worker count and of Python's hash
    randomisation."""
    return b"%d:%d:%d" % (seed, batch, index)


def check_draw_version(version: int, where: str, instead: str) -> None:
    """A CampaignError unless this code draws cases as a campaign of ``version`` did."""
    if version != DRAW_VERSION:
        raise CampaignError(f"{where} was drawn by draw version {version}; this x86lab draws "
                            f"version {DRAW_VERSION}, other cases under the same batch "
                            f"numbers. {instead}")


def testable_forms(pattern: str) -> List[Any]:
    """(form, mode) pairs a campaign draws from; none is a usage error."""
    from differential.suite import forms_to_test

    chosen = [(f, m) for f, m in forms_to_test(pattern) if not f.not_version1]
    if not chosen:
        raise CampaignError(f"--forms {pattern!r} matches no testable form (names as in "
                            f"'x86lab coverage', e.g. 'ADD_*')")
    return chosen


def load_plan(directory: Path) -> Plan:
    stored = directory / "campaign.json"
    return Plan(**{"draw_version": 1, **plan_fields(read_json(stored), stored)})


def prepare(directory: Path, plan: Plan, resume: bool,
            known: Optional[PinnedList] = None) -> Plan:
    """Create or reopen the campaign directory; on resume the stored plan wins and must
    agree with the options given, and every file in the folder is checked first. A new
    campaign pins ``known`` (default: ``known_divergences.toml`` as it is now) in the
    folder; a resumed one keeps the list it pinned (a folder from before pinning pins
    ``known`` now)."""
    usable_directory(directory)
    stored = directory / "campaign.json"
    if stored.exists():
        if not resume:
            raise CampaignError(f"{directory} already holds a campaign; pass --resume to "
                                f"continue it or choose another --out")
        old = load_plan(directory)
        if (old.seed, old.jobs, old.forms) != (plan.seed, plan.jobs, plan.forms):
            raise CampaignError(f"{stored}: campaign has seed={old.seed} jobs={old.jobs} "
                                f"forms={old.forms!r}; resume with the same options")
        check_draw_version(old.draw_version, f"the campaign in {directory}",
                           "Finish it with the x86lab that started it, or start another "
                           "--out.")
        testable_forms(old.forms)
        worker_states(directory, old.jobs)
        check_divergences(directory / "divergences")
        if old.known_sha256:
            pinned_list(directory, old)
            return old
        return _pin(directory, old, known)
    testable_forms(plan.forms)
    (directory / "workers").mkdir(parents=True, exist_ok=True)
    (directory / "divergences").mkdir(exist_ok=True)
    return _pin(directory, plan, known)


def _pin(directory: Path, plan: Plan, known: Optional[PinnedList]) -> Plan:
    """Keep the known list in the folder, then the plan naming its sha256."""
    try:
        pinned = known if known is not None else PinnedList.read()
        pinned.entries()
    except KnownListError as exc:
        raise CampaignError(f"cannot start with this known list: {exc}") from None
    write_durably(directory / PINNED_NAME, pinned.text)
    plan = replace(plan, known_sha256=pinned.digest)
    write_durably(directory / "campaign.json", json.dumps(asdict(plan)) + "\n")
    return plan


class PinnedListError(CampaignError):
    """This code cannot read the known list a campaign pinned when it started (a newer
    x86lab started it, with a key this one does not know)."""


def pinned_list(directory: Path, plan: Plan) -> PinnedList:
    """The known list the campaign pinned when it started, checked against the plan's
    sha256 and read with this code: a worker whose code cannot read it says so (one
    CampaignError naming the file and what to do), instead of failing batch after batch."""
    path = directory / PINNED_NAME
    try:
        pinned = PinnedList(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise CampaignError(f"{path}: the campaign's pinned known list is unreadable "
                            f"({exc}); restore it or start another --out") from None
    return checked_pin(pinned, plan.known_sha256, f"{path}: damaged",
                       "restore it or start another --out",
                       "finish the campaign with the x86lab that started it, or start "
                       "another --out")


def checked_pin(pinned: PinnedList, sha256: str, damaged: str, restore: str,
                elsewhere: str) -> PinnedList:
    """``pinned`` if its text still has the ``sha256`` the plan recorded and this code can
    read it; else a CampaignError (``damaged``: how to name the copy; ``restore``: what to
    do) or a PinnedListError (``elsewhere``: what to do with a list this code cannot read).
    Local campaigns and Redis campaigns check their pins alike."""
    if pinned.digest != sha256:
        raise CampaignError(f"{damaged}, its sha256 is not the {sha256[:12]}... the "
                            f"campaign pinned; {restore}")
    try:
        pinned.entries()
    except KnownListError as exc:
        raise PinnedListError(f"this x86lab cannot read the known list the campaign pinned "
                              f"when it started ({exc}); {elsewhere}") from None
    return pinned


def _load_worker(directory: Path, worker: int, jobs: int) -> Dict[str, Any]:
    path = directory / "workers" / f"{worker}.json"
    if path.exists():
        return worker_state(read_json(path), path, worker, jobs)
    return {"worker": worker, "next_batch": worker, "cases": 0, "busy": 0.0, "forms": {},
            "known": {}}


def _count(state: Dict[str, Any], form: str, status: str, count: int = 1) -> None:
    counts = state["forms"].setdefault(form, {})
    counts[status] = counts.get(status, 0) + count


def count_label(case) -> str:
    """The form a case counts under; bytes matching no FORMS row count under Capstone's
    mnemonic."""
    if case.form:
        return case.form
    from differential.operands import decode

    insn = decode(case.mode, case.code)
    return f"(not in FORMS) {insn.mnemonic if insn else '(bad)'}"


_DRAW = StreamDraw()  # restarted for every case (a case keeps no reference to it)


def draw_case(plan: Plan, forms: List[Any], batch: int, index: int):
    """(case, seed) number ``index`` of batch ``batch``: the same whoever draws it (the
    seed names it in records: ``StreamDraw.seed``). A plan of another draw version is a
    CampaignError here too: a sandbox child may run a newer checkout than its worker."""
    if plan.draw_version != DRAW_VERSION:
        check_draw_version(plan.draw_version, "this campaign", "Use the x86lab that "
                           "started it.")
    draw = _DRAW.start(case_key(plan.seed, batch, index))
    name = f"seed{plan.seed}-b{batch}-i{index}"
    if plan.forms == "*" and draw.chance(plan.bytes_share):
        return bytes_case(draw.choice(("real16", "prot32")), draw, attribute, name), draw.seed
    form, mode = draw.choice(forms)
    return form_case(form, mode, draw, name), draw.seed


STATE_EVERY_S = 1.0
"""How often a worker writes its state while it runs. Writing it after every batch (a
JSON dump of the per-form counts, a file synced and renamed: ~45 batches a second a
worker) cost 4.2-5.7 µs of the worker's CPU a case (2.6-2.9 of them the write, the
rest the dump), ~0.1 µs at once a second (issue 18; ``x86lab bench --pipeline``); the
price is up to a second of batches judged again after a crash."""


PROGRESS_EVERY_S = 0.25
"""How often a worker tells the campaign its state (the live display's figures). Each
message is the whole state pickled (18 kB after 20,000 cases: 63 µs, and 91 µs to read
it back), and the display redrew everything for each: at ~45 batches a second a worker,
what a display 4 times a second needs is enough; ``done`` carries the last state."""


class Worker:
    """Runs batches for one worker slot; ``make_checkers`` (given the campaign's pinned
    known list) is injectable so a test can plant a deliberately broken runner.
    ``state_every``: seconds between state writes while it runs (``STATE_EVERY_S``)."""

    def __init__(self, directory: Path, plan: Plan, worker: int,
                 make_checkers: Callable[[PinnedList], List[Checker]],
                 state_every: float = STATE_EVERY_S) -> None:
        self.directory = directory
        self.plan = plan
        self.worker = worker
        self.forms = testable_forms(plan.forms)
        self.checkers = make_checkers(pinned_list(directory, plan))
        self.state = _load_worker(directory, worker, plan.jobs)
        self.state_every = state_every
        self._unwritten = False  # batches counted in ``state`` since it was last written
        self._write_at = 0.0  # monotonic time from which the next write is due

    def _case(self, batch: int, index: int):
        return draw_case(self.plan, self.forms, batch, index)

    def run_batch(self, report: Optional[Callable[[str, str], None]] = None) -> None:
        """Judge the next batch and save its divergences; the state counting it done is
        written while a later batch is judged, when due (``STATE_EVERY_S``), or by
        ``flush``. Its divergences are saved before anything of it is counted, so
        ``state`` always holds whole batches (what ``flush`` writes after a failure)."""
        batch = self.state["next_batch"]
        started = time.perf_counter()
        tally = judge_keys(self.checkers, self.plan, self.forms, batch, range(BATCH),
                           meanwhile=self._flush_when_due)
        for judged in tally.others:
            if judged.status in (DIVERGE, CRASHED):
                save(self.directory / "divergences",
                     {**judged.record, "case_seed": judged.seed,
                      "campaign_seed": self.plan.seed, "batch": batch, "index": judged.index})
            if report is not None and judged.status in (DIVERGE, CRASHED, KNOWN):
                report(judged.status, judged.line)
        for label, count in tally.agreed.items():
            _count(self.state, label, AGREE, count)
        for judged in tally.others:
            _count(self.state, judged.label, judged.status)
            if judged.status == KNOWN:
                known = self.state["known"]
                known[judged.known] = known.get(judged.known, 0) + 1
        self.state["cases"] += BATCH
        self.state["busy"] += time.perf_counter() - started
        self.state["next_batch"] = batch + self.plan.jobs
        self._unwritten = True

    def _flush_when_due(self) -> None:
        if time.monotonic() >= self._write_at:
            self.flush()

    def flush(self) -> None:
        """Write the state, if batches were counted since it was last written.
        ``run_batch`` has it done while a later batch's first request is judged: the
        write's syncs (3-11 ms of wall time a write here, issue 18) then leave no child
        idle. A crash before it has those batches judged again (their divergences were
        made durable before, and are written again under the same names)."""
        if not self._unwritten:
            return
        # Not write_durably: syncing the directory too cost ~3.5 ms of wall time a batch.
        # A power loss may then leave an earlier state, with the same consequence.
        write_atomically(self.directory / "workers" / f"{self.worker}.json",
                         json.dumps(self.state) + "\n")
        self._unwritten = False
        self._write_at = time.monotonic() + self.state_every


def worker_main(directory: str, plan: Plan, worker: int, deadline: float,
                make_checkers: Callable[[PinnedList], List[Checker]], queue: Any,
                parent: int = 0) -> None:
    """Process entry point: run batches until the deadline, reporting to ``queue``. Any
    failure is sent as ``("failed", worker, reason)`` and ends the process with status 1;
    the traceback goes to ``DIR/workers/W.error.txt``, not over the live display."""
    from differential.lifeline import die_with_parent

    if parent:
        die_with_parent(parent)
    slot: Optional[Worker] = None
    try:
        slot = Worker(Path(directory), plan, worker, make_checkers)

        def report(status: str, line: str) -> None:
            queue.put(("found", worker, status, line))

        progress_at = 0.0
        while time.time() < deadline:
            slot.run_batch(report)
            if time.monotonic() >= progress_at:
                queue.put(("progress", worker, slot.state))
                progress_at = time.monotonic() + PROGRESS_EVERY_S
        slot.flush()
        queue.put(("done", worker, slot.state))
    except Exception as exc:  # noqa: BLE001 - reported to the campaign, which exits 1
        trace = Path(directory) / "workers" / f"{worker}.error.txt"
        write_durably(trace, traceback.format_exc())
        if slot is not None:
            try:
                slot.flush()  # the batches it finished still count
            except Exception:  # noqa: BLE001 - the first failure is the one reported
                pass
        queue.put(("failed", worker, f"{type(exc).__name__}: {exc} (traceback: {trace})"))
        queue.close()
        queue.join_thread()
        raise SystemExit(1) from None


def start_workers(directory: Path, plan: Plan, minutes: float,
                  make_checkers: Callable[[PinnedList], List[Checker]]):
    """Start ``plan.jobs`` processes; returns (processes, queue)."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    deadline = time.time() + minutes * 60
    processes = [context.Process(target=worker_main,
                                 args=(str(directory), plan, w, deadline, make_checkers, queue,
                                       os.getpid()),
                                 daemon=True)
                 for w in range(plan.jobs)]
    for process in processes:
        process.start()
    return processes, queue


def worker_states(directory: Path, jobs: int) -> List[Dict[str, Any]]:
    return [_load_worker(directory, w, jobs) for w in range(jobs)]
