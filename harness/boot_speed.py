"""``x86lab bench --boot``: the tiny image booted to the shell prompt on the reference PC,
beside v86 in Node booting the same image in the same run.

Per reference run: the interpreter (CPython, PyPy), the path (the interpreter alone;
compiled blocks with a cold block cache, an empty ``X86LAB_CACHE``; and warm, a second run
on that cache), instructions and wall seconds to the prompt, instructions/s, the warm-up
(wall seconds to the first ``--progress`` counter at or after 10 M instructions), the
steady rate after it, and the peak RSS. Every rate is also given as a ratio to v86's.

The reference PC is started exactly as ``x86lab boot --engine reference`` starts it
(``ReferenceEngine.command`` and its ``X86LAB {json}`` metric lines, read by
``CountingSession``), with ``--exit-at-stage prompt`` so it ends by itself at the prompt.
Its times come from its own records' ``t`` (seconds since its ``main`` began, after the
interpreter's start-up), one clock for warm-up and prompt alike; the peak RSS is the one
its stop record reports (its own address space's VmHWM), else its ``ru_maxrss`` as
``wait4`` reports it when reaping it (``RUSAGE_CHILDREN`` would give the largest child so
far; and ``ru_maxrss`` also counts the parent's pages the child held between fork and
exec, so a large parent, such as a long pytest run, inflates it).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from harness.engines.base import CountingSession, EngineError
from harness.engines.reference import ReferenceEngine
from reference.cpu import MAKER_BLOCK_THRESHOLD

WARMUP_INSTRUCTIONS = 10_000_000
"""Warm-up ends at the first counter at or after this many instructions (issue 14)."""
RUN_TIMEOUT_S = 1800.0
"""Longest one reference boot may take: CPython without blocks took 102-191 s here; this
leaves room for a machine several times busier."""
STOP_RECORD_WAIT_S = 10.0
"""How long the stderr reader may lag behind the child's exit before we give up."""


class BootBenchError(RuntimeError):
    """A boot of the bench failed or hung; the message says which and where its log is."""


@dataclass(frozen=True)
class ExecutionPath:
    """One execution path of the reference: its name and what it adds to the command."""

    name: str
    extra: Tuple[str, ...]
    cache: str
    """"none": no block cache at all; "cold": a new empty one; "warm": the cold run's."""
    short: str
    """Its name in the printed table, which must fit 80 columns."""


PATHS: Tuple[ExecutionPath, ...] = (
    ExecutionPath("interpreter", ("--block-threshold", "0", "--no-block-cache"), "none",
                  "interp"),
    ExecutionPath("blocks, cold cache", ("--block-threshold", str(MAKER_BLOCK_THRESHOLD)),
                  "cold", "blocks cold"),
    ExecutionPath("blocks, warm cache", ("--block-threshold", str(MAKER_BLOCK_THRESHOLD)),
                  "warm", "blocks warm"),
)
"""In this order: the warm run reuses the cache directory the cold run filled. The block
paths name the PC's threshold with its block maker (``reference.cpu.MAKER_BLOCK_THRESHOLD``,
CPython's default) for both interpreters: PyPy's default is 0
(blocks off), so without it PyPy's "blocks" rows would be the interpreter again; with it
they show what blocks cost there."""


def figures_from_records(records: Sequence[Dict[str, Any]], peak_rss_kib: int,
                         stop_at: str = "prompt",
                         warmup_at: int = WARMUP_INSTRUCTIONS) -> Dict[str, Any]:
    """The figures of one run from its metric records (``X86LAB`` lines, in order).

    ``stop_at``: the stage that ends the workload ("prompt"), or "budget" when the run
    was cut after a number of instructions (then the ``stop`` record ends it). Raises
    BootBenchError when the records never reach that point.
    """
    if stop_at == "budget":
        end = next((r for r in records if r["event"] == "stop"), None)
    else:
        end = next((r for r in records
                    if r["event"] == "stage" and r.get("name") == stop_at), None)
    if end is None:
        stop = next((r for r in records if r["event"] == "stop"), {})
        raise BootBenchError(f"the run ended before {stop_at}: "
                             f"{stop.get('reason', 'no stop record')} {stop.get('detail', '')}")
    instructions, seconds = int(end["instructions"]), float(end["t"])
    warm = next((r for r in records if r["event"] == "counter"
                 and r["instructions"] >= warmup_at and r["t"] <= seconds), None)
    started = next((r for r in records if r["event"] == "started"), {})
    figures: Dict[str, Any] = {
        "interpreter": started.get("interpreter"),
        "blocks": started.get("blocks"),  # how the run made and found blocks
        "instructions": instructions,
        "seconds": seconds,
        "ips": instructions / seconds if seconds > 0 else None,
        "warmup_instructions": warm["instructions"] if warm else None,
        "warmup_seconds": float(warm["t"]) if warm else None,
        "steady_ips": None,
        "peak_rss_mib": peak_rss_kib / 1024,
    }
    if warm and seconds > warm["t"]:
        figures["steady_ips"] = (instructions - warm["instructions"]) / (seconds - warm["t"])
    return figures


def _wait_reaped(session: CountingSession, timeout: float) -> Tuple[int, int]:
    """Wait for the child to exit and reap it ourselves with ``wait4`` (the only call that
    gives one child's own resource usage); return (exit status, ru_maxrss in KiB)."""
    proc = session.proc
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait again
            return proc.returncode, usage.ru_maxrss
        if time.monotonic() > deadline:
            session.stop()
            raise BootBenchError(f"{' '.join(session.argv[:3])} did not reach the end of "
                                 f"the workload in {timeout:.0f} s; stopped it")
        time.sleep(0.2)


def _wait_for_stop_record(session: CountingSession) -> Optional[Dict[str, Any]]:
    """The child's last record; the stderr reader thread may still be behind its exit."""
    deadline = time.monotonic() + STOP_RECORD_WAIT_S
    while time.monotonic() < deadline:
        found = [r for r in list(session.records) if r["event"] == "stop"]
        if found:
            return found[0]
        time.sleep(0.05)
    return None


def run_reference(python: str, image: Any, path: ExecutionPath, cache: Optional[Path],
                  instructions: Optional[int] = None, memory_mib: int = 256,
                  warmup_at: int = WARMUP_INSTRUCTIONS,
                  log_path: Optional[Path] = None,
                  timeout: float = RUN_TIMEOUT_S) -> Dict[str, Any]:
    """One boot on the reference PC under ``python`` along ``path``, to the prompt (or
    ``instructions`` then stop); ``cache`` becomes the child's ``X86LAB_CACHE``."""
    extra = list(path.extra) + ["--progress", str(min(warmup_at, 10_000_000))]
    extra += (["--budget", str(instructions)] if instructions
              else ["--exit-at-stage", "prompt"])
    engine = ReferenceEngine(python)
    argv = engine.command(image, memory_mib, extra)
    try:
        session = CountingSession("reference", argv, log_path,
                                  env=engine.environment(cache))
    except OSError as exc:
        raise BootBenchError(f"cannot start {python}: {exc}") from None
    try:
        status, peak_kib = _wait_reaped(session, timeout)
        _wait_for_stop_record(session)
        records = list(session.records)
        tail = session.stderr_tail(3)
    finally:
        session.stop()
    where = f" (console log: {log_path})" if log_path else ""
    if status != 0:
        raise BootBenchError(f"{python} -m reference.pc exited with status {status}"
                             f"{where}; its stderr ends:\n{tail}")
    stop = next((r for r in records if r["event"] == "stop"), {})
    own_peak = stop.get("peak_rss_kib")  # the child's own VmHWM, when it reports one
    figures = figures_from_records(records, own_peak if own_peak else peak_kib,
                                   "budget" if instructions else "prompt", warmup_at)
    return {"path": path.name, **figures}


def v86_boot(kernel: str, memory_mib: int) -> Dict[str, Any]:
    """v86 in Node to the prompt, as ``x86lab boot --engine v86 --json`` measures it: its
    runner's exact instruction count and the harness's clock at the prompt mark."""
    from harness.guest import boot

    with boot("v86", kernel, memory_mib) as guest:
        summary = guest.summary()
    instructions = int(summary["instructions"]["prompt"])
    seconds = float(summary["marks"]["prompt"])
    return {"instructions": instructions, "seconds": seconds, "ips": instructions / seconds}


def interpreters(pypy: Optional[str]) -> Dict[str, str]:
    """The Pythons to time: this one (the project's CPython) and PyPy when found."""
    found = {"cpython": sys.executable}
    pypy_path = shutil.which(pypy) if pypy else None
    if pypy_path:
        found["pypy"] = pypy_path
    return found


def add_ratios(run: Dict[str, Any], peer: Dict[str, Any], to_prompt: bool = True
               ) -> Dict[str, Any]:
    """``run`` with its rates over v86's (``*_ratio``) and, when both went to the prompt,
    its time over v86's (a run cut after N instructions has no time to compare)."""
    ratios = {f"{key}_ratio": run[key] / peer["ips"] if run.get(key) else None
              for key in ("ips", "steady_ips")}
    return {**run, **ratios,
            "seconds_vs_v86": run["seconds"] / peer["seconds"] if to_prompt else None}


def measure(kernel: str = "tiny", pypy: Optional[str] = "pypy3",
            instructions: Optional[int] = None, memory_mib: int = 256,
            warmup_at: int = WARMUP_INSTRUCTIONS,
            progress: Any = None) -> Dict[str, Any]:
    """Every figure of ``bench --boot`` as one JSON-ready dict. ``progress(text)``, if
    given, hears which boot is starting (they take minutes each)."""
    from harness.console import BootFailure
    from harness.guest import console_log_path, find_image

    say = progress or (lambda text: None)
    image = find_image(kernel)
    say(f"v86 in Node: {kernel} to the prompt")
    try:
        peer = v86_boot(kernel, memory_mib)
    except (EngineError, BootFailure) as exc:
        raise BootBenchError(f"v86 could not boot {kernel}: {exc}") from None
    runs: List[Dict[str, Any]] = []
    pythons = interpreters(pypy)
    for name, python in pythons.items():
        with tempfile.TemporaryDirectory(prefix="x86lab-bootbench-") as cache:
            for path in PATHS:
                say(f"reference under {name}, {path.name}")
                run = run_reference(python, image, path,
                                    None if path.cache == "none" else Path(cache),
                                    instructions, memory_mib, warmup_at,
                                    console_log_path("reference", kernel))
                runs.append(add_ratios({"python": name, **run}, peer, not instructions))
    return {
        "kernel": kernel,
        "memory_mib": memory_mib,
        "workload": f"{instructions} instructions" if instructions else "boot to the prompt",
        "warmup_at_instructions": warmup_at,
        "loadavg": list(os.getloadavg()),
        "pypy": "found" if "pypy" in pythons else f"{pypy} not found: PyPy runs left out",
        "v86": peer,
        "runs": runs,
        "times": "seconds from the reference's start (after the interpreter's own start-up); "
                 "v86: from launching Node",
    }


def _number(value: Optional[float], form: str) -> str:
    return "-" if value is None else format(value, form)


def print_figures(figures: Dict[str, Any]) -> None:
    """The rich table: one row per run, v86's row last, ratios to v86 in the same run."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    load = " ".join(f"{x:.2f}" for x in figures["loadavg"])
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True,
                  title=f"{figures['kernel']} on the reference PC vs v86 in Node, "
                        f"{figures['workload']} (same run; load {load})",
                  caption=f"warmup: seconds to the first "
                          f"{figures['warmup_at_instructions'] / 1e6:g} M instructions; "
                          "steady: the rate after it; x v86: rate over v86's; "
                          "t/v86: time over v86's")
    for column in ("python", "path", "M instr", "wall s", "M/s", "warmup",
                   "steady M/s", "RSS MiB", "x v86", "t/v86"):
        table.add_column(column, no_wrap=column in ("python", "path"),
                         justify="left" if column in ("python", "path") else "right")
    short = {path.name: path.short for path in PATHS}
    for run in figures["runs"]:
        table.add_row(run["python"], short.get(run["path"], run["path"]),
                      f"{run['instructions'] / 1e6:.2f}", f"{run['seconds']:.1f}",
                      _number(run["ips"] and run["ips"] / 1e6, ".2f"),
                      _number(run["warmup_seconds"], ".1f"),
                      _number(run["steady_ips"] and run["steady_ips"] / 1e6, ".2f"),
                      f"{run['peak_rss_mib']:.0f}", _number(run["ips_ratio"], ".3f"),
                      _number(run["seconds_vs_v86"], ".1f"))
    peer = figures["v86"]
    table.add_row("Node", "v86", f"{peer['instructions'] / 1e6:.2f}", f"{peer['seconds']:.1f}",
                  f"{peer['ips'] / 1e6:.2f}", "-", "-", "-", "1", "1")
    console = Console()
    console.print(table)
    if figures["pypy"] != "found":
        console.print(figures["pypy"])
