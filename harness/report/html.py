"""The human half of the report: one self-contained HTML page (no scripts, no fetches).

Per engine, an inline SVG timeline draws each kernel's boot as consecutive spans
(firmware, kernel, init) on a shared seconds axis, so "where does the time go" is visible
at a glance; tables below give the figures, the checks and the console warnings.
"""

from __future__ import annotations

from html import escape
from typing import Dict, List

from harness.stages import SPANS

COLOURS = {"firmware": "#8da0cb", "kernel": "#fc8d62", "init": "#66c2a5"}
ROW, LABEL_W, BAR_W = 28, 70, 560
STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:60em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.2em .6em}
th{background:#f3f3f3}.fail{color:#b00;font-weight:bold}.ok{color:#070}
pre{background:#f8f8f8;padding:.5em;overflow:auto;font-size:85%}
"""


def longest_boot(records: List[dict]) -> float:
    return max([max(r["marks"].values(), default=0.0) for r in records] + [0.001])


def timeline_svg(records: List[dict], longest: float) -> str:
    """One engine's boots as stacked horizontal bars on a time axis ``longest`` s wide
    (the same for every engine, so the charts compare at a glance)."""
    scale = BAR_W / longest
    height = ROW * len(records) + 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{LABEL_W + BAR_W + 60}" '
             f'height="{height}" role="img" aria-label="boot timeline">']
    for row, record in enumerate(records):
        y = row * ROW + 4
        parts.append(f'<text x="0" y="{y + 15}" font-size="12">{escape(record["kernel"])}</text>')
        start = 0.0
        for span, _begin, _end in SPANS:
            seconds = record["spans"].get(span)
            if seconds is None:
                continue
            x, width = LABEL_W + start * scale, max(seconds * scale, 1.0)
            parts.append(
                f'<rect x="{x:.1f}" y="{y}" width="{width:.1f}" height="20" '
                f'fill="{COLOURS[span]}"><title>{span}: {seconds:.2f} s</title></rect>')
            start += seconds
        if "prompt" in record["marks"]:
            parts.append(f'<text x="{LABEL_W + start * scale + 4:.1f}" y="{y + 15}" '
                         f'font-size="11">{record["marks"]["prompt"]:.1f} s</text>')
        else:
            parts.append(f'<text x="{LABEL_W + start * scale + 4:.1f}" y="{y + 15}" '
                         'font-size="11" fill="#b00">no prompt</text>')
    axis_y = ROW * len(records) + 20
    for tick in range(0, int(longest) + 1, max(1, int(longest) // 8 or 1)):
        x = LABEL_W + tick * scale
        parts.append(f'<text x="{x:.1f}" y="{axis_y}" font-size="10">{tick}s</text>')
    parts.append("</svg>")
    return "".join(parts)


def _legend() -> str:
    return " ".join(f'<span style="color:{c}">&#9632;</span> {name}'
                    for name, c in COLOURS.items())


def _stage_table(records: List[dict], ratios: Dict[str, Dict[str, float]]) -> str:
    rows = ["<tr><th>kernel</th><th>kernel starts</th><th>init</th><th>prompt</th>"
            "<th>prompt / reference</th><th>instructions to prompt</th></tr>"]
    for r in records:
        marks = r["marks"]
        cells = [f"{marks[m]:.2f} s" if m in marks else "&mdash;"
                 for m in ("kernel", "init", "prompt")]
        total = sum(ratios.get(r["id"], {}).values())
        instr = r["instructions"].get("prompt")
        rows.append(f"<tr><td>{escape(r['kernel'])}</td><td>{'</td><td>'.join(cells)}</td>"
                    f"<td>{total:.2f}x</td><td>{f'{instr:,}' if instr else '&mdash;'}</td></tr>")
    return "<table>" + "".join(rows) + "</table>"


def _checks_table(records: List[dict]) -> str:
    names = [c["name"] for c in records[0]["checks"]] if records else []
    head = "".join(f"<th>{escape(r['kernel'])}</th>" for r in records)
    rows = [f"<tr><th>check</th>{head}</tr>"]
    for index, name in enumerate(names):
        cells = []
        for r in records:
            check = r["checks"][index] if index < len(r["checks"]) else None
            if check and check["passed"]:
                cells.append(f'<td class="ok">pass ({check["seconds"]:.1f} s)</td>')
            else:
                why = escape(check["message"]) if check else "not run"
                cells.append(f'<td class="fail" title="{why}">FAIL</td>')
        rows.append(f"<tr><td>{escape(name)}</td>{''.join(cells)}</tr>")
    return "<table>" + "".join(rows) + "</table>"


def render(report: dict) -> str:
    """The whole page for a report dict (as written to the JSON file)."""
    records = report["runs"]
    ratios = report.get("span_ratios", {})
    out = ["<!doctype html><html><head><meta charset='utf-8'>",
           f"<title>x86lab boot report</title><style>{STYLE}</style></head><body>",
           "<h1>x86lab boot report</h1>",
           f"<p>{escape(report['created'])} &middot; reference: "
           f"{escape(str(report['reference']['combo']))} time to prompt "
           f"{_seconds(report['reference']['seconds'])} &middot; baseline: "
           f"{escape(report['baseline'] or 'none')}</p>"]
    regressions = report["regressions"]
    out.append(f"<h2 class='{'fail' if regressions else 'ok'}'>"
               f"{len(regressions)} regression(s)</h2>")
    if regressions:
        out.append("<ul>" + "".join(
            f"<li><b>{escape(r['combo'])}</b> {escape(r['kind'])}: {escape(r['detail'])}</li>"
            for r in regressions) + "</ul>")
    for engine in sorted({r["engine"] for r in records}):
        mine = [r for r in records if r["engine"] == engine]
        out += [f"<h2>{escape(engine)}</h2>", timeline_svg(mine, longest_boot(records)),
                f"<p>{_legend()}</p>", _stage_table(mine, ratios), _checks_table(mine)]
        for r in mine:
            if r["error"]:
                out.append(f"<h3>{escape(r['id'])}: boot failed</h3><pre>"
                           f"{escape(r['error'])}</pre>")
            if r["warnings"]:
                out.append(f"<h3>{escape(r['id'])}: console warnings</h3><pre>"
                           + escape("\n".join(r["warnings"])) + "</pre>")
    out.append("</body></html>")
    return "\n".join(out)


def _seconds(value: object) -> str:
    return f"{value:.2f} s" if isinstance(value, (int, float)) else "n/a"
