"""``x86lab bench --ir``: what a guest instruction and a campaign case cost in host
instructions (Valgrind's callgrind ``Ir``), this tree beside another commit.

Why: wall and CPU seconds on a shared virtual machine swing by 10-40 % between runs of
the same code (the tiny boot with a warm block cache took 28.9 to 41.8 s here on one
afternoon, issue 14), so a change worth 2 % cannot be seen in them, while the count of
host instructions a deterministic workload executes repeats within ~0.2 %. Each
figure is a *marginal* cost: the same workload run twice, at two sizes, and the
difference divided by the difference in size, so the interpreter's start-up, imports
and loading the image cancel out.

The workloads (both deterministic: the reference PC runs on a virtual clock, the
campaign's cases come from a seed, and ``PYTHONHASHSEED=0`` fixes the order of sets):

- ``boot, interpreter``: the tiny image on the reference PC with blocks off, from
  instruction ``start`` to ``start + span`` (``python -m reference.pc --budget N``);
  host instructions per guest instruction.
- ``boot, blocks``: the same image with compiled blocks (``reference.blocks``), from
  instruction ``BLOCKS_START`` to ``BLOCKS_START + BLOCKS_SPAN``, on a block cache that
  an uncounted run of the longer size filled first (one cache per bench, in a scratch
  ``X86LAB_CACHE``; each tree's blocks are kept apart by its source fingerprint). That
  run makes its blocks in the PC's own process (``--no-block-maker``: what a second
  process delivers, and when, depends on timing); the counted runs only take blocks
  from the cache (``TAKE_ONLY``), so what is counted is running the generated code
  (and the interpreting between blocks), not making it; host instructions per guest
  instruction.
- ``campaign case``: ``python -m differential.throughput --stages B`` (a campaign
  child's loop: draw, reference, Unicorn, compare; FORMS mix), one batch against two;
  host instructions per case.

With ``against``, the same runs happen in a detached worktree of that commit (made in a
temporary folder and removed after), two runs at a time on the machine's two cores, and
each figure gets the ratio this tree / that commit.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ground.cache import REPO_ROOT
from reference.blocks.cache import OFF_NOTICE

BOOT_START = 200_000
"""Guest instructions run before the boot window opens."""
BOOT_SPAN = 400_000
"""Guest instructions in the boot window (all eight runs of ``--against`` took 5 min 22 s
here, two at a time)."""
BLOCKS_START = 2_000_000
"""Guest instructions run before the blocks' window opens."""
BLOCKS_SPAN = 4_000_000
"""Guest instructions in the blocks' window: its two runs took 86 and 195 s under
callgrind here, its filling run 6 s (the whole ``--ir`` bench of one tree: 4 min 36 s)."""
TAKE_ONLY = 10 ** 9
"""The counted blocks runs' ``--block-threshold``: no instruction runs that often, so
they make no block and only take the filled cache's (at ``CACHED_THRESHOLD`` runs, as
a warm boot does). Why not the filling run's 40: on a filled cache blocks come sooner,
other instructions then reach 40 and a few more blocks get made in the counted run
(2 more than 1,645 in the window here, and again each time a run was repeated on the
grown cache)."""
RUN_TIMEOUT_S = 3600.0
"""Longest one run under callgrind may take."""
_COLLECTED = re.compile(r"^==\d+== Collected : (\d+)\s*$", re.MULTILINE)


class CostBenchError(RuntimeError):
    """A run could not be made or measured; the message says which and why."""


@dataclass(frozen=True)
class Workload:
    """A command measured at two sizes: ``command(python, size, image)`` is run in a
    tree; ``unit`` is what one step of size counts, ``scale`` how many units it is.
    ``filler``: the runs need a block cache that this command, run once at the larger
    size and not counted, fills first (``X86LAB_CACHE`` is then a scratch folder)."""

    name: str
    unit: str
    sizes: Tuple[int, int]
    scale: int
    command: Callable[[str, int, Any], List[str]]
    filler: Optional[Callable[[str, int, Any], List[str]]] = None

    @property
    def filled(self) -> bool:
        return self.filler is not None


def boot_window(python: str, size: int, image: Any) -> List[str]:
    """The reference PC on ``image`` with blocks off, stopped after ``size`` instructions
    (started as ``x86lab boot --engine reference`` starts it)."""
    return _reference_pc(python, size, image, ["--block-threshold", "0", "--no-block-cache"])


def boot_blocks_window(python: str, size: int, image: Any) -> List[str]:
    """The same with blocks, all taken from the block cache (``TAKE_ONLY``)."""
    return _reference_pc(python, size, image, ["--block-threshold", str(TAKE_ONLY),
                                               "--no-block-maker"])


def boot_blocks_fill(python: str, size: int, image: Any) -> List[str]:
    """The run that fills the block cache: blocks made in the PC's own process at the
    threshold the PC uses with its block maker."""
    from reference.cpu import MAKER_BLOCK_THRESHOLD

    return _reference_pc(python, size, image, ["--block-threshold", str(MAKER_BLOCK_THRESHOLD),
                                               "--no-block-maker"])


def _reference_pc(python: str, size: int, image: Any, blocks: List[str]) -> List[str]:
    from harness.engines.reference import ReferenceEngine

    return ReferenceEngine(python).command(image, 128, [*blocks, "--budget", str(size)])


def campaign_batches(python: str, size: int, image: Any) -> List[str]:
    """A campaign child's loop over a warm-up batch and ``size`` more."""
    return [python, "-m", "differential.throughput", "--stages", str(size)]


def workloads(start: int = BOOT_START, span: int = BOOT_SPAN) -> Tuple[Workload, ...]:
    """The boot window ``start``..``start + span``, the blocks' window and one campaign
    batch."""
    from differential.campaign import BATCH

    return (Workload("boot, interpreter", "guest instruction", (start, start + span), 1,
                     boot_window),
            Workload("boot, blocks", "guest instruction",
                     (BLOCKS_START, BLOCKS_START + BLOCKS_SPAN), 1, boot_blocks_window,
                     filler=boot_blocks_fill),
            Workload("campaign case", "case (FORMS mix)", (1, 2), BATCH, campaign_batches))


def collected(stderr: str) -> int:
    """The ``Ir`` total callgrind reports at the end of a run (its last such line)."""
    found = _COLLECTED.findall(stderr)
    if not found:
        raise CostBenchError("callgrind reported no total; its output ends:\n"
                             + "\n".join(stderr.splitlines()[-5:]))
    return int(found[-1])


def marginal(small: int, large: int, steps: int, scale: int) -> float:
    """Host instructions per unit between two runs ``steps`` steps of size apart."""
    return (large - small) / (steps * scale)


def measure_one(tree: Path, argv: Sequence[str], scratch: Path,
                cache: Optional[Path] = None) -> int:
    """One run of ``argv`` in ``tree`` under callgrind: its total ``Ir``. ``cache``:
    the ``X86LAB_CACHE`` it runs with (default: the caller's)."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise CostBenchError("valgrind not found: scripts/setup.sh installs it "
                             "(scripts/apt-packages.txt)")
    command = [valgrind, "--tool=callgrind",
               f"--callgrind-out-file={scratch}/callgrind.%p", *argv]
    return collected(_run(tree, command, cache, argv, "under callgrind").stderr)


def cached_blocks(cache: Path) -> Dict[str, int]:
    """Blocks in each block cache file under ``cache`` (an ``X86LAB_CACHE``). A counted
    run must find every block it runs there: one whose cache fingerprint moved (the
    tree was edited meanwhile) opens a new, empty file and interprets instead, and one
    that made blocks would add them; either changes these counts."""
    counts: Dict[str, int] = {}
    for path in sorted((cache / "reference-blocks").glob("*.sqlite")):
        with closing(sqlite3.connect(str(path))) as db:
            counts[path.name] = db.execute("SELECT count(*) FROM blocks").fetchone()[0]
    return counts


def fill(tree: Path, argv: Sequence[str], cache: Path) -> None:
    """Run ``argv`` in ``tree`` once, not counted, with ``X86LAB_CACHE`` at ``cache``:
    the block cache the measured runs then take their blocks from."""
    _run(tree, argv, cache, argv, "filling the block cache")


def _run(tree: Path, command: Sequence[str], cache: Optional[Path], argv: Sequence[str],
         what: str) -> subprocess.CompletedProcess:
    """``command`` (which runs ``argv``) in ``tree`` as every run here is made; an error
    that names ``argv`` and ``what`` was being done if it fails."""
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONHASHSEED="0")
    if cache is not None:
        env["X86LAB_CACHE"] = str(cache)
    try:
        done = subprocess.run(command, cwd=tree, env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True, timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise CostBenchError(f"{' '.join(argv[:3])} ... took over {RUN_TIMEOUT_S:.0f} s "
                             f"{what}") from None
    if done.returncode != 0:
        tail = "\n".join(done.stderr.splitlines()[-5:])
        raise CostBenchError(f"{' '.join(argv[:3])} ... exited with status "
                             f"{done.returncode} {what} in {tree}:\n{tail}")
    # a block cache that stopped working: the run made its own blocks and counted that
    off = [line for line in done.stderr.splitlines() if line.startswith(OFF_NOTICE)]
    if cache is not None and off:
        raise CostBenchError(f"{' '.join(argv[:3])} ... {what} in {tree}: {off[0]}")
    return done


def worktree(revision: str, folder: Path) -> Path:
    """A detached worktree of ``revision`` in ``folder`` (the caller removes it)."""
    tree = folder / "tree"
    done = subprocess.run(["git", "-C", str(REPO_ROOT), "worktree", "add", "--detach",
                           str(tree), revision], capture_output=True, text=True)
    if done.returncode != 0:
        raise CostBenchError(f"cannot check out {revision!r}: {done.stderr.strip()}")
    return tree


def measure(against: Optional[str] = None, start: int = BOOT_START, span: int = BOOT_SPAN,
            progress: Any = None) -> Dict[str, Any]:
    """Every figure of ``bench --ir`` as one JSON-ready dict; ``progress(text)`` hears
    what starts (each run takes minutes)."""
    from harness.guest import find_image

    say = progress or (lambda text: None)
    image = find_image("tiny")
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="x86lab-irbench-") as scratch:
        trees = {"this tree": REPO_ROOT}
        if against:
            trees[against] = worktree(against, Path(scratch))
        blocks = Path(scratch) / "cache"  # the filled workloads' X86LAB_CACHE
        try:
            filling = [(tree, load) for load in workloads(start, span) if load.filled
                       for tree in trees.values()]
            say(f"filling a block cache for each tree ({len(trees)})")
            with ThreadPoolExecutor(max_workers=2) as pool:
                list(pool.map(lambda job: fill(job[0], job[1].filler(  # type: ignore[misc]
                    python, max(job[1].sizes), image), blocks), filling))
            filled = cached_blocks(blocks)
            jobs = [(label, tree, load, size) for load in workloads(start, span)
                    for label, tree in trees.items() for size in load.sizes]
            say(f"{len(jobs)} runs under callgrind, two at a time")
            with ThreadPoolExecutor(max_workers=2) as pool:
                totals = list(pool.map(
                    lambda job: measure_one(job[1], job[2].command(python, job[3], image),
                                            Path(scratch), blocks if job[2].filled else None),
                    jobs))
            after = cached_blocks(blocks)
            if after != filled:
                raise CostBenchError(
                    "the counted runs did not run on the filled block cache (was the "
                    "reference changed while the bench ran?): blocks per cache file "
                    f"{filled} after filling, {after} after counting")
        finally:
            if against:
                subprocess.run(["git", "-C", str(REPO_ROOT), "worktree", "remove",
                                "--force", str(trees[against])], capture_output=True)
    ir = {(label, load.name, size): total
          for (label, _, load, size), total in zip(jobs, totals)}
    figures = []
    for load in workloads(start, span):
        small, large = load.sizes
        row: Dict[str, Any] = {"workload": load.name, "unit": load.unit,
                               "sizes": list(load.sizes)}
        for label in trees:
            row[label] = marginal(ir[label, load.name, small], ir[label, load.name, large],
                                  large - small, load.scale)
        if against:
            row["ratio"] = row["this tree"] / row[against]
        figures.append(row)
    return {"against": against, "python": sys.version.split()[0],
            "boot_window": [start, start + span],
            "blocks_window": [BLOCKS_START, BLOCKS_START + BLOCKS_SPAN], "figures": figures,
            "measure": "callgrind Ir (host instructions), marginal between two sizes"}


def print_figures(figures: Dict[str, Any]) -> None:
    """The figures as a table for a person."""
    against = figures["against"]
    head = f"{'workload':<20} {'host instructions per':<24} {'this tree':>12}"
    if against:
        head += f" {against[:12]:>12} {'ratio':>7}"
    print(head)
    for row in figures["figures"]:
        line = f"{row['workload']:<20} {row['unit']:<24} {row['this tree']:>12,.0f}"
        if against:
            line += f" {row[against]:>12,.0f} {row['ratio']:>7.4f}"
        print(line)
