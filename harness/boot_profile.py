"""Where a v86 boot's wall time goes: phases, busy against idle, the slowest initcalls.

``engines/v86/profiler.js`` records, inside the emulator, how long v86 spent emulating
(busy) against waiting for the halted guest (idle), the moments SeaBIOS hands over to the
kernel's setup code and the decompressor hands over to the kernel, and a stamp (time,
guest instructions, busy time) on every console line. This module turns that record into
the phases a reader can act on:

=============  ==========================================================================
load           runner start (Node) or download end (page) to v86 loaded: wasm compile
bios           SeaBIOS, to the first slice outside it
decompressor   the kernel's real-mode setup and decompressor, to the first kernel address
kernel         the kernel to ``Run /init``: initcalls (named with ``initcall_debug``)
init           /init to the prompt (BusyBox, mounts, the shell)
=============  ==========================================================================

A page started from a saved state has ``load``, ``restore`` (v86's restore_state) and
``prompt`` (running until the shell answers the newline the page sends).

Each phase carries wall, busy and idle milliseconds and guest instructions; ``idle_ms``
sums the waiting (HLT: timer delays, probes waiting for an answer). A page adds its
``download`` phase first (``web.build.measure``). ``x86lab boot --engine v86 --json``
and ``x86lab web measure --profile`` print it.
"""

from __future__ import annotations

import re
from typing import Dict, List, Optional, Sequence

INIT_LINE = "Run /init as init process"
"""The kernel's last line before it executes the initramfs's /init (init/main.c)."""
ASYNC_LINE = "Freeing unused kernel image"
"""Printed once the kernel has waited for asynchronous probes (async_synchronize_full)."""
CALLING = re.compile(r"calling  (\S+) @ \d+")
RETURNED = re.compile(r"initcall (\S+) returned (-?\d+) after (\d+) usecs")
TOP_INITCALLS = 12
PHASES = ("load", "bios", "decompressor", "kernel", "init")
RESTORED_PHASES = ("load", "restore", "prompt")
"""A page started from the saved state: v86 loaded, restore_state, then the fresh prompt."""
GUEST_PHASES = ("bios", "decompressor", "kernel", "init", "prompt")
"""Phases where the guest runs, so idle means it waited (load and restore are host work:
no guest slices run, so all their time shows as idle)."""


def _span(name: str, start: dict, end: dict) -> dict:
    wall = max(0.0, end["t"] - start["t"])
    busy = max(0.0, min(wall, end["busy"] - start["busy"]))
    return {"name": name, "start_ms": round(start["t"], 1), "end_ms": round(end["t"], 1),
            "wall_ms": round(wall, 1), "busy_ms": round(busy, 1),
            "idle_ms": round(wall - busy, 1),
            "instructions": end["instructions"] - start["instructions"]}


def _first_line(lines: Sequence[dict], text: str) -> Optional[dict]:
    return next((line for line in lines if text in line["text"]), None)


def initcalls(lines: Sequence[dict]) -> List[dict]:
    """Every initcall the console shows, in order (needs ``initcall_debug`` and a console
    loglevel that shows KERN_DEBUG, e.g. ``loglevel=8``); names are addresses unless the
    kernel has KALLSYMS."""
    started: Dict[str, dict] = {}
    calls = []
    for line in lines:
        begin = CALLING.search(line["text"])
        if begin:
            started[begin.group(1)] = line
            continue
        end = RETURNED.search(line["text"])
        if end and end.group(1) in started:
            call = _span(end.group(1), started.pop(end.group(1)), line)
            call["guest_us"] = int(end.group(3))
            calls.append(call)
    return calls


def analyse(record: dict, start_ms: float = 0.0) -> dict:
    """Phases from a profiler.js record (``events``, ``lines``), times on its clock;
    ``start_ms``: when the load phase began on that clock (the runner's start: 0)."""
    events = {event["name"]: event for event in record["events"]}
    lines = record["lines"]
    end = record["events"][-1]
    origin = {"t": start_ms, "busy": 0.0, "instructions": 0}
    if "decompressor" in events or "started" not in events:
        names = PHASES
        bounds = [origin, events.get("loaded"), events.get("decompressor"),
                  events.get("kernel"), _first_line(lines, INIT_LINE), end]
    else:  # a saved state restored between loaded and started
        names = RESTORED_PHASES
        bounds = [origin, events.get("loaded"), events["started"], end]
    # A mark before start_ms (v86 loaded while the page's last file, a throttled state,
    # was still arriving) counts from start_ms: the phases follow the download phase
    # and do not overlap it, so restore is the restore and not the rest of the download.
    bounds = [None if bound is None else {**bound, "t": max(bound["t"], start_ms)}
              for bound in bounds]
    phases = []
    for name, (first, last) in zip(names, zip(bounds, bounds[1:])):
        if first is not None and last is not None:
            phases.append(_span(name, first, last))
    calls = initcalls(lines)
    profile = {"phases": phases, "end": end["name"],
               "total_ms": round(end["t"] - start_ms, 1),
               "idle_ms": round(sum(p["idle_ms"] for p in phases if p["name"] in GUEST_PHASES), 1),
               "instructions": end["instructions"],
               "initcalls": sorted(calls, key=lambda c: -c["wall_ms"])[:TOP_INITCALLS]}
    freeing = _first_line(lines, ASYNC_LINE)
    if calls and freeing is not None:
        last_return = calls[-1]["end_ms"]
        profile["async_wait_ms"] = round(max(0.0, freeing["t"] - last_return), 1)
    return profile


def with_download(profile: dict, download_ms: float) -> dict:
    """A page's profile: a ``download`` phase (navigation to its last boot file) first;
    the page's load phase then counts from there (downloads and compiling overlap), so
    ``profile`` must come from ``analyse(record, start_ms=download_ms)``."""
    download = {"name": "download", "start_ms": 0.0, "end_ms": round(download_ms, 1),
                "wall_ms": round(download_ms, 1), "busy_ms": 0.0, "idle_ms": 0.0,
                "instructions": 0}
    return {**profile, "phases": [download, *profile["phases"]],
            "total_ms": round(profile["total_ms"] + download_ms, 1)}


def format_profile(profile: dict) -> str:
    """The profile as a small table (one row per phase, then the slowest initcalls)."""
    rows = [f"{'phase':<14}{'wall':>9}{'busy':>9}{'idle':>9}{'instructions':>14}"]
    for phase in profile["phases"]:
        rows.append(f"{phase['name']:<14}{phase['wall_ms']:>7.0f}ms{phase['busy_ms']:>7.0f}ms"
                    f"{phase['idle_ms']:>7.0f}ms{phase['instructions']:>14,}")
    rows.append(f"{'total':<14}{profile['total_ms']:>7.0f}ms{'':>9}"
                f"{profile['idle_ms']:>7.0f}ms{profile['instructions']:>14,}")
    if profile.get("initcalls"):
        rows.append("slowest initcalls:")
        for call in profile["initcalls"]:
            rows.append(f"  {call['name']:<30}{call['wall_ms']:>7.0f}ms wall"
                        f"{call['idle_ms']:>7.0f}ms idle{call['instructions']:>12,} instr")
    if "async_wait_ms" in profile:
        rows.append(f"waiting for async probes after the last initcall: "
                    f"{profile['async_wait_ms']:.0f} ms")
    return "\n".join(rows)
