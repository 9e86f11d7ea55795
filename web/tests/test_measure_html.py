"""``x86lab web measure --html``: the figures and each profile's timeline as one page."""

from __future__ import annotations

import re

from web.build.measure import PAGE_KINDS, figures_html


def _profile(total_ms: float) -> dict:
    return {"phases": [{"name": "download", "start_ms": 0.0, "end_ms": total_ms,
                        "wall_ms": total_ms, "busy_ms": 0.0, "idle_ms": 0.0,
                        "instructions": 0}],
            "end": "prompt", "total_ms": total_ms, "idle_ms": 0.0, "instructions": 0}


def test_each_run_is_a_row_and_each_profile_a_timeline() -> None:
    page_run = {"prompt_ms": 3000, "first_command_ms": 500, "bytes": 3 * 2**20,
                "max_frame_gap_ms": 80, "frame_gaps_over_50ms": 2,
                "profile": _profile(3000.0)}
    figures = {kind: [dict(page_run)] for kind in PAGE_KINDS}
    figures["cold worker"][0].pop("profile")  # a run without a profile: a row, no chart
    figures["node"] = [{"prompt_ms": 2000, "profile": _profile(2000.0)}]
    page = figures_html(figures)
    # 3.00 s against Node's 2.00 s is 1.50x; 3 MiB shown as 3.0 MiB
    assert page.count("<td>3.00 s</td><td>1.50x</td>") == len(PAGE_KINDS)
    assert "<td>3.0 MiB</td>" in page
    assert page.count("<svg") == len(PAGE_KINDS)  # the three profiled loads and Node
    assert "<h3>node v86, run 1</h3>" in page
    assert "chromium cold worker, run 1</h3>" not in page
    assert not re.search(r"<script|src=|href=", page)
