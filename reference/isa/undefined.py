"""Which flags (and whether the destination) the SDM leaves undefined for one execution.

The table states the rules (``Form.undefined``); this evaluates them for concrete facts,
so the comparator masks exactly what the SDM allows and nothing else. The count is the
*masked* count (low 5 bits of CL or imm8), as the SDM's Flags Affected sections mean it.
"""

from __future__ import annotations

from typing import Optional, Tuple

from reference.isa.form import (
    ALWAYS,
    COUNT_ABOVE_1,
    COUNT_AT_LEAST_SIZE,
    COUNT_NOT_0,
    COUNT_OVER_SIZE,
    SIZE_16,
    SOURCE_ZERO,
    Form,
)


def undefined_for(form: Form, size: int, count: Optional[int] = None,
                  source: Optional[int] = None) -> Tuple[int, bool]:
    """(EFLAGS mask, destination undefined?) for ``form`` at operand ``size`` bits.

    ``count`` is the masked shift/rotate count (``count & 0x1F``), ``source`` the source
    operand of BSF/BSR; a rule whose fact is not given is not applied.
    """
    mask = 0
    dest = False
    for rule in form.undefined:
        when = rule.when
        if when == ALWAYS:
            hit = True
        elif when == SOURCE_ZERO:
            hit = source == 0
        elif when == SIZE_16:
            hit = size == 16
        elif count is None:
            hit = False
        elif when == COUNT_ABOVE_1:
            hit = count > 1
        elif when == COUNT_NOT_0:
            hit = count != 0
        elif when == COUNT_OVER_SIZE:
            hit = count > size
        elif when == COUNT_AT_LEAST_SIZE:
            hit = count >= size
        else:  # pragma: no cover - Undefined validates ``when``
            raise ValueError(f"unknown condition {when!r}")
        if hit:
            mask |= rule.flags
            dest = dest or rule.dest
    return mask, dest
