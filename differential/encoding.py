"""Just enough IA-32 encoding knowledge to split off legacy prefixes.

Both the Unicorn runner (which must know whether a REP string instruction is still
iterating at the same address) and the random-bytes source (which sprays prefixes in any
order) need it; the full decoder lives in ``reference/`` and is not used here on purpose:
the harness around a runner must not share code with the thing it checks.
"""

from __future__ import annotations

from typing import Tuple

LEGACY_PREFIXES = frozenset((0xF0, 0xF2, 0xF3, 0x2E, 0x36, 0x3E, 0x26, 0x64, 0x65, 0x66, 0x67))
REP_PREFIXES = frozenset((0xF2, 0xF3))
# MOVS CMPS STOS LODS SCAS INS OUTS, byte and word/dword forms (SDM Vol. 2B, REP prefix).
STRING_OPCODES = frozenset((0xA4, 0xA5, 0xA6, 0xA7, 0xAA, 0xAB, 0xAC, 0xAD, 0xAE, 0xAF,
                            0x6C, 0x6D, 0x6E, 0x6F))
MAX_INSTRUCTION_LENGTH = 15  # SDM Vol. 2A, 2.3.11: longer encodings raise #GP/#UD


_PREFIX_BYTES = bytes(sorted(LEGACY_PREFIXES))


def split_prefixes(code: bytes) -> Tuple[bytes, bytes]:
    """(legacy prefixes, the rest) of an instruction's bytes. ``bytes.lstrip`` drops the
    leading bytes that are any of the prefixes in C: a loop over them in Python cost
    ~0.7 µs a call, and the Unicorn runner makes three a case (issue 18)."""
    rest = code.lstrip(_PREFIX_BYTES)
    return code[:len(code) - len(rest)], rest


def is_rep_string(code: bytes) -> bool:
    """True for a string instruction carrying REP/REPE/REPNE: a real CPU finishes every
    iteration in one step, while an emulator may report each iteration separately."""
    prefixes, rest = split_prefixes(code)
    return bool(rest) and rest[0] in STRING_OPCODES and any(p in REP_PREFIXES for p in prefixes)


_BRANCHES = frozenset(list(range(0x70, 0x80)) + [0xE0, 0xE1, 0xE2, 0xE3, 0xE8, 0xE9, 0xEA,
                                                  0xEB, 0xC2, 0xC3, 0xCA, 0xCB, 0xCF, 0xFF])


def may_branch(code: bytes) -> bool:
    """True for control transfers (Jcc, JMP, CALL, RET, LOOP, JCXZ, IRET, FF group): only
    these can legitimately arrive back at their own address in one step."""
    _prefixes, rest = split_prefixes(code)
    if not rest:
        return False
    if rest[0] == 0x0F:
        return len(rest) > 1 and 0x80 <= rest[1] <= 0x8F
    return rest[0] in _BRANCHES


def raises_debug(code: bytes) -> bool:
    """INT 1 (CD 01) and ICEBP (F1) raise #DB themselves."""
    _prefixes, rest = split_prefixes(code)
    return rest[:2] == b"\xcd\x01" or rest[:1] == b"\xf1"
