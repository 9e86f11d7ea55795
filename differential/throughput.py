"""How fast the differential machinery runs on one core: ``python -m differential.throughput``.

Prints cases/s for generation alone, Unicorn alone (without and with memory hooks),
the reference alone, and the whole judged pipeline (generate + Unicorn + reference +
compare), on the same pre-generated FORMS cases (seeded, so runs are comparable).

``python -m differential.throughput --stages [BATCHES] [--mix campaign]`` prints where a
campaign case's time goes, stage by stage, in CPU µs per case (this thread's CPU clock,
so waiting for a core on a shared machine is not counted): the loop a campaign's sandbox
child runs (``judging.JudgingRunner``: a half batch drawn and run on the reference, then
Unicorn and the comparison case by case) with a clock read between its stages, on the
cases ``x86lab fuzz --bench`` measures (same seed and batches). Unicorn runs in this
process, as for the bench's Unicorn-alone figure: a seed that draws LOCK BT* with a
register destination aborts it (known_divergences.toml, unicorn-lock-bt-register-abort).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

from ground.case import Case


def _rate(count: int, run: Callable[[], None]) -> float:
    start = time.perf_counter()
    run()
    return count / (time.perf_counter() - start)


def cases(count: int, seed: int = 1) -> List[Case]:
    from differential.draw import RandomDraw
    from differential.generator import form_case
    from differential.suite import forms_to_test

    forms = [(f, m) for f, m in forms_to_test() if not f.not_version1]
    draw = RandomDraw(seed)
    return [form_case(*draw.choice(forms), RandomDraw(seed * 1000003 + i)) for i in range(count)]


def measure(count: int = 3000, seed: int = 1) -> Dict[str, float]:
    from differential.check import Checker
    from differential.runners.reference_runner import ReferenceRunner
    from differential.runners.unicorn_runner import UnicornRunner

    batch: List[Case] = []
    out: Dict[str, float] = {}
    out["generate"] = _rate(count, lambda: batch.extend(cases(count, seed)))
    for label, runner in (("unicorn", UnicornRunner()),
                          ("unicorn+memhooks", UnicornRunner(memory_hooks=True)),
                          ("reference", ReferenceRunner())):
        runner.run(batch[0])  # warm up (engine creation, imports)
        out[label] = _rate(count, lambda r=runner: [r.run(c) for c in batch])
    checker = Checker(UnicornRunner(), ReferenceRunner())
    out["differential"] = _rate(count, lambda: [checker.check(c) for c in cases(count, seed)])
    return out


def stages(batches: int = 10, seed: int = 1, mix: str = "forms") -> Dict[str, float]:
    """CPU µs per case of each stage of judging ``batches`` campaign batches as a
    campaign's children do (generate, Unicorn with and without memory hooks each taking
    its half of a batch, reference, compare and known-divergence lookup, summary), and
    their total. As in a child (``judging.JudgingRunner``), a half batch is drawn and run
    on the reference first, then each case runs on Unicorn and is compared."""
    from differential.bench import MIXES
    from differential.campaign import BATCH, Plan, draw_case, testable_forms
    from differential.check import Checker, untestable
    from differential.judging import summarise
    from differential.runners.reference_runner import ReferenceRunner
    from differential.runners.unicorn_runner import UnicornRunner

    share = MIXES[mix]
    plan = Plan(seed=seed, jobs=1) if share is None else Plan(seed=seed, jobs=1,
                                                             bytes_share=share)
    forms = testable_forms(plan.forms)
    reference = ReferenceRunner()
    checkers = [Checker(UnicornRunner(memory_hooks=hooks), reference)
                for hooks in (False, True)]
    names = ("generate", "unicorn", "reference", "compare+known", "summary")
    spent = dict.fromkeys(names, 0)
    clock = time.thread_time_ns

    def judge(batch: int) -> None:
        for which, checker in enumerate(checkers):
            indices = range(which, BATCH, len(checkers))
            begin = clock()
            drawn = [draw_case(plan, forms, batch, index) for index in indices]
            middle = clock()
            ours = [None if untestable(case.form) else reference.run(case)
                    for case, _ in drawn]
            spent["generate"] += middle - begin
            spent["reference"] += clock() - middle
            for index, (case, case_seed), mine in zip(indices, drawn, ours):
                marks = [clock()]
                theirs = None if mine is None else checker.peer.run(case)
                marks.append(clock())
                verdict = checker.check(case, ours=mine, theirs=theirs)
                marks.append(clock())
                summarise(checker, verdict, index, case_seed)
                marks.append(clock())
                for name, start, end in zip(("unicorn", "compare+known", "summary"),
                                            marks, marks[1:]):
                    spent[name] += end - start

    judge(0)  # engines, caches and imports warmed; then not counted
    spent = dict.fromkeys(names, 0)
    for batch in range(batches):
        judge(batch)
    count = batches * BATCH
    out = {name: total / count / 1000 for name, total in spent.items()}
    out["total"] = sum(out.values())
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m differential.throughput", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("count", nargs="?", type=int, default=3000,
                        help="cases per engine for the rates (default 3000)")
    parser.add_argument("--stages", nargs="?", type=int, const=10, metavar="BATCHES",
                        help="CPU µs a case per stage over BATCHES campaign batches "
                             "(default 10) instead of the rates")
    parser.add_argument("--mix", default="forms", help="with --stages: the case mix "
                        "(forms, or campaign: a share of random bytes, as a campaign)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    from differential.bench import MIXES
    if args.mix not in MIXES:
        parser.error(f"--mix: {args.mix!r} is not one of {', '.join(sorted(MIXES))}")
    if args.count < 1 or (args.stages is not None and args.stages < 1):
        parser.error("counts must be at least 1")
    if args.stages is not None:
        for label, micros in stages(args.stages, mix=args.mix).items():
            print(f"{label:<14} {micros:7.1f} µs a case (CPU)")
        return 0
    for label, rate in measure(args.count).items():
        print(f"{label:<18} {rate:8.0f} cases/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
