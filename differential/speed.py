"""``x86lab bench``: the reference's speed beside Unicorn's, measured in the same run.

Two kinds of figure, each next to the peer's:
- instructions per second on the programs of ``reference.benchmark`` (a checksum loop and
  an instruction mix), the reference timed in a CPython and a PyPy subprocess (the same
  module), Unicorn timed here on the same bytes;
- single-instruction cases per second (one core, sequential): the reference runner, the
  Unicorn runner, and a differential check (both runners plus the comparison), over the
  cases of the vector corpus; and a campaign worker's rate (draw a case of a random
  implemented form, run both, judge it), which also pays for generating the case.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from ground.case import Case
from reference.benchmark import CODE, DATA, PAGES, PROGRAMS, Program, data_page
from reference.pypy_gc import environment
from vectors.replay import differences

REPO_ROOT = Path(__file__).resolve().parent.parent


class BenchError(RuntimeError):
    """The benchmark could not run (an interpreter failed, no cases); says which part."""


PATHS = {"": "off", "_blocks": "on"}
"""The reference's two execution paths, by the suffix of their figures' keys: the
interpreter alone, and with the block compiler (reference.blocks) compiling at once."""


def reference_rates(python: str, seconds: float, blocks: str = "default") -> Dict[str, Any]:
    """Run ``reference.benchmark`` under ``python`` (a path) and return its JSON."""
    env = environment(dict(os.environ, PYTHONPATH=str(REPO_ROOT)))  # PyPy's nursery
    budget = 60 + seconds * len(PROGRAMS) * 3
    try:
        done = subprocess.run([python, "-m", "reference.benchmark", "--seconds", str(seconds),
                               "--blocks", blocks],
                              capture_output=True, text=True, env=env, timeout=budget,
                              cwd=REPO_ROOT)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{python} -m reference.benchmark took over {budget:.0f} s") from None
    if done.returncode:
        tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise BenchError(f"{python} -m reference.benchmark failed: {tail}")
    return json.loads(done.stdout)


def unicorn_rate(program: Program, seconds: float) -> Dict[str, float]:
    """Unicorn's instructions per second on the same program, run to its HLT. The
    iteration count is scaled from a short calibration run to last about ``seconds``."""
    from unicorn import UC_ARCH_X86, UC_MODE_32, Uc
    from unicorn.x86_const import UC_X86_REG_ESP

    def run(iterations: int) -> float:
        uc = Uc(UC_ARCH_X86, UC_MODE_32)
        for base in PAGES:
            uc.mem_map(base, 0x1000)
        uc.mem_write(CODE, program.code(iterations))
        uc.mem_write(DATA, data_page())
        uc.reg_write(UC_X86_REG_ESP, 0)
        start = time.perf_counter()
        uc.emu_start(CODE, program.hlt_address(iterations))
        return time.perf_counter() - start

    iterations = 10_000
    elapsed = run(iterations)
    while elapsed < seconds / 2 and iterations < 1 << 30:
        iterations = min(1 << 30, int(iterations * max(2.0, seconds / max(elapsed, 1e-6))))
        elapsed = run(iterations)
    count = program.instructions(iterations)
    return {"instructions": count, "seconds": elapsed, "ips": count / elapsed}


def case_rate(cases: Sequence[Case], work: Callable[[Case], object],
              seconds: float) -> Dict[str, float]:
    """Cases per second for ``work`` cycling over ``cases`` for about ``seconds``."""
    done, start = 0, time.perf_counter()
    while True:
        for case in cases:
            work(case)
        done += len(cases)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return {"cases": done, "seconds": elapsed, "cps": done / elapsed}


def corpus_cases(paths: Sequence[Path], limit: int) -> List[Case]:
    """Up to ``limit`` cases, taken round-robin over the files so every form is in."""
    from vectors.files import find_vector_files, read_vectors

    per_file = [[e.case for e in read_vectors(p)] for p in find_vector_files(paths)]
    picked: List[Case] = []
    depth = 0
    while len(picked) < limit and any(depth < len(cases) for cases in per_file):
        picked.extend(cases[depth] for cases in per_file if depth < len(cases))
        depth += 1
    return picked[:limit]


def campaign_rate(seconds: float, seed: int = 0) -> Dict[str, float]:
    """Cases per second as a campaign worker makes them: draw a case of a random
    implemented form, run it on both engines, judge it (``differential.check``)."""
    from differential.check import Checker
    from differential.draw import RandomDraw
    from differential.generate_vectors import selected_forms
    from differential.generator import form_case
    from vectors.engines import make_runner

    pairs = selected_forms("*", ("real16", "prot32"))
    checker = Checker(make_runner("unicorn"), make_runner("reference"))
    draw = RandomDraw(seed)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        form, mode = draw.choice(pairs)
        checker.check(form_case(form, mode, draw))
        done += 1
    elapsed = time.perf_counter() - start
    return {"cases": done, "seconds": elapsed, "cps": done / elapsed}


def case_rates(cases: Sequence[Case], seconds: float) -> Dict[str, Dict[str, float]]:
    from vectors.engines import make_runner

    reference, unicorn = make_runner("reference"), make_runner("unicorn")

    def differential(case: Case) -> List[str]:
        return differences(case, unicorn.run(case), reference.run(case))

    return {"reference": case_rate(cases, reference.run, seconds),
            "unicorn": case_rate(cases, unicorn.run, seconds),
            "differential": case_rate(cases, differential, seconds),
            "campaign": campaign_rate(seconds)}


def measure(seconds: float, corpus: Sequence[Path], pypy: Optional[str] = "pypy3",
            max_cases: int = 2000) -> Dict[str, Any]:
    """Every figure of the bench, as one JSON-ready dict (ratios are reference/Unicorn)."""
    interpreters = {"cpython": sys.executable}
    pypy_path = shutil.which(pypy) if pypy else None
    if pypy_path:
        interpreters["pypy"] = pypy_path
    runs = {name + suffix: reference_rates(path, seconds, blocks)
            for name, path in interpreters.items() for suffix, blocks in PATHS.items()}
    programs: Dict[str, Any] = {}
    for name, program in PROGRAMS.items():
        peer = unicorn_rate(program, seconds)
        row: Dict[str, Any] = {"what": program.what, "unicorn_ips": peer["ips"]}
        for interp, run in runs.items():
            ips = run["programs"][name]["ips"]
            row[f"{interp}_ips"] = ips
            row[f"{interp}_ratio"] = ips / peer["ips"]
        programs[name] = row
    cases = corpus_cases(corpus, max_cases)
    if not cases:
        raise BenchError(f"no vectors under {', '.join(map(str, corpus))} to time cases on")
    rates = case_rates(cases, seconds)
    peer_cps = rates["unicorn"]["cps"]
    return {
        "seconds_per_figure": seconds,
        "interpreters": {k: r["interpreter"] for k, r in runs.items()},
        "paths": "KEY_ips: the interpreter alone; KEY_blocks_ips: with compiled blocks",
        "pypy": "found" if pypy_path else f"{pypy} not found: PyPy figures left out",
        "programs": programs,
        "cases": {"count": len(cases),
                  **{f"{k}_cps": v["cps"] for k, v in rates.items()},
                  "reference_ratio": rates["reference"]["cps"] / peer_cps,
                  "differential_ratio": rates["differential"]["cps"] / peer_cps,
                  "campaign_ratio": rates["campaign"]["cps"] / peer_cps},
    }


def print_figures(figures: Dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    interps = list(figures["interpreters"])
    table = Table(title="reference vs Unicorn, instructions per second (same run)")
    table.add_column("program")
    for interp in interps:
        table.add_column(f"reference {interp.replace('_blocks', ' + blocks')}",
                         justify="right")
    table.add_column("Unicorn", justify="right")
    for interp in interps:
        table.add_column(f"{interp}/Unicorn", justify="right")
    for name, row in figures["programs"].items():
        table.add_row(name, *(f"{row[f'{i}_ips'] / 1e6:.3f} M" for i in interps),
                      f"{row['unicorn_ips'] / 1e6:.1f} M",
                      *(f"{row[f'{i}_ratio']:.5f}" for i in interps))
    cases = figures["cases"]
    per_case = Table(title=f"single-instruction cases per second, one core "
                           f"({cases['count']} corpus cases)")
    for column in ("reference", "Unicorn", "differential (both + compare)",
                   "campaign (generate + both + judge)", "reference/Unicorn",
                   "differential/Unicorn", "campaign/Unicorn"):
        per_case.add_column(column, justify="right")
    per_case.add_row(*(f"{cases[f'{k}_cps']:.0f}" for k in ("reference", "unicorn",
                                                            "differential", "campaign")),
                     *(f"{cases[f'{k}_ratio']:.3f}" for k in ("reference", "differential",
                                                             "campaign")))
    console = Console()
    console.print(table)
    console.print(per_case)
    if figures["pypy"] != "found":
        console.print(figures["pypy"])
