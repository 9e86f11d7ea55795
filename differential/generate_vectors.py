"""``x86lab vectors generate``: vectors from generated cases on which both engines agree.

For each implemented, testable form of ``FORMS`` whose name matches the pattern, and each
of its modes: draw cases with the differential generator (``RandomDraw`` seeded from the
seed, the form and the mode, so one form's vectors do not change when another is added),
run them on Unicorn and the reference, keep those that agree, shrink their memory to the
bytes read (``vectors.sparse``), check the shrunk case agrees too, write the file.
The expected outcome written is Unicorn's (the peer's), compared modulo undefined flags.
"""

from __future__ import annotations

import fnmatch
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

from ground.case import Case, Outcome
from vectors.engines import make_runner
from vectors.files import write_vectors
from vectors.format import make_header
from vectors.sparse import sparse_case

ATTEMPTS_PER_VECTOR = 4  # a form whose cases mostly disagree yields fewer vectors


class GenerateError(RuntimeError):
    """Nothing to generate (a pattern matching no form, an unknown mode)."""


@dataclass
class Summary:
    files: int = 0
    vectors: int = 0
    disagreed: int = 0
    empty: List[str] = field(default_factory=list)  # "FORM/mode" with no agreeing case


def form_seed(seed: int, form: str, mode: str) -> int:
    """A per-(form, mode) seed that is stable across Python runs (``hash`` is salted)."""
    return zlib.crc32(f"{seed}:{form}:{mode}".encode())


def selected_forms(pattern: str, modes: Sequence[str]) -> List[Tuple[object, str]]:
    """(form, mode) pairs: implemented, testable, matching ``pattern`` (a glob)."""
    from differential.coverage.evidence import implemented_forms
    from reference import FORMS

    known_modes = ("real16", "prot32")
    bad = [m for m in modes if m not in known_modes]
    if bad:
        raise GenerateError(f"unknown mode(s) {', '.join(bad)}; choose from real16, prot32")
    implemented = {name for name, done in implemented_forms().items() if done}
    pairs = [(form, mode) for form in FORMS for mode in modes
             if fnmatch.fnmatchcase(form.name, pattern) and not form.not_version1
             and mode in form.modes and form.name in implemented]
    if not pairs:
        raise GenerateError(f"no implemented, testable form matches {pattern!r}")
    return pairs


class Agreement:
    """Both runners and the comparator: ``agreed(case)`` -> Unicorn's outcome or None."""

    def __init__(self) -> None:
        from ground.compare import compare

        self.compare = compare
        self.unicorn = make_runner("unicorn")
        self.reference = make_runner("reference")

    def agreed(self, case: Case) -> Optional[Outcome]:
        peer = self.unicorn.run(case)
        ours = self.reference.run(case)
        if "unimplemented" in ours.notes or self.compare(case, peer, ours):
            return None
        return peer


def vectors_for(form: object, mode: str, count: int, seed: int,
                agreement: Agreement, summary: Summary) -> Iterator[Tuple[Case, Outcome]]:
    from differential.draw import RandomDraw
    from differential.generator import form_case
    from differential.operands import disassembly

    name = form.name  # type: ignore[attr-defined]
    draw = RandomDraw(form_seed(seed, name, mode))
    made = 0
    for attempt in range(count * ATTEMPTS_PER_VECTOR):
        if made == count:
            return
        case = form_case(form, mode, draw, name=f"{name} {mode} #{attempt}")
        if agreement.agreed(case) is None:
            summary.disagreed += 1
            continue
        small = sparse_case(case)
        outcome = agreement.agreed(small)
        if outcome is None:
            summary.disagreed += 1
            continue
        made += 1
        label = f"{small.name}: {disassembly(mode, small.code)}"
        yield _renamed(small, label), outcome


def _renamed(case: Case, name: str) -> Case:
    from dataclasses import replace

    return replace(case, name=name)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("x86lab")
    except PackageNotFoundError:
        return "unknown"


def generate(pattern: str, modes: Sequence[str], per_form: int, seed: int, out: Path,
             progress: Optional[Callable[[], None]] = None) -> Summary:
    """Write ``out/MODE/FORM.jsonl.gz`` for every selected form; return the counts.
    ``progress`` is called after each (form, mode)."""
    import unicorn

    agreement = Agreement()
    summary = Summary()
    for form, mode in selected_forms(pattern, modes):
        name = form.name  # type: ignore[attr-defined]
        pairs = list(vectors_for(form, mode, per_form, seed, agreement, summary))
        if progress is not None:
            progress()
        if not pairs:
            summary.empty.append(f"{name}/{mode}")
            continue
        header = make_header(
            form=name, mode=mode, encoding=form.encoding,  # type: ignore[attr-defined]
            count=len(pairs), seed=seed, unicorn=unicorn.__version__,
            reference=f"x86lab {_version()}",
            generator=f"x86lab vectors generate --forms '{pattern}' --per-form {per_form} "
                      f"--seed {seed}")
        summary.vectors += write_vectors(out / mode / f"{name}.jsonl.gz", header, pairs)
        summary.files += 1
    return summary
