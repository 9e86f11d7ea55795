"""x87 register forms (two-byte ESC keys, ModRM C0-FF) sit in their ESC cell, and the
report has one row per family of forms (user, system, x87)."""

from __future__ import annotations

import json

from differential.coverage.opcode_map import (
    IMPLEMENTED,
    MISSING,
    NOT_ISA,
    TESTED,
    Evidence,
    FormFacts,
    build_map,
    form_group,
    group_rows,
    totals,
)
from x86lab.cli import EXIT_OK, main

FORMS = [FormFacts("FLD_Md", (0xD9,), 0, False, group="x87"),
         FormFacts("FLD_STi", (0xD9, 0xC0), None, True, group="x87"),
         FormFacts("FLD1", (0xD9, 0xE8), None, False, group="x87"),
         FormFacts("FCOMPP", (0xDE, 0xD9), None, False, group="x87"),
         FormFacts("LGDT_Ms", (0x0F, 0x01), 2, False, "system state", group="system"),
         FormFacts("ADD_Ev_Gv", (0x01,), None, False)]
EVIDENCE = Evidence(implemented={"FLD_Md", "FLD_STi", "FLD1", "ADD_Ev_Gv", "LGDT_Ms"},
                    cases={"FLD1": 5, "ADD_Ev_Gv": 20, "LGDT_Ms": 3},
                    oracles={"FLD1": {"native": 5}, "ADD_Ev_Gv": {"agreement": 20},
                             "LGDT_Ms": {"unicorn": 3}})


def test_register_forms_are_placed_by_their_modrm_byte():
    cells = build_map(FORMS, EVIDENCE, two_byte=False)
    d9 = cells[0xD9]
    assert d9.digits[0].forms == ["FLD_Md"] and d9.digits[0].status == IMPLEMENTED
    assert d9.registers[0xE8].forms == ["FLD1"] and d9.registers[0xE8].status == TESTED
    assert all(d9.registers[0xC0 + r].forms == ["FLD_STi"] for r in range(8))  # C0+r
    assert d9.registers[0xE2].status == NOT_ISA and "Tables A-7" in d9.registers[0xE2].why_untested
    assert cells[0xDE].registers[0xD9].status == MISSING  # in the table, no semantics
    assert set(d9.slot.forms) == {"FLD_Md", "FLD_STi", "FLD1"}
    assert len(d9.registers) == 64 and not cells[0x01].registers
    assert all(len(cells[op].registers) == 64 for op in range(0xD8, 0xE0))
    # each ESC cell counts its 64 register slots besides its /digit rows
    rows = sum(len(cell.digits) or 1 for cell in cells)
    assert sum(totals(cells).values()) == rows + 8 * 64
    assert not any(c.registers for c in build_map(FORMS, EVIDENCE, two_byte=True))


def test_group_rows_sum_each_family():
    rows = group_rows(FORMS, EVIDENCE)
    assert list(rows) == ["user", "system", "x87"]
    x87 = rows["x87"]
    assert (x87["forms"], x87["implemented"], x87["tested"], x87["cases"]) == (4, 3, 1, 5)
    assert x87["oracles"] == {"native": 5}
    assert x87["untested_forms"] == ["FLD_Md", "FLD_STi", "FCOMPP"]
    assert (rows["system"]["untestable"], rows["system"]["oracles"]) == (1, {"unicorn": 3})


def test_the_real_table_groups_forms_by_their_semantics():
    from reference import BY_NAME

    assert form_group(BY_NAME["FLD1"]) == "x87"
    assert form_group(BY_NAME["FXSAVE_M"]) == "x87"
    assert form_group(BY_NAME["LGDT_Ms"]) == "system"
    assert form_group(BY_NAME["ADD_Ev_Gv"]) == "user"


def test_command_json_has_group_rows_and_x87_register_cells(tmp_path):
    out = tmp_path / "c.json"
    assert main(["coverage", "--quiet", "--json", str(out)]) == EXIT_OK
    report = json.loads(out.read_text())
    groups = report["groups"]
    assert set(groups) == {"user", "system", "x87"}
    assert groups["x87"]["forms"] >= 130 and groups["x87"]["oracles"].get("native", 0) > 0
    assert groups["system"]["tested"] > 10 and groups["system"]["oracles"].get("unicorn")
    d9 = report["one-byte opcodes"]["cells"][0xD9]
    fld1 = d9["registers"]["E8"]
    assert fld1["forms"] == ["FLD1"] and fld1["cases"] > 0
    # tested, and Unicorn's known x87 differences name it (the constants are not rounded)
    assert fld1["status"] == "divergent"
    assert "unicorn-x87-constants-not-rounded" in fld1["known"]
