"""Corpus files round-trip exactly and bad ones fail with a one-line error."""

from __future__ import annotations

import json

import pytest

from differential.corpus import CorpusError, case_from_json, case_to_json, load, save
from differential.draw import RandomDraw
from differential.generator import form_case
from reference import BY_NAME


def test_round_trip_is_exact(tmp_path):
    case = form_case(BY_NAME["SHLD_Ev_Gv_CL"], "real16", RandomDraw(9))
    assert case_from_json(json.loads(json.dumps(case_to_json(case)))) == case
    path = save(tmp_path, {"case": case_to_json(case), "reproducer": "x"})
    loaded, record = load(path)
    assert loaded == case and record["reproducer"] == "x"


def test_saving_twice_keeps_one_file(tmp_path):
    case = form_case(BY_NAME["ADD_Ev_Gv"], "prot32", RandomDraw(1))
    first = save(tmp_path, {"case": case_to_json(case)})
    assert save(tmp_path, {"case": case_to_json(case)}) == first
    assert len(list(tmp_path.glob("*.json"))) == 1


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '{"case": {"mode": "prot32"}}'])
def test_bad_file_is_a_one_line_error(tmp_path, text):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(CorpusError) as info:
        load(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
