"""The list of Unicorn's system-level divergences (suite ``reference-system`` of
``differential/known_divergences.toml``) and its reader, ``unicorn_known.py``: every
entry names real forms and a condition the tests can establish, and a difference is
explained only by an entry that fits all of it. What the entries explain is exercised by
``test_system_unicorn.py`` and ``test_system_unicorn_far.py``."""

from __future__ import annotations

from reference.tests.third_party import require

require("tomllib")  # differential.known reads TOML: Python 3.11, so CPython only here
from reference import FORMS  # noqa: E402
from reference.tests.unicorn_known import (  # noqa: E402
    CONDITIONS,
    Difference,
    assert_explained,
    entries,
    explained_by,
)

LISTED = {
    "unicorn-far-return-and-gate-call-skip-the-eip-limit-check",
    "unicorn-gate-call-to-conforming-code-enters-at-its-dpl",
    "unicorn-iret-at-cpl3-enters-virtual-8086-mode",
    "unicorn-retf-leaves-the-cs-accessed-bit-clear",
    "unicorn-accessed-bit-set-on-a-faulting-walk",
    "unicorn-models-pse36",
    "unicorn-lar-bits-19-16-read-as-zero",
    "unicorn-busy-tr-cache-aborts",
    "unicorn-pushf-after-iret-keeps-rf",
}


def test_the_system_divergences_are_listed_with_reason_and_evidence() -> None:
    """The eight of issue 17's closing note (its ninth, ICEBP, is the table's
    ``untestable`` reason of INT1) and RF after IRET, found while moving them."""
    listed = entries()
    assert {e.id for e in listed} == LISTED
    names = {form.name for form in FORMS}
    for known in listed:
        assert known.reason.strip() and "SDM" in known.evidence, known.id
        assert known.fields, known.id  # never "whatever differs" by omission
        assert all(g == "*" or g in names for g in known.groups), known.id
        assert known.condition in ("", *CONDITIONS), known.id


def test_a_difference_is_explained_only_by_an_entry_that_fits() -> None:
    pse36 = Difference("exception", "none", "#PF")
    assert explained_by(pse36, {"MOV_eAX_Ov"}, {"pse36-frame-bits"}).id == \
        "unicorn-models-pse36"
    assert explained_by(pse36, {"MOV_eAX_Ov"}, ()) is None  # the condition must hold
    lar = Difference("ecx.bits_19_16", 0x00C0FB00, 0x00CFFB00)
    assert explained_by(lar, {"LAR_Gv_Ew"}, ()) is not None
    assert explained_by(lar, {"LSL_Gv_Ew"}, ()) is None  # another form
    assert explained_by(Difference("ecx", 1, 2), {"LAR_Gv_Ew"}, ()) is None  # other bits
    limit = Difference("exception", "none", "#GP")
    assert explained_by(limit, {"RETF"}, {"target-beyond-limit"}) is not None
    assert explained_by(limit, {"JMPF_Ap"}, {"target-beyond-limit"}) is None
    assert explained_by(Difference("exception", "#GP", "none"), {"RETF"},
                        {"target-beyond-limit"}) is None  # the other way round


def test_an_unlisted_difference_fails() -> None:
    try:
        assert_explained([Difference("eax", 1, 2)], {"IRET"}, (), "demo")
    except AssertionError as failure:
        assert "eax: unicorn=1 reference=2" in str(failure)
    else:
        raise AssertionError("an unlisted difference passed")
