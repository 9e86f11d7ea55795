"""``x86lab fuzz``'s engine: replay what earlier runs found, then run the workers, then
write the report. The command module only parses options and prints."""

from __future__ import annotations

import queue as queue_module
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from differential.campaign import Plan, prepare, start_workers, worker_states
from differential.check import Checker
from differential.corpus import paths
from differential.replay import replay
from differential.report import write


def replay_first(directory: Path, make_checkers: Callable[[], List[Checker]],
                 say: Callable[[str], None]) -> int:
    """Rerun the campaign's saved divergences before looking for new ones; returns how
    many still diverge unexplained (fixed ones say "agree", triaged ones "known")."""
    saved = paths(directory / "divergences")
    if not saved:
        return 0
    still = replay(saved, make_checkers(), lambda line: None)
    say(f"replayed {len(saved)} saved divergences first: {still} still differ unexplained "
        f"(x86lab fuzz --replay FILE shows one)")
    return still


def run_campaign(directory: Path, plan: Plan, minutes: float, resume: bool,
                 make_checkers: Callable[[], List[Checker]],
                 on_message: Optional[Callable[[tuple], None]] = None,
                 say: Callable[[str], None] = print) -> Dict[str, Any]:
    """Run a whole campaign and return its report (``differential.report.build``)."""
    plan = prepare(directory, plan, resume)
    if resume:
        replay_first(directory, make_checkers, say)
    processes, messages = start_workers(directory, plan, minutes, make_checkers)
    try:
        while any(p.is_alive() for p in processes):
            try:
                message = messages.get(timeout=0.5)
            except queue_module.Empty:
                continue
            if on_message is not None:
                on_message(message)
        for process in processes:
            process.join()
            if process.exitcode:
                say(f"worker {processes.index(process)} exited with {process.exitcode}; "
                    f"its divergences are on disk, its last batch's counts are lost")
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
    return write(directory)


def cases_so_far(directory: Path, jobs: int) -> int:
    return sum(state["cases"] for state in worker_states(directory, jobs))
