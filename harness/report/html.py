"""The human half of the report: one self-contained HTML page (no scripts, no fetches).

Per engine, an inline SVG timeline draws each kernel's boot as consecutive spans
(firmware, kernel, init) on a shared seconds axis, so "where does the time go" is visible
at a glance; tables below give the figures, the checks and the console warnings. A boot
with a profile (v86: ``harness.boot_profile``) gets its own timeline of phases, each bar
split into the time v86 emulated (busy) and the time the guest waited (idle).
"""

from __future__ import annotations

from html import escape
from typing import Dict, List

from harness.stages import SPANS

COLOURS = {"firmware": "#8da0cb", "kernel": "#fc8d62", "init": "#66c2a5"}
PHASE_COLOURS = {"download": "#b3b3b3", "load": "#e5c494", "bios": "#8da0cb",
                 "decompressor": "#e78ac3", "kernel": "#fc8d62", "init": "#66c2a5",
                 "restore": "#a6d854", "prompt": "#ffd92f"}
"""The profile's phases (``harness.boot_profile``: a cold boot's and a restored state's)."""
IDLE_OPACITY = 0.35
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


def profile_svg(profile: dict) -> str:
    """One boot's profile as a timeline: a row per phase, its bar from the phase's start to
    its end on a shared milliseconds axis, the busy share drawn solid and the idle share
    pale (v86 does not tell when in a phase it waited, only how long, so the shares are
    drawn side by side). Hovering a bar gives the figures."""
    phases = profile["phases"]
    longest = max([p["end_ms"] for p in phases] + [1.0])
    scale = BAR_W / longest
    height = ROW * len(phases) + 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{LABEL_W + BAR_W + 170}" '
             f'height="{height}" role="img" aria-label="boot profile">']
    for row, phase in enumerate(phases):
        y = row * ROW + 4
        colour = PHASE_COLOURS.get(phase["name"], "#999")
        x = LABEL_W + phase["start_ms"] * scale
        busy = phase["busy_ms"] * scale
        idle = max(phase["wall_ms"] * scale - busy, 0.0)
        title = (f'{phase["name"]}: {phase["wall_ms"]:.0f} ms, busy {phase["busy_ms"]:.0f} ms, '
                 f'idle {phase["idle_ms"]:.0f} ms, {phase["instructions"]:,} instructions')
        parts.append(f'<text x="0" y="{y + 15}" font-size="12">{escape(phase["name"])}</text>'
                     f'<g><title>{escape(title)}</title>'
                     f'<rect x="{x:.1f}" y="{y}" width="{max(busy, 1.0):.1f}" height="20" '
                     f'fill="{colour}"/>'
                     f'<rect x="{x + busy:.1f}" y="{y}" width="{idle:.1f}" height="20" '
                     f'fill="{colour}" fill-opacity="{IDLE_OPACITY}"/></g>'
                     f'<text x="{x + busy + idle + 4:.1f}" y="{y + 15}" font-size="11">'
                     f'{phase["wall_ms"]:.0f} ms ({phase["idle_ms"]:.0f} idle)</text>')
    axis_y = ROW * len(phases) + 20
    step = _tick_ms(longest)
    for tick in range(0, int(longest) + 1, step):
        parts.append(f'<text x="{LABEL_W + tick * scale:.1f}" y="{axis_y}" '
                     f'font-size="10">{tick / 1000:g}s</text>')
    parts.append("</svg>")
    return "".join(parts)


def _tick_ms(longest_ms: float) -> int:
    """A round tick interval giving at most about eight ticks."""
    for step in (50, 100, 250, 500, 1000, 2000, 5000, 10000, 30000, 60000):
        if longest_ms / step <= 8:
            return step
    return 120000


def profile_table(profile: dict) -> str:
    """The profile's figures: a row per phase, the total, the slowest initcalls if named."""
    rows = ["<tr><th>phase</th><th>wall</th><th>busy</th><th>idle</th>"
            "<th>instructions</th></tr>"]
    for p in profile["phases"]:
        rows.append(f"<tr><td>{escape(p['name'])}</td><td>{p['wall_ms']:.0f} ms</td>"
                    f"<td>{p['busy_ms']:.0f} ms</td><td>{p['idle_ms']:.0f} ms</td>"
                    f"<td>{p['instructions']:,}</td></tr>")
    rows.append(f"<tr><th>total</th><th>{profile['total_ms']:.0f} ms</th><th></th>"
                f"<th>{profile['idle_ms']:.0f} ms</th><th>{profile['instructions']:,}</th></tr>")
    calls = "".join(f"<li>{escape(c['name'])}: {c['wall_ms']:.0f} ms "
                    f"({c['idle_ms']:.0f} idle), {c['instructions']:,} instructions</li>"
                    for c in profile.get("initcalls", []))
    wait = (f"<p>waiting for asynchronous probes after the last initcall: "
            f"{profile['async_wait_ms']:.0f} ms</p>" if "async_wait_ms" in profile else "")
    return ("<table>" + "".join(rows) + "</table>"
            + (f"<p>slowest initcalls:</p><ul>{calls}</ul>" if calls else "") + wait)


def profile_section(title: str, profile: dict) -> str:
    """A heading, the timeline with its legend, and the table: what ``render`` and
    ``x86lab web measure --html`` show for each profiled boot."""
    return (f"<h3>{escape(title)}</h3>{profile_svg(profile)}"
            f"<p>solid: busy (v86 emulating); pale: idle (the guest halted, waiting)</p>"
            f"{profile_table(profile)}")


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
            if r.get("profile"):
                out.append(profile_section(f"{r['id']}: where the boot's time went",
                                           r["profile"]))
            if r["warnings"]:
                out.append(f"<h3>{escape(r['id'])}: console warnings</h3><pre>"
                           + escape("\n".join(r["warnings"])) + "</pre>")
    out.append("</body></html>")
    return "\n".join(out)


def _seconds(value: object) -> str:
    return f"{value:.2f} s" if isinstance(value, (int, float)) else "n/a"
