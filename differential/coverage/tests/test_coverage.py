"""Coverage maps: cells classified from the table and the evidence; outputs well formed."""

from __future__ import annotations

import json
from html.parser import HTMLParser

from differential.coverage.opcode_map import (
    DIVERGENT,
    IMPLEMENTED,
    MISSING,
    NOT_ISA,
    PREFIX,
    TESTED,
    Evidence,
    FormFacts,
    build_map,
)
from differential.coverage.render import MAPS
from x86lab.cli import EXIT_OK, main

FORMS = [FormFacts("ADD_Ev_Gv", (0x01,), None, False),
         FormFacts("ADD_Ev_Iz", (0x81,), 0, False),
         FormFacts("SUB_Ev_Iz", (0x81,), 5, False),
         FormFacts("INC_Zv", (0x40,), None, True),
         FormFacts("BT_Ev_Ib", (0x0F, 0xBA), 4, False),
         FormFacts("CPUID", (0x0F, 0xA2), None, False, untestable="model-specific")]
EVIDENCE = Evidence(implemented={"ADD_Ev_Gv", "ADD_Ev_Iz", "INC_Zv", "BT_Ev_Ib"},
                    cases={"ADD_Ev_Gv": 40, "INC_Zv": 7}, divergent={"BT_Ev_Ib": 2})


def test_one_byte_cells_follow_table_and_evidence():
    cells = build_map(FORMS, EVIDENCE, two_byte=False)
    assert len(cells) == 256
    assert (cells[0x01].slot.status, cells[0x01].slot.cases) == (TESTED, 40)
    assert all(cells[0x40 + r].slot.status == TESTED for r in range(8))  # 40+r: eight cells
    assert cells[0x66].slot.status == PREFIX                             # operand-size prefix
    assert cells[0x00].slot.status == MISSING                            # ADD Eb,Gb: in the ISA
    group = cells[0x81]
    assert group.digits[0].status == IMPLEMENTED and group.digits[5].status == MISSING
    assert group.digits[1].status == MISSING   # OR Ev,Iz exists in the ISA, not in this table


def test_two_byte_group_marks_reserved_digits_and_divergence():
    cells = build_map(FORMS, EVIDENCE, two_byte=True)
    bt = cells[0xBA]
    assert bt.slot.status == DIVERGENT and bt.digits[4].divergent == 2
    assert [bt.digits[d].status for d in range(4)] == [NOT_ISA] * 4  # SDM: 0F BA /0-/3 #UD
    assert cells[0x0A].slot.status == NOT_ISA                        # 0F 0A: no instruction
    assert cells[0xA2].slot.why_untested == "model-specific"


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.cells = 0
        self.external = []

    def handle_starttag(self, tag, attrs):
        self.cells += tag == "td"
        self.external += [v for k, v in attrs if k in ("src", "href")]


def test_command_writes_json_and_self_contained_html(tmp_path, capsys):
    out_json, out_html = tmp_path / "c.json", tmp_path / "c.html"
    assert main(["coverage", "--quiet", "--corpus", str(tmp_path), "--json", str(out_json),
                 "--html", str(out_html)]) == EXIT_OK
    maps = json.loads(out_json.read_text())
    assert [len(maps[title]["cells"]) for title, _ in MAPS] == [256, 256]
    assert isinstance(maps["known_for_all_forms"], list)
    tags = _Tags()
    tags.feed(out_html.read_text())
    assert tags.cells >= 512 and tags.external == []


def test_campaign_and_known_divergences_feed_the_cells(tmp_path):
    from differential.coverage.evidence import add_campaign, add_known

    campaign = tmp_path / "campaign"
    (campaign / "workers").mkdir(parents=True)
    (campaign / "campaign.json").write_text(json.dumps({"seed": 1, "jobs": 1, "forms": "*"}))
    (campaign / "workers" / "0.json").write_text(json.dumps(
        {"worker": 0, "next_batch": 1, "cases": 12, "busy": 1.0, "known": {},
         "forms": {"SUB_Ev_Iz": {"agree": 9, "diverge": 2, "unimplemented": 1}}}))
    known = tmp_path / "known.toml"
    entry = 'suite = "vectors"\nfields = ["*"]\nreason = "r"\nevidence = "e"\n'
    known.write_text(f'[[difference]]\nid = "inc-af"\ngroup = ["INC_*"]\n{entry}'
                     f'[[difference]]\nid = "smc"\ngroup = ["*"]\n{entry}')
    evidence = Evidence()
    add_campaign(campaign, evidence)
    add_known(known, [f.name for f in FORMS], evidence)
    assert evidence.cases == {"SUB_Ev_Iz": 11} and evidence.divergent == {"SUB_Ev_Iz": 2}
    cells = build_map(FORMS, evidence, two_byte=False)
    assert cells[0x81].digits[5].status == DIVERGENT
    assert cells[0x43].slot.status == DIVERGENT and cells[0x43].slot.known == ["inc-af"]
    assert evidence.cross_cutting == ["smc"] and cells[0x01].slot.status != DIVERGENT


def test_a_folder_that_is_no_campaign_is_a_usage_error(tmp_path, capsys):
    assert main(["coverage", "--quiet", "--corpus", str(tmp_path), "--campaign",
                 str(tmp_path)]) == 2
    assert "not a campaign folder" in capsys.readouterr().err
