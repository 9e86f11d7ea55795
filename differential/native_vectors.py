"""Vectors the real CPU decided: where Unicorn and the reference disagree.

The committed corpus holds only cases on which Unicorn and the reference agree, so the
forms where Unicorn has a known bug (LOCK #UD rules, RET imm16, split stores, aborts on
LOCK BT* with a register...) have no vectors there, and no engine is ever measured on
them. Here the machine's CPU (``differential/runners/native_runner.py``: the stepper the
conformance suite uses, an i386 process single-stepping the case) breaks the tie: a case
is kept when the CPU's outcome equals the reference's or Unicorn's on everything the SDM
defines, and the CPU's outcome is the expected one. The file header says so
(``oracle: "native"``) and names the CPU (``cpu``: vendor, family, model, stepping),
since vendors may differ where the SDM leaves room. Cases the CPU cannot run in user
mode (real mode, FS/GS, system calls, pages it cannot place, a stepper that died) are
skipped, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from differential.generate_vectors import form_seed, selected_forms
from ground.case import PAGE_SIZE, Case, Outcome
from ground.compare import compare
from vectors.files import write_vectors
from vectors.format import make_header
from vectors.sparse import sparse_case

ORACLE = "native"
MODE = "prot32"  # what a Linux user process can express


# A kept case's verdict says whom the CPU sided with: "reference" (Unicorn wrong),
# "unicorn" (the reference wrong), "unicorn crashed" (the reference right, Unicorn
# aborted). The others say why a case was not kept.
KEPT = ("reference", "unicorn", "unicorn crashed")


@dataclass
class NativeSummary:
    files: int = 0
    vectors: int = 0
    verdicts: Dict[str, int] = field(default_factory=dict)  # per drawn case
    by_form: Dict[str, int] = field(default_factory=dict)

    def count(self, verdict: str) -> None:
        self.verdicts[verdict] = self.verdicts.get(verdict, 0) + 1


class NativeDecision:
    """``decide(case)`` -> (the CPU's outcome or None, verdict)."""

    def __init__(self) -> None:
        from differential.runners.native_runner import NativeRunner
        from vectors.engines import make_runner

        self.native = NativeRunner()
        self.unicorn = make_runner("unicorn")
        self.reference = make_runner("reference")

    def _unicorn(self, case: Case) -> Optional[Outcome]:
        from ground.case import EngineCrashed

        try:
            return self.unicorn.run(case)
        except EngineCrashed:
            return None

    def decide(self, case: Case) -> Tuple[Optional[Outcome], str]:
        from differential.runners.native_runner import NativeUnavailable

        ours = self.reference.run(case)
        if "unimplemented" in ours.notes:
            return None, "unimplemented in the reference"
        peer = self._unicorn(case)
        if peer is not None and not compare(case, peer, ours):
            return None, "agreed (the ordinary corpus's business)"
        try:
            cpu = self.native.run(case)
        except NativeUnavailable:
            return None, "the CPU cannot run it in user mode"
        if not compare(case, cpu, ours):
            return cpu, "reference" if peer is not None else "unicorn crashed"
        if peer is not None and not compare(case, cpu, peer):
            return cpu, "unicorn"
        return None, "the CPU agreed with neither"


LOCK = 0xF0


def with_lock(case: Case) -> Optional[Case]:
    """The case with a LOCK prefix in front of its instruction (one byte earlier, where
    that byte is in a page the case has), or None. The SDM's LOCK rules (Vol. 2A, LOCK:
    #UD unless the instruction is one of the listed read-modify-writes with a memory
    destination) are a class where Unicorn is known wrong and the CPU is a clean oracle."""
    eip = case.regs["eip"]
    start = (eip - 1) & 0xFFFFFFFF
    base = start - start % PAGE_SIZE
    if base not in case.memory or case.code[:1] == bytes([LOCK]):
        return None
    page = bytearray(case.memory[base])
    page[start - base] = LOCK
    return replace(case, code=bytes([LOCK]) + case.code, regs={**case.regs, "eip": start},
                   memory={**case.memory, base: bytes(page)}, name=case.name + " +lock")


def native_vectors(pattern: str, per_form: int, draws: int, seed: int, out: Path,
                   progress: Optional[Callable[[], None]] = None) -> NativeSummary:
    """Write ``out/prot32/FORM.jsonl.gz`` for each form where, among ``draws`` generated
    cases, some disagreed and the CPU decided (at most ``per_form`` kept)."""
    import unicorn

    from differential.cpu_identity import this_cpu
    from differential.draw import RandomDraw
    from differential.generator import form_case
    from differential.operands import disassembly

    decision = NativeDecision()
    summary = NativeSummary()
    cpu = this_cpu()
    for form, mode in selected_forms(pattern, (MODE,)):
        name = form.name  # type: ignore[attr-defined]
        draw = RandomDraw(form_seed(seed, f"native:{name}", mode))
        kept: List[Tuple[Case, Outcome]] = []
        for attempt in range(draws):
            if len(kept) == per_form:
                break
            case = form_case(form, mode, draw, name=f"{name} {mode} native #{attempt}")
            if attempt % 2:  # every other draw with a LOCK prefix, where one fits
                case = with_lock(case) or case
            _, verdict = decision.decide(case)
            if verdict in KEPT:
                small = sparse_case(case)
                outcome, again = decision.decide(small)
                verdict = again if again == verdict else "changed when shrunk"
            summary.count(verdict)
            if verdict not in KEPT or outcome is None:
                continue
            side = verdict
            kept.append((replace(small, name=f"{small.name}: {disassembly(mode, small.code)} "
                                             f"(the CPU sided with {side})"), outcome))
        if progress is not None:
            progress()
        if not kept:
            continue
        header = make_header(
            form=name, mode=mode, encoding=form.encoding,  # type: ignore[attr-defined]
            count=len(kept), seed=seed, oracle=ORACLE, cpu=cpu.as_dict(),
            unicorn=unicorn.__version__,
            generator=f"x86lab vectors generate --oracle native --forms '{pattern}' "
                      f"--per-form {per_form} --draws {draws} --seed {seed}")
        summary.vectors += write_vectors(out / mode / f"{name}.jsonl.gz", header, kept)
        summary.files += 1
        summary.by_form[name] = len(kept)
    return summary
