"""``?profile=1``: the page's boot profile (harness/engines/v86/profiler.js in the worker)
covers the whole cold boot, phase after phase, and a restored state has its own phases."""

from __future__ import annotations

import pytest

from web.build.chromium import CHROMIUM, chromium_page, wait_for_stage
from web.build.measure import PAGE_DOWNLOADS_JS, page_profile

pytestmark = [
    pytest.mark.browser, pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} missing: apt-get install "
                       "chromium"),
]


def _profile(site_url: str, query: str) -> dict:
    with chromium_page() as page:
        page.goto(site_url + query)
        wait_for_stage(page, "prompt")
        page.wait_for_function("() => window.x86lab.profile !== undefined")
        prompt_ms = page.evaluate("() => window.x86lab.times.prompt")
        profile = page_profile(page.evaluate("() => window.x86lab.profile"),
                               page.evaluate(PAGE_DOWNLOADS_JS))
    return {"prompt_ms": prompt_ms, **profile}


def test_a_cold_boot_profile_runs_from_download_to_the_prompt(site_url: str) -> None:
    profile = _profile(site_url, "?boot=cold&profile=1")
    phases = profile["phases"]
    assert [p["name"] for p in phases] == ["download", "load", "bios", "decompressor",
                                           "kernel", "init"]
    # phases follow each other without gaps, and end where the page saw the prompt
    # (the worker answers the page's request a little later, never earlier)
    for before, after in zip(phases, phases[1:]):
        assert after["start_ms"] == before["end_ms"]
    assert phases[-1]["end_ms"] >= profile["prompt_ms"] - 1
    # the guest ran in every phase after load; a Linux boot is tens of millions
    assert all(p["instructions"] > 0 for p in phases[2:])
    assert profile["instructions"] > 10_000_000
    for phase in phases[1:]:  # after the download: emulating (busy) or waiting (idle)
        assert phase["busy_ms"] + phase["idle_ms"] == pytest.approx(phase["wall_ms"], abs=0.2)


def test_a_restored_state_profile_has_no_boot_phases(site_url: str) -> None:
    profile = _profile(site_url, "?profile=1")
    assert [p["name"] for p in profile["phases"]] == ["download", "load", "restore",
                                                      "prompt"]
