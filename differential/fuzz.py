"""``x86lab fuzz``'s engine: replay what earlier runs found, then run the workers, then
write the report. The command module only parses options and prints."""

from __future__ import annotations

import queue as queue_module
import signal
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from differential.campaign import Plan, pinned_list, prepare, start_workers, worker_states
from differential.campaign_files import CampaignLock, usable_directory
from differential.check import Checker
from differential.corpus import paths
from differential.known import PinnedList
from differential.replay import replay
from differential.report import write


def replay_first(directory: Path, plan: Plan,
                 make_checkers: Callable[[PinnedList], List[Checker]],
                 say: Callable[[str], None]) -> int:
    """Rerun the campaign's saved divergences before looking for new ones (with the known
    list the campaign pinned); returns how many still diverge unexplained (fixed ones say
    "agree", triaged ones "known")."""
    saved = paths(directory / "divergences")
    if not saved:
        return 0
    still = replay(saved, make_checkers(pinned_list(directory, plan)), lambda line: None)
    say(f"replayed {len(saved)} saved divergences first: {still} still differ unexplained "
        f"(x86lab fuzz --replay FILE shows one)")
    return still


def run_campaign(directory: Path, plan: Plan, minutes: float, resume: bool,
                 make_checkers: Callable[[PinnedList], List[Checker]],
                 on_message: Optional[Callable[[tuple], None]] = None,
                 say: Callable[[str], None] = print,
                 lock: Optional[CampaignLock] = None) -> Dict[str, Any]:
    """Run a whole campaign and return its report (``differential.report.build``), with
    ``worker_failures``: one line per worker that did not end well (non-empty means the
    campaign failed). ``lock``: already held by the caller; otherwise taken here."""
    usable_directory(directory)
    held = lock or CampaignLock(directory).acquire()
    try:
        plan = prepare(directory, plan, resume)
        if resume:
            replay_first(directory, plan, make_checkers, say)
        failures = _run_workers(directory, plan, minutes, make_checkers, on_message)
        for line in failures:
            say(line)
        return write(directory, worker_failures=failures)
    finally:
        if lock is None:
            held.release()


def _run_workers(directory: Path, plan: Plan, minutes: float,
                 make_checkers: Callable[[PinnedList], List[Checker]],
                 on_message: Optional[Callable[[tuple], None]]) -> List[str]:
    """Start the workers, pass their messages on until all have ended, and say which
    ended badly and why (their own reason if they sent one, else how they died)."""
    processes, messages = start_workers(directory, plan, minutes, make_checkers)
    reasons: Dict[int, str] = {}

    def handle(message: tuple) -> None:
        if message[0] == "failed":
            reasons[message[1]] = message[2]
        elif on_message is not None:
            on_message(message)

    try:
        while any(p.is_alive() for p in processes):
            try:
                handle(messages.get(timeout=0.5))
            except queue_module.Empty:
                continue
        for process in processes:
            process.join()
        while True:  # what a worker sent just before it ended
            try:
                handle(messages.get(timeout=0.1))
            except queue_module.Empty:
                break
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
    return [f"worker {w} failed: {reasons.get(w) or _how_it_died(p.exitcode)}; its "
            f"divergences are on disk, its unfinished batch's counts are lost"
            for w, p in enumerate(processes) if p.exitcode or w in reasons]


def _how_it_died(code: Optional[int]) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


def cases_so_far(directory: Path, jobs: int) -> int:
    return sum(state["cases"] for state in worker_states(directory, jobs))
