"""The count rules for shifts and rotates, exactly as the SDM's Flags Affected sections
state them (Vol. 2B: SAL/SAR/SHL/SHR, RCL/RCR/ROL/ROR, SHLD, SHRD):

- a masked count of 0 changes no flag, so nothing is undefined and every flag must keep
  its value ("If the count is 0, the flags are not affected");
- a masked count of 1 defines OF ("The OF flag is affected only for 1-bit shifts" /
  "If the masked count is 1, then the OF flag is affected");
- a masked count above 1 leaves OF undefined ("otherwise ... the OF flag is undefined").

The expected masks below are written from that text, not read from the table.
"""

from __future__ import annotations

import pytest

from reference import BY_NAME, FORMS, undefined_for
from reference.flags import AF, CF, OF, STATUS
from reference.tests.conftest import make_cpu

SHIFTS = ("SHL", "SAL", "SHR", "SAR")
ROTATES = ("ROL", "ROR", "RCL", "RCR")
DOUBLE = ("SHLD", "SHRD")
COUNTED = [f for f in FORMS if f.mnemonic in SHIFTS + ROTATES + DOUBLE]


def expected_mask(mnemonic: str, size: int, count: int) -> int:
    """The SDM's undefined EFLAGS bits for one masked count (0..31)."""
    if count == 0:
        return 0
    mask = OF if count > 1 else 0
    if mnemonic in SHIFTS + DOUBLE:
        mask |= AF  # "For a non-zero count, the AF flag is undefined"
    if mnemonic in ("SHL", "SAL", "SHR") and count >= size:
        mask |= CF  # "CF ... undefined for SHL and SHR ... count >= the size"
    if mnemonic in DOUBLE and count > size:
        mask |= STATUS  # "If the count is greater than the operand size ... undefined"
    return mask


def test_every_shift_and_rotate_form_is_checked():
    assert len(COUNTED) == 8 * 6 + 4


@pytest.mark.parametrize("form", COUNTED, ids=[f.name for f in COUNTED])
def test_undefined_flags_follow_the_sdm_for_every_masked_count(form):
    sizes = (8,) if "Eb" in form.name else (16, 32)
    for size in sizes:
        for count in range(32):
            mask, _ = undefined_for(form, size, count=count)
            assert mask == expected_mask(form.mnemonic, size, count), (size, count)


@pytest.mark.parametrize("name", ["ROL_Ev_CL", "SHL_Ev_CL", "RCR_Eb_CL", "SHRD_Ev_Gv_CL"])
def test_a_count_of_zero_leaves_of_compared(name):
    """The old rule ("count != 1") excused OF at count 0. A step at CL = 32 (masked 0)
    must now report no undefined flag at all, so an engine that changes OF there is a
    divergence."""
    code = {"ROL_Ev_CL": "d3 c0", "SHL_Ev_CL": "d3 e0", "RCR_Eb_CL": "d2 d8",
            "SHRD_Ev_Gv_CL": "0f ad d0"}[name]
    cpu = make_cpu(bytes.fromhex(code), "prot32", ecx=32, eax=0x80000001, edx=0x12345678,
                   eflags=0x802 | 0x1)
    result = cpu.step()
    assert result.exception is None
    assert result.undefined_flags == 0
    assert cpu.get_reg("eflags") & (OF | CF) == OF | CF  # a count of 0 changed no flag
    assert BY_NAME[name].mnemonic in SHIFTS + ROTATES + DOUBLE
