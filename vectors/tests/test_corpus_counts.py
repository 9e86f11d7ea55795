"""The committed corpora follow the SDM's count rule for shifts and rotates: a masked
count of 0 changes no flag, so no vector with that count may excuse OF (or any flag).
Until the rule was fixed, every such vector carried OF in ``undefined_flags``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from reference.faults import Fault
from reference.isa.decoder import decode_bytes
from vectors.files import find_vector_files, read_vectors

VECTORS = Path(__file__).resolve().parent.parent
SHIFTS = ("SHL", "SAL", "SHR", "SAR", "ROL", "ROR", "RCL", "RCR", "SHLD", "SHRD")


def masked_count(entry) -> Optional[int]:
    """The count operand before the instruction: CL, the immediate (the instruction's
    last byte), or 1; low 5 bits, as the SDM masks it. None when the bytes do not decode
    (a LOCK prefix of corpus-native: #UD, no flag is touched)."""
    try:
        insn = decode_bytes(entry.case.code, entry.case.mode)
    except Fault:
        return None
    spec = insn.form.specs[-1]
    if spec == "CL":
        return entry.case.regs["ecx"] & 0x1F
    if spec == "1":
        return 1
    return entry.case.code[insn.length - 1] & 0x1F


def test_no_vector_excuses_a_flag_at_count_zero():
    seen = 0
    offenders = []
    for corpus in ("corpus", "corpus-native"):
        for path in find_vector_files([VECTORS / corpus]):
            if path.name.split("_")[0] not in SHIFTS:  # SALC is not SAL
                continue
            for entry in read_vectors(path):
                if masked_count(entry) == 0:
                    seen += 1
                    if entry.case.undefined_flags:
                        offenders.append(f"{path.name}: {entry.case.name}")
    assert seen > 100  # the generator draws count 0 often enough to matter
    assert offenders == []
