"""How fast the differential machinery runs on one core: ``python -m differential.throughput``.

Prints cases/s for generation alone, Unicorn alone (without and with memory hooks),
the reference alone, and the whole judged pipeline (generate + Unicorn + reference +
compare), on the same pre-generated FORMS cases (seeded, so runs are comparable).
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

    forms = [(f, m) for f, m in forms_to_test() if not f.untestable]
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


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    count = int(args[0]) if args else 3000
    for label, rate in measure(count).items():
        print(f"{label:<18} {rate:8.0f} cases/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
