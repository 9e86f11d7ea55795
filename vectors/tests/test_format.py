"""The vector format round-trips exactly and rejects malformed vectors with clear messages."""

from __future__ import annotations

import json

import pytest
from hypothesis import given

from differential.case import PAGE_SIZE
from vectors.format import VectorError, from_record, to_record
from vectors.tests.strategies import case_and_outcome


@given(case_and_outcome())
def test_case_and_outcome_round_trip_through_json(pair):
    case, outcome = pair
    text = json.dumps(to_record(case, outcome))
    assert from_record(json.loads(text)) == (case, outcome)


@given(case_and_outcome())
def test_final_ram_lists_only_changed_bytes(pair):
    case, outcome = pair
    changed = {(base + i) for base in case.memory
               for i in range(PAGE_SIZE) if case.memory[base][i] != outcome.memory[base][i]}
    record = to_record(case, outcome)
    assert {addr for addr, _ in record["final"]["ram"]} == changed


def _valid_record():
    return {"name": "t", "mode": "prot32", "bytes": [0x90],
            "initial": {"regs": {"eax": 1}, "pages": [0x1000], "fill": 0, "ram": [[0x1000, 0x90]]},
            "final": {"regs": {"eax": 1}, "ram": [], "exception": None}}


@pytest.mark.parametrize("path, value, message", [
    (("mode",), "long64", "mode 'long64'"),
    (("initial", "pages"), [0x1001], "not a 4 KiB-aligned"),
    (("initial", "ram"), [[0x5000, 1]], "outside initial.pages"),
    (("initial", "ram"), [[0x1000, 256]], "is not 0..255"),
    (("initial", "regs"), {"eax": -1}, "initial.regs.eax should be a u32"),
    (("final", "exception"), {"vector": 6, "kind": "oops"}, "final.exception.kind"),
    (("bytes",), "90", "field bytes should be list"),
], ids=["mode", "page", "ram-outside", "ram-byte", "reg", "exc-kind", "bytes"])
def test_malformed_vector_names_the_field(path, value, message):
    record = _valid_record()
    target = record
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(VectorError, match=message):
        from_record(record)


def test_missing_field_is_named():
    record = _valid_record()
    del record["final"]
    with pytest.raises(VectorError, match="missing field final"):
        from_record(record)
