"""The live campaign display on stderr (rich): cases/s, per-form counts, divergences."""

from __future__ import annotations

import os
import time
from typing import Any, Dict, List

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from differential.report import STATUSES


class CampaignDisplay:
    """Collects worker messages and renders them; ``with CampaignDisplay(...) as d``."""

    def __init__(self, jobs: int, minutes: float) -> None:
        self.console = Console(stderr=True, no_color=bool(os.environ.get("NO_COLOR")))
        self.started = time.time()
        self.minutes = minutes
        self.states: Dict[int, Dict[str, Any]] = {}
        self.found: List[str] = []
        self.jobs = jobs
        self._live = Live(console=self.console, refresh_per_second=2, transient=False)
        self._base = 0

    def __enter__(self) -> CampaignDisplay:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.update(self.render())
        self._live.__exit__(*exc)

    def baseline(self, cases: int) -> None:
        """Cases done before this run (on --resume): not counted in this run's rate."""
        self._base = cases

    def handle(self, message: tuple) -> None:
        kind, worker = message[0], message[1]
        if kind == "found":
            self.found.append(f"{message[2]}: {message[3]}")
        else:
            self.states[worker] = message[2]
        self._live.update(self.render())

    def totals(self) -> Dict[str, Dict[str, int]]:
        forms: Dict[str, Dict[str, int]] = {}
        for state in self.states.values():
            for form, counts in state["forms"].items():
                row = forms.setdefault(form, dict.fromkeys(STATUSES, 0))
                for status, n in counts.items():
                    row[status] = row.get(status, 0) + n
        return forms

    def render(self) -> Group:
        cases = sum(s["cases"] for s in self.states.values())
        elapsed = max(time.time() - self.started, 1e-9)
        rate = max(cases - self._base, 0) / elapsed  # resumed counts arrive with the first
        # progress message of each worker
        head = Text(f"{cases} cases  {rate:.0f} cases/s ({rate / self.jobs:.0f} per worker)  "
                    f"{elapsed / 60:.1f}/{self.minutes:g} min  "
                    f"divergences {sum(1 for f in self.found if f.startswith('diverge'))}  "
                    f"engine crashes {sum(1 for f in self.found if f.startswith('crashed'))}  "
                    f"known {sum(1 for f in self.found if f.startswith('known'))}")
        table = Table(*(["form"] + list(STATUSES)), title="busiest forms", expand=False)
        busiest = sorted(self.totals().items(), key=lambda kv: -sum(kv[1].values()))[:8]
        for form, counts in busiest:
            table.add_row(form, *(str(counts.get(s, 0)) for s in STATUSES))
        recent = Text("\n".join(line[:160] for line in self.found[-5:]))
        return Group(head, table, recent)
