"""How fast the differential machinery runs on one core: ``python -m differential.throughput``.

Prints cases/s for generation alone, Unicorn alone (without and with memory hooks),
the reference alone, and the whole judged pipeline (generate + Unicorn + reference +
compare), on the same pre-generated FORMS cases (seeded, so runs are comparable).

``python -m differential.throughput --stages [BATCHES] [--mix campaign]`` prints where a
campaign case's time goes, stage by stage, in CPU µs per case (this thread's CPU clock,
so waiting for a core on a shared machine is not counted): the loop a campaign's sandbox
child runs (``judging.JudgingRunner.judge``) with a clock read between its stages, on the
cases ``x86lab fuzz --bench`` measures (same seed and batches). Unicorn runs in this
process, as for the bench's Unicorn-alone figure: a seed that draws LOCK BT* with a
register destination aborts it (known_divergences.toml, unicorn-lock-bt-register-abort).
"""

from __future__ import annotations

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
    campaign's child does (generate, Unicorn with and without memory hooks taking turns,
    reference, compare and known-divergence lookup, summary), and their total."""
    from differential.bench import MIXES
    from differential.campaign import BATCH, Plan, draw_case, testable_forms
    from differential.check import Checker
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
    warm = [(0, i) for i in range(20)]  # engines, caches and imports; then not counted
    keys = warm + [(b, i) for b in range(batches) for i in range(BATCH)]
    for number, (batch, index) in enumerate(keys):
        if number == len(warm):
            spent = dict.fromkeys(names, 0)
        checker = checkers[(number - len(warm)) % 2]
        marks = [clock()]
        case, case_seed = draw_case(plan, forms, batch, index)
        marks.append(clock())
        theirs = checker.peer.run(case)
        marks.append(clock())
        ours = reference.run(case)
        marks.append(clock())
        verdict = checker.check(case, ours=ours, theirs=theirs)
        marks.append(clock())
        summarise(checker, verdict, index, case_seed)
        marks.append(clock())
        for name, begin, end in zip(names, marks, marks[1:]):
            spent[name] += end - begin
    count = batches * BATCH
    out = {name: total / count / 1000 for name, total in spent.items()}
    out["total"] = sum(out.values())
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "--stages":
        mix = "forms"
        if "--mix" in args:
            at = args.index("--mix")
            mix = args[at + 1]
            del args[at:at + 2]
        batches = int(args[1]) if len(args) > 1 else 10
        for label, micros in stages(batches, mix=mix).items():
            print(f"{label:<14} {micros:7.1f} µs a case (CPU)")
        return 0
    count = int(args[0]) if args else 3000
    for label, rate in measure(count).items():
        print(f"{label:<18} {rate:8.0f} cases/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
