"""Properties every decoding must have, whatever the bytes (Hypothesis): the length never
exceeds 15, bytes after the instruction do not change it, and reordering distinct legacy
prefixes (from different groups) changes nothing but the bytes."""

from __future__ import annotations

from reference.tests.third_party import require

require("hypothesis")
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from reference import Fault, Unmapped, decode_bytes  # noqa: E402

modes = st.sampled_from(["prot32", "real16"])


def outcome(code: bytes, mode: str):
    try:
        insn = decode_bytes(code, mode)
    except Fault as fault:
        return ("fault", fault.vector, fault.error_code)
    except Unmapped:
        return ("short",)
    return (insn.form.name, insn.length, insn.opsize, insn.adsize, insn.seg, insn.rep,
            insn.lock)


@given(code=st.binary(min_size=1, max_size=20), tail=st.binary(max_size=8), mode=modes)
def test_length_is_bounded_and_ignores_what_follows(code, tail, mode) -> None:
    first = outcome(code, mode)
    if first[0] == "short":
        return
    assert outcome(code + tail, mode) == first
    if first[0] != "fault":
        assert 1 <= first[1] <= 15


@given(body=st.binary(min_size=1, max_size=12), mode=modes,
       order=st.permutations([b"\x66", b"\x67", b"\x2e", b"\xf3"]))
def test_prefix_order_does_not_matter(body, mode, order) -> None:
    canonical = outcome(b"\x66\x67\x2e\xf3" + body, mode)
    assert outcome(b"".join(order) + body, mode) == canonical
