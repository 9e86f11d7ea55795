"""The vector format round-trips exactly and rejects malformed vectors with clear messages."""

from __future__ import annotations

import json

import pytest
from hypothesis import given

from ground.case import GPRS, PAGE_SIZE
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
    regs = dict.fromkeys(GPRS + ("eflags",), 1)
    return {"name": "t", "mode": "prot32", "bytes": [0x90],
            "initial": {"regs": {**regs, "eip": 0x1000}, "pages": [0x1000], "fill": 0,
                        "ram": [[0x1000, 0x90]]},
            "final": {"regs": {**regs, "eip": 0x1001}, "ram": [], "exception": None}}


def test_valid_record_is_read():
    case, _ = from_record(_valid_record())
    assert case.code == b"\x90"


@pytest.mark.parametrize("path, value, message", [
    (("mode",), "long64", "mode 'long64'"),
    (("initial", "pages"), [0x1001], "not a 4 KiB-aligned"),
    (("initial", "ram"), [[0x5000, 1]], "outside initial.pages"),
    (("initial", "ram"), [[0x1000, 256]], "is not 0..255"),
    (("initial", "regs", "eax"), -1, "initial.regs.eax should be a u32"),
    (("final", "exception"), {"vector": 6, "kind": "oops"}, "final.exception.kind"),
    (("bytes",), "90", "field bytes should be list"),
    (("bytes",), [0x91], r"bytes \[91\] differ from the memory at cs_base \+ eip"),
    (("bytes",), [], "one or more integers"),
    (("initial", "regs", "eip"), 0x5000, r"cs_base \+ eip \(0x5000\) lies outside"),
    (("final", "regs", "eip"), None, "final.regs.eip should be a u32"),
    (("final", "notes"), [1], "final.notes should be an object"),
    (("undefined_dest",), "mem:0x10:99999999", "undefined_dest 'mem:0x10:99999999'"),
    (("undefined_dest",), "reg:eax:zz", "undefined_dest 'reg:eax:zz'"),
], ids=["mode", "page", "ram-outside", "ram-byte", "reg", "exc-kind", "bytes", "code-differs",
        "code-empty", "code-unmapped", "final-reg", "notes", "dest-size", "dest-mask"])
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


def test_missing_register_is_named():
    record = _valid_record()
    del record["final"]["regs"]["eflags"]
    with pytest.raises(VectorError, match="missing register final.regs.eflags"):
        from_record(record)


def test_real_mode_code_sits_at_cs_times_16_plus_ip():
    record = _valid_record()
    record["mode"] = "real16"
    for side in ("initial", "final"):
        record[side]["regs"].update(cs=0xFF, ds=0, es=0, fs=0, gs=0, ss=0)
    record["initial"]["regs"]["eip"] = 0x10   # 0xFF * 16 + 0x10 = 0x1000, where the 0x90 is
    assert from_record(record)[0].code == b"\x90"
    record["initial"]["regs"]["cs"] = 0x100
    with pytest.raises(VectorError, match=r"eip \(0x1010\): \[00\]"):
        from_record(record)
