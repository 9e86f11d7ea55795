"""The campaign report, rebuilt from the campaign directory alone (so a crashed campaign
still gets one): cases per form, divergences grouped by form with their reproducers,
known-divergence hits, throughput per core."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional

from differential.campaign import load_plan, worker_states
from differential.corpus import records, write_durably

STATUSES = ("agree", "diverge", "crashed", "known", "unimplemented", "unlisted",
            "untestable")


def build(directory: Path, worker_failures: Optional[List[str]] = None) -> Dict[str, Any]:
    """The report; ``worker_failures`` (lines from the run that just ended) are kept in it
    because a failed worker is a failed campaign."""
    plan = load_plan(directory)
    workers = worker_states(directory, plan.jobs)
    forms: Dict[str, Dict[str, int]] = {}
    known: Dict[str, int] = {}
    for state in workers:
        for form, counts in state["forms"].items():
            total = forms.setdefault(form, dict.fromkeys(STATUSES, 0))
            for status, n in counts.items():
                total[status] = total.get(status, 0) + n
        for entry, n in state["known"].items():
            known[entry] = known.get(entry, 0) + n
    divergences: Dict[str, List[Dict[str, Any]]] = {}
    for path, case, record in records(directory / "divergences"):
        divergences.setdefault(case.form or "(unattributed)", []).append(
            {"file": str(path), "reproducer": record.get("reproducer", ""),
             "status": record.get("status", "diverge"),
             "replay": f"x86lab fuzz --replay {path}"})
    throughput = [{"worker": s["worker"], "cases": s["cases"], "busy_seconds": s["busy"],
                   "cases_per_second": s["cases"] / s["busy"] if s["busy"] else 0.0}
                  for s in workers]
    cases = sum(s["cases"] for s in workers)
    busy = sum(s["busy"] for s in workers)
    return {"plan": plan.__dict__, "cases": cases,
            "cases_per_second_per_core": cases / busy if busy else 0.0,
            "divergent_forms": len(divergences),
            "divergences": sum(len(v) for v in divergences.values()),
            "engine_crashes": sum(item["status"] == "crashed"
                                  for items in divergences.values() for item in items),
            "worker_failures": list(worker_failures or []),
            "known_hits": known, "forms": dict(sorted(forms.items())),
            "divergences_by_form": dict(sorted(divergences.items())), "workers": throughput}


def markdown(report: Dict[str, Any]) -> str:
    plan = report["plan"]
    lines = [f"# Differential campaign (seed {plan['seed']}, {plan['jobs']} workers, "
             f"forms {plan['forms']!r})", "",
             f"- cases: {report['cases']}",
             f"- throughput: {report['cases_per_second_per_core']:.0f} cases/s per core",
             f"- divergences: {report['divergences']} in {report['divergent_forms']} forms",
             f"- of which engine crashes: {report['engine_crashes']}",
             f"- known-divergence hits: {sum(report['known_hits'].values())}", ""]
    if report["worker_failures"]:
        lines += ["## Workers that failed (the campaign is incomplete)", ""]
        lines += [f"- {line}" for line in report["worker_failures"]] + [""]
    lines += ["## Divergences by form", ""]
    if not report["divergences_by_form"]:
        lines.append("None.")
    for form, items in report["divergences_by_form"].items():
        lines.append(f"### {form} ({len(items)})")
        lines += [f"- `{item['reproducer']}`  \n  replay: `{item['replay']}`" for item in items]
        lines.append("")
    lines += ["", "## Known divergences (Unicorn wrong)", ""]
    lines += [f"- {entry}: {n}" for entry, n in sorted(report["known_hits"].items())] or ["None."]
    lines += ["", "## Cases per form", "", "| form | " + " | ".join(STATUSES) + " |",
              "|---|" + "---|" * len(STATUSES)]
    for form, counts in report["forms"].items():
        lines.append(f"| {form} | " + " | ".join(str(counts.get(s, 0)) for s in STATUSES) + " |")
    lines += ["", "## Throughput per worker", "", "| worker | cases | cases/s |", "|---|---|---|"]
    lines += [f"| {w['worker']} | {w['cases']} | {w['cases_per_second']:.0f} |"
              for w in report["workers"]]
    return "\n".join(lines) + "\n"


def write(directory: Path, worker_failures: Optional[List[str]] = None) -> Dict[str, Any]:
    report = build(directory, worker_failures)
    write_durably(directory / "report.json", json.dumps(report, indent=1) + "\n")
    write_durably(directory / "report.md", markdown(report))
    return report
