"""Results the SDM leaves undefined: classified line by line, in their own class, on any
vendor's CPU. The lines are those of the AMD EPYC run reported in issue 11 (QEMU and v86
printed R=1234f4d1 where the CPU printed R=1234f4d0) and of an Intel CPU."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.findings import (
    UNDEFINED_FILE,
    Finding,
    load_known,
    mark_known,
    mark_undefined,
)
from conformance.program_output import compare_output
from conformance.undefined import shift_count_above_operand_size, split_undefined
from differential.cpu_identity import parse_cpuinfo
from differential.known import KnownDifference

AMD_LINE = "shldw      A=12345678 B=21ad3d34 C=00000012 R=1234f4d0 CCIN=0000 CC=0080"
ENGINE_LINE = "shldw      A=12345678 B=21ad3d34 C=00000012 R=1234f4d1 CCIN=0000 CC=0080"


@pytest.mark.parametrize("line, undefined", [
    (AMD_LINE, True),  # count 18 > 16
    ("shrdw      A=12345678 B=21ad3d34 C=00000011 R=0 CCIN=0000 CC=0000", True),  # 17
    ("shrdw      A=12345678 B=21ad3d34 C=00000031 R=0 CCIN=0000 CC=0000", True),  # 49&31
    ("shldw      A=12345678 B=21ad3d34 C=00000010 R=0 CCIN=0000 CC=0000", False),  # 16
    ("shldw      A=12345678 B=21ad3d34 C=00000001 R=0 CCIN=0000 CC=0000", False),
    ("shldl      A=12345678 B=21ad3d34 C=0000001f R=0 CCIN=0000 CC=0000", False),  # 31<32
    ("shlw       A=12345678 B=21ad3d34 C=00000012 R=0 CCIN=0000 CC=0000", False),
], ids=["amd-example", "count-17", "masked-49", "count-16", "count-1", "32-bit", "not-shld"])
def test_the_shift_condition_follows_the_sdm(line: str, undefined: bool) -> None:
    assert shift_count_above_operand_size(line) is undefined


def test_undefined_lines_leave_the_defined_ones_as_differences() -> None:
    defined_expected = "shldw      A=12345678 B=21ad3d34 C=00000001 R=1234acf0 CCIN=0000 CC=0884"
    defined_got = defined_expected.replace("acf0", "acf1")
    expected = f"addl A=1\n{AMD_LINE}\n{defined_expected}\nstatus=0\n"
    got = f"addl A=1\n{ENGINE_LINE}\n{defined_got}\nstatus=0\n"
    comparison = compare_output(expected, got)
    kept, undefined = split_undefined(comparison.diffs, load_known(UNDEFINED_FILE),
                                      "test-i386")
    assert [d.expected for d in kept] == [defined_expected]
    evidence, lines = undefined["shldw"]
    assert [d.got for d in lines] == [ENGINE_LINE] and "SDM Vol. 2B" in evidence


def test_an_undefined_finding_is_neither_new_nor_known() -> None:
    finding = Finding("qemu", "test-i386", "shldw", 28, "differ", undefined="SDM says so")
    assert not finding.is_new and finding.kind == "undefined"
    assert Finding("qemu", "test-i386", "shldw", 1, "x").kind == "new"


INTEL = """processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 85
model name\t: Intel(R) Xeon(R) CPU @ 2.50GHz
stepping\t: 7

processor\t: 1
vendor_id\t: GenuineIntel
"""
AMD = INTEL.replace("GenuineIntel", "AuthenticAMD").replace(": 6\n", ": 25\n").replace(
    ": 85", ": 17").replace("Intel(R) Xeon(R) CPU @ 2.50GHz", "AMD EPYC").replace(": 7", ": 1")


def test_the_cpu_identity_names_vendor_family_model_and_stepping() -> None:
    intel, amd = parse_cpuinfo(INTEL), parse_cpuinfo(AMD)
    assert (intel.vendor, intel.family, intel.model, intel.stepping) == \
        ("GenuineIntel", 6, 85, 7)
    assert amd.describe() == "AuthenticAMD family 25 model 17 stepping 1 (AMD EPYC)"


def test_an_entry_resting_on_one_vendor_applies_only_on_its_cpus(tmp_path: Path) -> None:
    entry = KnownDifference("vectors", ("CMPS_Xv_Yv",), "Intel keeps the old flags",
                            cpu="^GenuineIntel ")
    intel, amd = parse_cpuinfo(INTEL).describe(), parse_cpuinfo(AMD).describe()
    for cpu, new in ((intel, False), (amd, True)):
        finding = Finding("native", "vectors", "CMPS_Xv_Yv", 1, "eflags.ZF: ...")
        mark_known([finding], [entry], cpu)
        assert finding.is_new is new


def test_whole_findings_can_be_undefined_and_unknown_conditions_are_refused(
        tmp_path: Path) -> None:
    (tmp_path / "undefined.toml").write_text(
        '[[difference]]\nsuite = "vectors"\ngroup = "X"\nevidence = "SDM"\n')
    finding = Finding("v86", "vectors", "X", 1, "eax: ...")
    mark_undefined([finding], load_known("undefined", tmp_path))
    assert finding.kind == "undefined"
    (tmp_path / "bad.toml").write_text('[[difference]]\nsuite = "test-i386"\ngroup = "X"\n'
                                       'evidence = "e"\ncondition = "no such"\n')
    with pytest.raises(ValueError, match="unknown condition"):
        load_known("bad", tmp_path)


def test_aam_lines_differing_only_in_undefined_flags_are_undefined() -> None:
    from conformance.undefined import CONDITIONS

    condition = CONDITIONS["only OF, AF and CF differ"]
    amd = "aam        A=12340547 R=12340701 CCIN=0010 CC=0000"
    assert condition(amd, amd.replace("CC=0000", "CC=0010"))       # AF: undefined
    assert condition(amd, amd.replace("CC=0000", "CC=0801"))       # OF and CF too
    assert not condition(amd, amd.replace("CC=0000", "CC=0040"))   # ZF is defined
    assert not condition(amd, amd.replace("R=12340701", "R=12340700"))  # the result
    comparison = compare_output(f"{amd}\nstatus=0\n",
                                f"{amd.replace('CC=0000', 'CC=0010')}\nstatus=0\n")
    kept, undefined = split_undefined(comparison.diffs, load_known(UNDEFINED_FILE),
                                      "test-i386")
    assert kept == [] and "AAM and AAD" in undefined["aam"][0]
