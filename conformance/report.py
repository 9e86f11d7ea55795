"""The conformance report as JSON (for machines and CI) and a one-page HTML (for people):
the engine x suite matrix, then every difference grouped, new ones first, each with its
reproducer."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Dict, List

from conformance.findings import SuiteResult
from conformance.matrix import Report
from ground.engines import GUEST_VECTORS, engines

SCHEMA = "x86lab-conformance/1"


def to_json(report: Report) -> dict:
    options = report.options
    return {
        "schema": SCHEMA,
        "options": {"engines": list(options.engines), "suites": list(options.suites),
                    "kernel": options.kernel, "limit": options.limit,
                    "vectors": [str(p) for p in options.vector_paths]},
        "matrix": {engine: {r.suite: r.cell() for r in report.results if r.engine == engine}
                   for engine in options.engines},
        "results": [r.to_dict() for r in report.results],
        "new_differences": len(report.new_findings()),
        "undefined_differences": sum(f.kind == "undefined" for r in report.results
                                     for f in r.findings),
        "oracle_cpu": report.oracle_cpu,
        "user_mode_expressible": {engine: _totals(forms)
                                  for engine, forms in _expressibility(report).items()},
        "wall_seconds": report.wall_seconds,
    }


STEPPER_ENGINES = engines(GUEST_VECTORS)  # the engines that run vectors in user mode


def _expressibility(report: Report) -> Dict[str, Dict[str, Dict[str, int]]]:
    """engine -> form -> {vectors, expressible, <reason class>: count} for the engines
    whose vectors run in a Linux process (the per-form detail of their vectors cell)."""
    return {r.engine: r.detail for r in report.results
            if r.suite == "vectors" and r.engine in STEPPER_ENGINES and r.detail}


def _totals(forms: Dict[str, Dict[str, int]]) -> Dict[str, int]:
    total: Dict[str, int] = {}
    for counts in forms.values():
        for key, value in counts.items():
            total[key] = total.get(key, 0) + value
    return total


def _expressibility_html(report: Report) -> str:
    """Per engine, a table of forms: how many vectors user mode can express, and why not
    the rest (by reason class); the totals row first."""
    parts = []
    for engine, forms in _expressibility(report).items():
        total = _totals(forms)
        reasons = sorted(k for k in total if k not in ("vectors", "expressible"))
        head = "".join(f"<th>{html.escape(k)}</th>" for k in ["form", "vectors",
                                                               "expressible", *reasons])
        rows = [(f"<b>all {len(forms)} forms</b>", total)] + [
            (f"<code>{html.escape(form)}</code>", counts)
            for form, counts in sorted(forms.items())]
        body = "".join("<tr><td>" + name + "</td>" + "".join(
            f"<td>{counts.get(k, 0)}</td>" for k in ["vectors", "expressible", *reasons])
            + "</tr>" for name, counts in rows)
        parts.append(f"<details><summary>{html.escape(engine)}: {total['expressible']} of "
                     f"{total['vectors']} vectors expressible in user mode</summary>"
                     f"<table><tr>{head}</tr>{body}</table></details>")
    return "\n".join(parts) or "<p>No engine ran vectors in user mode.</p>"


def write_json(report: Report, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_json(report), indent=1) + "\n", "utf-8")


def _cell(result: SuiteResult) -> str:
    text = html.escape(result.cell())
    extra = []
    if result.counts.get("inexpressible"):
        extra.append(f"{result.counts['inexpressible']} not expressible in user mode")
    if result.counts.get("stopped_by_sentinel"):
        extra.append(f"{result.counts['stopped_by_sentinel']} stopped by a sentinel INT3 "
                     "(no single-step trap)")
    if result.counts.get("never_reached"):
        extra.append(f"{result.counts['never_reached']} lines never reached")
    new = sum(f.is_new for f in result.findings)
    if new:
        extra.append(f"{new} new difference group(s)")
    undefined = sum(f.kind == "undefined" for f in result.findings)
    if undefined:
        extra.append(f"{undefined} group(s) undefined by the SDM, differing")
    if result.note:
        extra.append(result.note)
    css = "na" if result.status == "n/a" else "bad" if new or result.status == "error" else "ok"
    small = f"<br><small>{html.escape('; '.join(extra))}</small>" if extra else ""
    return f'<td class="{css}">{text}{small}</td>'


def _matrix(report: Report) -> str:
    suites = list(report.options.suites)
    rows = ["<tr><th>engine</th>" + "".join(f"<th>{html.escape(s)}</th>" for s in suites)
            + "</tr>"]
    for engine in report.options.engines:
        cells: Dict[str, SuiteResult] = {r.suite: r for r in report.results
                                         if r.engine == engine}
        rows.append(f"<tr><th>{html.escape(engine)}</th>" + "".join(
            _cell(cells[s]) if s in cells else "<td></td>" for s in suites) + "</tr>")
    return "<table>" + "".join(rows) + "</table>"


def _findings(report: Report) -> str:
    items: List[str] = []
    every = [f for r in report.results for f in r.findings]
    rank = {"new": 0, "undefined": 1, "known": 2}
    for finding in sorted(every, key=lambda f: (rank[f.kind], f.engine, f.suite, f.group)):
        state = {"new": "NEW", "known": f"known: {finding.known}",
                 "undefined": "undefined by the SDM; this CPU and the engine differ: "
                              f"{finding.undefined}"}[finding.kind]
        fields = {k: v for k, v in finding.reproducer.items() if k != "guest_output"}
        repro = json.dumps(fields, indent=1) if fields else ""
        output = str(finding.reproducer.get("guest_output", ""))
        shown = (f"<p>The test in the guest (command, output, diff):</p>"
                 f"<pre>{html.escape(output)}</pre>") if output else ""
        items.append(
            f"<details{' open' if finding.is_new else ''}><summary>"
            f"<b>{html.escape(finding.kind.upper() if finding.is_new else finding.kind)}"
            f"</b> {html.escape(finding.engine)} / {html.escape(finding.suite)} / "
            f"<code>{html.escape(finding.group)}</code> ({finding.count}): "
            f"{html.escape(finding.summary[:300])}</summary>"
            f"<p>{html.escape(state)}</p><pre>{html.escape(repro)}</pre>{shown}</details>")
    return "\n".join(items) or "<p>No differences.</p>"


def write_html(report: Report, path: Path) -> None:
    times = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:.1f} s</td></tr>"
                    for k, v in report.wall_seconds.items())
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>x86lab conformance</title><style>
body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #aaa;padding:.3em .6em;vertical-align:top}}
.ok{{background:#dfd}} .bad{{background:#fdd}} .na{{color:#888}} pre{{background:#f4f4f4}}
</style></head><body><h1>x86lab conformance, kernel {html.escape(report.options.kernel)}</h1>
<p>Each cell: results that match the oracle / results compared. Vectors: expected outcomes
are those Unicorn and the reference agreed on; the program suites' expected output is this
machine's CPU running the same binary ({html.escape(str(report.oracle_cpu.get("described")))}).
"n/a": the suite cannot run on that engine. Differences come in three classes: NEW,
known (accepted with evidence in <code>conformance/known/</code>) and undefined (the SDM
leaves the result undefined; this CPU and the engine differ, and both are right).</p>
{_matrix(report)}<h2>Differences ({len(report.new_findings())} new groups)</h2>
{_findings(report)}<h2>Vectors user mode can express, per form</h2>
<p>The stepper runs a vector in a Linux process; the rest are classified, never failed.
</p>{_expressibility_html(report)}<h2>Wall time</h2><table>{times}</table></body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, "utf-8")
