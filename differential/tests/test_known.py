"""Known divergences match only when every differing field is covered."""

from __future__ import annotations

import pytest

from differential.compare import Difference
from differential.known import KnownListError, find_known, load_known
from differential.tests.handmade import make_case

ENTRY = """
[[divergence]]
id = "demo"
forms = ["NEG_*"]
fields = ["eflags.SF", "eflags.PF"]
reason = "r"
evidence = "e"
"""


def _case(form):
    base = make_case(bytes.fromhex("f718"))
    return type(base)(**{**base.__dict__, "form": form})


def test_matches_only_when_all_fields_are_covered(tmp_path):
    path = tmp_path / "known.toml"
    path.write_text(ENTRY)
    known = load_known(path)
    sf = Difference("eflags.SF", 0, 1)
    assert find_known(known, _case("NEG_Ev"), [sf], {}).id == "demo"
    assert find_known(known, _case("NEG_Ev"), [sf, Difference("eax", 1, 2)], {}) is None
    assert find_known(known, _case("ADD_Ev_Gv"), [sf], {}) is None


def test_missing_keys_are_reported(tmp_path):
    path = tmp_path / "known.toml"
    path.write_text('[[divergence]]\nid = "x"\n')
    with pytest.raises(KnownListError, match="missing forms, fields, reason, evidence"):
        load_known(path)


def test_shipped_list_loads_and_cites_evidence():
    for entry in load_known():
        assert entry.evidence.strip() and entry.reason.strip()
