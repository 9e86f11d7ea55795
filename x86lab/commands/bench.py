"""``x86lab bench``: the one benchmark command, every figure beside the peer's from the same
run. By default the reference's instructions/s (CPython, PyPy) and single-instruction
cases/s beside Unicorn's (``differential/speed.py``); with ``--pipeline``, the campaign
pipeline's cases/s per core beside Unicorn alone and the reference alone
(``differential/bench.py``); with ``--boot``, the tiny image booted to the shell prompt on
the reference PC (CPython, PyPy; the interpreter alone, then compiled blocks with a cold
and a warm block cache) beside v86 in Node booting it in the same run
(``harness/boot_speed.py``); with ``--scale-out``, one Redis campaign's cases/s with 1 and
2 workers, in alternating rounds, and their ratio (``differential/scale_out.py``); with
``--ir``, host instructions (Valgrind's callgrind ``Ir``) per guest instruction of a boot
window (interpreted, and with blocks) and per campaign case, which repeat where seconds
swing, optionally beside another commit's (``harness/cost_bench.py``).
``x86lab fuzz --bench`` is an alias of ``bench --pipeline``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any, Callable, Optional, Type

from ground.cache import REPO_ROOT
from x86lab.cli import EXIT_FAILURE, EXIT_OK, UsageError

EXAMPLE = """example:
  x86lab bench --seconds 5 --json out/bench.json
  x86lab bench --pipeline --batches 5 --json -      # what 'x86lab fuzz --bench --json' prints
  x86lab bench --boot --json out/bootbench.json     # 6 reference boots + 1 v86: minutes
  x86lab bench --boot --instructions 20000000       # each run cut after 20 M instructions
  x86lab bench --scale-out --minutes 2 --json out/scale.json   # 4 rounds: 1, 2, 1, 2 workers
  x86lab bench --ir --against HEAD~3 --json out/ir.json   # 12 callgrind runs: ~10 min here

--boot reports per run: instructions and wall seconds to the prompt (from the reference's
start), M instructions/s, the warm-up (seconds to the first 10 M instructions) and the
steady rate after it, the peak RSS, and the rate and time as ratios to v86's.

--scale-out starts its own redis-server (free 127.0.0.1 port, AOF, appendfsync always),
joins one campaign with 1 worker, then 2, alternating for --rounds rounds of --minutes
each, and reads each round's cases/s from the batches its workers commit after a warm-up
(a quarter of the round, at most 30 s); prints each round with its load and the ratio of
the mean 2-worker rate to the mean 1-worker rate (the issue's goal: at least 1.9).

--ir measures each workload at two sizes and divides the difference (start-up cancels
out): the tiny boot on the reference PC with blocks off, instructions 200,000 to 600,000;
the same boot with blocks, instructions 2,000,000 to 6,000,000, on a block cache an
uncounted run filled first (so running the generated code is counted, not making it);
and a campaign child's loop over one batch of 200 FORMS cases; PYTHONHASHSEED=0. With
--against REV the same runs happen in a temporary worktree of REV, two at a time, and each
figure gets the ratio this tree / REV (below 1: this tree does less work)."""
STDOUT = Path("-")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench", help="speed beside Unicorn's: the reference (CPython, PyPy), or the "
                      "campaign pipeline (--pipeline)",
        description=__doc__, epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="time per figure (default 3)")
    parser.add_argument("--json", type=Path, metavar="PATH",
                        help="also write the figures ('-': print them as JSON instead)")
    parser.add_argument("--corpus", type=Path, action="append", metavar="PATH",
                        help="vectors whose cases are timed (default vectors/corpus)")
    parser.add_argument("--pypy", default="pypy3", help="PyPy command ('' to skip)")
    add_pipeline_options(parser, seed=True)
    parser.add_argument("--pipeline", action="store_true",
                        help="measure the campaign pipeline's cases/s per core instead")
    parser.add_argument("--boot", action="store_true",
                        help="boot the image to the prompt on the reference PC beside v86 "
                             "instead (minutes)")
    parser.add_argument("--kernel", choices=("tiny",), default="tiny",
                        help="boot bench: the image (default tiny)")
    parser.add_argument("--scale-out", action="store_true",
                        help="a Redis campaign's cases/s with 1 and 2 workers, alternating, "
                             "and their ratio (its own redis-server; --rounds x --minutes)")
    parser.add_argument("--minutes", type=float, default=2.0,
                        help="scale-out: minutes per round (default 2)")
    parser.add_argument("--rounds", type=int, default=4,
                        help="scale-out: rounds, 1 and 2 workers in turn (default 4)")
    parser.add_argument("--ir", action="store_true",
                        help="host instructions (callgrind Ir) per guest instruction of a "
                             "boot window (interpreter, blocks) and per campaign case, "
                             "deterministic where seconds are not (needs valgrind; ~5 "
                             "minutes here, ~10 with --against)")
    parser.add_argument("--against", metavar="REV",
                        help="ir bench: the same runs on git revision REV too, and the "
                             "ratio this tree / REV")
    parser.add_argument("--instructions", type=int, metavar="N",
                        help="boot bench: stop each reference run after N instructions "
                             "instead of at the prompt (a quick run; rates are over N)")
    parser.set_defaults(handler=bench_command)


def add_pipeline_options(parser: argparse.ArgumentParser, seed: bool) -> None:
    """The campaign pipeline's options, shared with the ``fuzz --bench`` alias (which has
    ``--seed`` already: the campaign's own)."""
    parser.add_argument("--batches", type=int, default=5,
                        help="pipeline bench: batches of 200 cases timed (default 5)")
    parser.add_argument("--mix", choices=("forms", "campaign"), default="forms",
                        help="pipeline bench: FORMS rows only (default) or the campaign's "
                             "mix with random bytes")
    if seed:
        parser.add_argument("--seed", type=int, default=1,
                            help="pipeline bench: campaign seed (default 1)")


def bench_command(args: argparse.Namespace) -> int:
    if sum((args.pipeline, args.boot, args.scale_out, args.ir)) > 1:
        raise UsageError("--pipeline, --boot, --scale-out and --ir are different benches: "
                         "choose one")
    if args.instructions is not None and not args.boot:
        raise UsageError("--instructions belongs to the boot bench: add --boot")
    if args.against is not None and not args.ir:
        raise UsageError("--against belongs to the ir bench: add --ir")
    if args.ir:
        return ir(args.against, args.json)
    if args.pipeline:
        return pipeline(args.batches, args.seed, args.mix, args.json)
    if args.scale_out:
        return scale_out(args.minutes, args.rounds, args.seed, args.json)
    if args.boot:
        return boot(args.kernel, args.pypy or None, args.instructions, args.json)
    from differential.speed import BenchError, measure, print_figures
    from vectors.engines import EngineUnavailable

    if args.seconds <= 0:
        raise UsageError("--seconds must be positive")
    corpus = args.corpus or [REPO_ROOT / "vectors" / "corpus"]
    try:
        figures = measure(args.seconds, corpus, pypy=args.pypy or None)
    except (BenchError, EngineUnavailable) as exc:
        raise UsageError(str(exc)) from None
    if args.json != STDOUT:
        print_figures(figures)
    _write_json(args.json, figures)
    return EXIT_OK


def pipeline(batches: int, seed: int, mix: str, json_path: Optional[Path]) -> int:
    """``bench --pipeline``, and the ``fuzz --bench`` alias."""
    from differential.bench import describe, measure

    if batches < 1:
        raise UsageError("--batches must be at least 1")
    result = measure(batches, seed, mix)
    if json_path != STDOUT:
        print("\n".join(describe(result)))
    _write_json(json_path, result)
    return EXIT_OK


def scale_out(minutes: float, rounds: int, seed: int, json_path: Optional[Path]) -> int:
    """``bench --scale-out``: 1 and 2 workers on one Redis campaign
    (``differential.scale_out``)."""
    from differential.scale_out import ScaleOutError, describe, measure

    if rounds < 2 or minutes <= 0:
        raise UsageError("--scale-out needs --rounds of at least 2 and --minutes above 0")
    try:
        from differential.cluster import ClusterPlan

        result = measure(minutes, rounds, plan=ClusterPlan(seed=seed),
                         say=lambda line: print(line, file=sys.stderr, flush=True))
    except ImportError as exc:
        raise UsageError(f"--scale-out needs the campaign extra (pip install -e "
                         f"'.[campaign]'): {exc}") from None
    except ScaleOutError as exc:
        print(f"x86lab bench --scale-out: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except RuntimeError as exc:  # no redis-server, or it did not start
        raise UsageError(str(exc)) from None
    if json_path != STDOUT:
        print("\n".join(describe(result)))
    _write_json(json_path, result)
    return EXIT_OK


def boot(kernel: str, pypy: Optional[str], instructions: Optional[int],
         json_path: Optional[Path]) -> int:
    """``bench --boot``: reference boots beside v86's (``harness.boot_speed``)."""
    from harness.boot_speed import BootBenchError, measure, print_figures

    if instructions is not None and instructions < 1:
        raise UsageError(f"--instructions {instructions}: must be at least 1")
    return _image_bench("boot", lambda say: measure(kernel, pypy, instructions, progress=say),
                        BootBenchError, print_figures, json_path)


def ir(against: Optional[str], json_path: Optional[Path]) -> int:
    """``bench --ir``: host instructions per unit of work (``harness.cost_bench``)."""
    from harness.cost_bench import CostBenchError, measure, print_figures

    if shutil.which("valgrind") is None:
        raise UsageError("--ir needs valgrind (scripts/setup.sh installs it)")
    return _image_bench("ir", lambda say: measure(against, progress=say), CostBenchError,
                        print_figures, json_path)


def _image_bench(name: str, run: Callable[[Callable[[str], None]], Any],
                 failure: Type[Exception], show: Callable[[Any], None],
                 json_path: Optional[Path]) -> int:
    """A bench that boots the built image: ``run(say)`` measures, telling ``say`` what
    starts (on stderr); an image that cannot be built is a usage error, the bench's own
    ``failure`` exit status 1; then the figures for a person and as JSON."""
    from images.errors import ImageError

    def say(text: str) -> None:
        print(f"x86lab bench --{name}: {text}...", file=sys.stderr, flush=True)

    try:
        figures = run(say)
    except ImageError as exc:
        raise UsageError(str(exc)) from None
    except failure as exc:
        print(f"x86lab: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    if json_path != STDOUT:
        show(figures)
    _write_json(json_path, figures)
    return EXIT_OK


def _write_json(path: Optional[Path], figures: Any) -> None:
    """Nowhere (None), on stdout ("-"), or into a file."""
    if path is None:
        return
    text = json.dumps(figures, indent=1) + "\n"
    if path == STDOUT:
        print(text, end="")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
