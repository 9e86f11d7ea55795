"""``x86lab web measure``: how long the built page takes from navigation to a working
prompt, cold and from the saved state, and how many bytes it fetches, in headless
Chromium; beside it, v86 in Node booting the same image (the harness engine), as a ratio.

Each page load uses a fresh browser (empty cache), so the bytes are a first visit's.
With ``--profile`` each load (and the Node boot) also says where its time went
(``harness.boot_profile``: download, load, BIOS, decompressor, kernel, init; busy and idle).
With ``--network`` the page loads run under each emulated link in turn (``web.build.throttle``)
and every page figure says which (``network``); the Node boot reads files, no link.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from harness.boot_profile import analyse, format_profile, with_download
from web.build.built import built_manifest
from web.build.chromium import (
    COMMAND_TIMEOUT_MS,
    chromium_page,
    type_and_wait,
    wait_for_stage,
)
from web.build.errors import BuildError
from web.build.local import serving
from web.build.throttle import UNTHROTTLED, NetworkCondition, condition_name, emulate

FRAME_GAPS_JS = """(() => {
    const gaps = { max: 0, over50: 0, frames: 0 };
    window.__x86labFrames = gaps;
    let last = performance.now();
    const tick = (now) => {
        const gap = now - last;
        last = now;
        gaps.frames += 1;
        gaps.max = Math.max(gaps.max, gap);
        if (gap > 50) gaps.over50 += 1;
        requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
})();"""
"""Page responsiveness while v86 runs on the main thread: the longest gap between animation
frames and how many gaps exceed 50 ms (a user notices those as stutter)."""

PAGE_KINDS = {"cold main": "?boot=cold&engine=main", "state main": "?engine=main",
              "cold worker": "?boot=cold", "state worker": ""}
"""Page loads measured: from power-on and from the state, v86 on the main thread or in a
Web Worker (the page's default, chosen on these figures)."""


PAGE_DOWNLOADS_JS = """() => performance.getEntriesByType("resource").map((e) => ({
    name: e.name, start: performance.timeOrigin + e.startTime,
    end: performance.timeOrigin + e.responseEnd, bytes: e.transferSize}))"""
"""The page's own downloads (the saved state is fetched there, v86's files in the worker)."""


def page_profile(shown: dict, page_downloads: List[dict]) -> dict:
    """``harness.boot_profile`` phases of one page load, on the page's clock (ms since
    navigation). ``shown``: window.x86lab.profile (profiler.js's record with absolute
    times, the worker's downloads, the page's timeOrigin). The download phase ends with
    the last file under ``os/`` the boot needed (the lazy disk's probe excluded)."""
    origin = shown["timeOrigin"]
    record = shown["record"]
    moved = {
        "events": [{**e, "t": e["t"] - origin} for e in record["events"]],
        "lines": [{**line, "t": line["t"] - origin} for line in record["lines"]],
    }
    ends = [d["end"] - origin for d in [*record.get("downloads", []), *page_downloads]
            if "/os/" in d["name"] and "rootdisk" not in d["name"]]
    download_ms = max(ends, default=0.0)
    return with_download(analyse(moved, start_ms=download_ms), download_ms)


def fetched_file(response: object, site_url: str) -> dict:
    """One response as the page got it: the path under the site, the bytes on the wire
    (Content-Length, after any Content-Encoding) and that encoding."""
    headers = response.headers  # type: ignore[attr-defined]
    name = response.url.split("?")[0]  # type: ignore[attr-defined]
    return {"name": "/" + name[len(site_url):] if name.startswith(site_url) else name,
            "bytes": int(headers.get("content-length", 0)),
            "encoding": headers.get("content-encoding", "")}


def measure_page(url: str, profile: bool = False,
                 network: Optional[NetworkCondition] = None) -> dict:
    """One page load: ms from navigation to the prompt and to a command's answer, bytes,
    and the main thread's frame gaps up to then; with ``profile`` the boot profile too.
    ``network``: the emulated link for the whole load (None: unthrottled loopback)."""
    if profile:
        url += ("&" if "?" in url else "?") + "profile=1"
    fetched: List[dict] = []
    site_url = url.split("?")[0]
    with chromium_page() as page:
        # Responses of the page and of its Web Worker (the page's own resource timing does
        # not see the worker's downloads); web.serve always sends Content-Length.
        page.on("response", lambda r: r.url.startswith("http") and fetched.append(
            fetched_file(r, site_url)))  # a blob: URL is the page's own bytes, not a fetch
        page.add_init_script(FRAME_GAPS_JS)
        emulate(page, network)
        page.goto(url)
        wait_for_stage(page, "prompt")
        start = time.monotonic()
        type_and_wait(page, "echo $((6*7))", "\n42\r")
        answer_ms = (time.monotonic() - start) * 1000
        facts = page.evaluate("() => ({boot: window.x86lab.boot, times: window.x86lab.times})")
        frames = page.evaluate("() => window.__x86labFrames")
        figures = {"network": condition_name(network), "boot": facts["boot"],
                   "prompt_ms": facts["times"]["prompt"],
                   "first_command_ms": round(answer_ms),
                   "bytes": sum(file["bytes"] for file in fetched), "files": fetched,
                   "stage_ms": facts["times"], "max_frame_gap_ms": round(frames["max"]),
                   "frame_gaps_over_50ms": frames["over50"], "frames": frames["frames"]}
        if profile:
            page.wait_for_function("() => window.x86lab.profile !== undefined",
                                   timeout=COMMAND_TIMEOUT_MS)
            figures["profile"] = page_profile(page.evaluate("() => window.x86lab.profile"),
                                              page.evaluate(PAGE_DOWNLOADS_JS))
    return figures


def measure_node(site: Path) -> dict:
    """v86 in Node (the harness engine) booting the site's image with the page's memory."""
    from harness.guest import start_guest
    from images.build import ensure_image

    manifest = built_manifest(site)
    image = ensure_image(kernel=manifest["kernel_kind"])
    if image.manifest["kernel"]["sha256"] != manifest["kernel_sha256"]:
        raise BuildError(f"{site} was built from another image; rebuild it first")
    guest = start_guest("v86", image, manifest["kernel_kind"], manifest["memory_mib"])
    try:
        marks = guest.metrics().marks
        profile = guest.profile()
    finally:
        guest.stop()
    return {"prompt_ms": round(marks["prompt"] * 1000), "profile": profile}


def measure_site(site: Path, runs: int = 1, profile: bool = False,
                 networks: Sequence[Optional[NetworkCondition]] = (None,),
                 ) -> Dict[str, List[dict]]:
    """Cold and state page loads (``runs`` each, under each of ``networks``) and one Node
    boot of the same image; ``profile``: each page load also records its boot profile
    (``?profile=1``). Conditions alternate within a run, so a load that drifts over the
    measurement touches each condition alike."""
    has_state = bool(built_manifest(site).get("state"))
    figures: Dict[str, List[dict]] = {kind: [] for kind in PAGE_KINDS}
    with serving(site) as url:
        for _ in range(runs):
            for network in networks:
                for kind, query in PAGE_KINDS.items():
                    if has_state or "state" not in kind:
                        figures[kind].append(measure_page(url + query, profile, network))
    figures["node"] = [measure_node(site)]
    return figures


def ordered_runs(figures: Dict[str, List[dict]]) -> List[Tuple[str, str, int, dict]]:
    """(label, network, run number, figures) of every row, page loads grouped by network
    condition (in the order measured) then by kind, Node last with no network: the one
    order the table and the HTML page show. Figures from before
    ``--network`` existed have no ``network`` and were unthrottled."""
    networks: List[str] = []
    for kind in PAGE_KINDS:
        for run in figures[kind]:
            if run.get("network", UNTHROTTLED) not in networks:
                networks.append(run.get("network", UNTHROTTLED))
    rows = []
    for network in networks:
        for kind in PAGE_KINDS:
            mine = [r for r in figures[kind] if r.get("network", UNTHROTTLED) == network]
            rows += [(f"chromium {kind}", network, n, r) for n, r in enumerate(mine, 1)]
    rows += [("node v86", "", n, r) for n, r in enumerate(figures["node"], 1)]
    return rows


def profile_title(label: str, network: str, number: int) -> str:
    """A profile's heading; the link is named only when it was emulated, so unthrottled
    headings read as they always have."""
    link = f" at {network}" if network not in ("", UNTHROTTLED) else ""
    return f"{label}{link}, run {number}"


def figures_html(figures: Dict[str, List[dict]]) -> str:
    """The figures as one self-contained page: the table ``print_figures`` prints, then
    each profiled boot's timeline (``harness.report.html.profile_section``, as in the
    boot report)."""
    from html import escape

    from harness.report.html import STYLE, profile_section

    node = figures["node"][0]["prompt_ms"]
    rows = ["<tr><th>run</th><th>network</th><th>to prompt</th><th>vs Node</th>"
            "<th>1st cmd</th><th>bytes</th><th>max frame gap</th><th>gaps &gt; 50 ms</th></tr>"]
    sections = []
    for label, network, number, run in ordered_runs(figures):
        if not network:
            rows.append(f"<tr><td>{label}</td><td></td><td>{node / 1000:.2f} s</td>"
                        "<td>1.00x</td>" + "<td></td>" * 4 + "</tr>")
        else:
            rows.append(f"<tr><td>{escape(label)}</td><td>{escape(network)}</td>"
                        f"<td>{run['prompt_ms'] / 1000:.2f} s"
                        f"</td><td>{run['prompt_ms'] / node:.2f}x</td>"
                        f"<td>{run['first_command_ms']} ms</td>"
                        f"<td>{run['bytes'] / 2**20:.1f} MiB</td>"
                        f"<td>{run['max_frame_gap_ms']} ms</td>"
                        f"<td>{run['frame_gaps_over_50ms']}</td></tr>")
        if run.get("profile"):
            sections.append(profile_section(profile_title(label, network, number),
                                            run["profile"]))
    return ("<!doctype html><html><head><meta charset='utf-8'><title>x86lab web measure"
            f"</title><style>{STYLE}</style></head><body><h1>x86lab web measure</h1>"
            f"<table>{''.join(rows)}</table>{''.join(sections)}</body></html>\n")


def print_figures(figures: Dict[str, List[dict]], as_json: bool,
                  profile: bool = False) -> None:
    """The table (or the JSON) on stdout; each page row names its network condition."""
    if as_json:
        print(json.dumps(figures, indent=1))
        return
    node = figures["node"][0]["prompt_ms"]
    print(f"{'run':<22}{'network':<14}{'to prompt':>10}{'vs Node':>9}{'1st cmd':>9}"
          f"{'bytes':>10}{'max frame gap':>15}{'gaps>50ms':>10}")
    for label, network, _, run in ordered_runs(figures):
        if not network:
            print(f"{label:<22}{'':<14}{node / 1000:>9.2f}s{1:>8.2f}x")
            continue
        print(f"{label:<22}{network:<14}{run['prompt_ms'] / 1000:>9.2f}s"
              f"{run['prompt_ms'] / node:>8.2f}x{run['first_command_ms']:>7}ms"
              f"{run['bytes'] / 2**20:>7.1f}MiB{run['max_frame_gap_ms']:>13}ms"
              f"{run['frame_gaps_over_50ms']:>10}")
    if not profile:
        return
    for label, network, number, run in ordered_runs(figures):
        if run.get("profile"):
            print(f"\nprofile: {profile_title(label, network, number)}\n"
                  f"{format_profile(run['profile'])}")
