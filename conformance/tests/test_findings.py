"""Known differences: how a finding is matched, and a broken file's one-line error."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.findings import Finding, load_known, mark_known

KNOWN = '''
[[difference]]
suite = "vectors"
group = "ENTER_Iw_Ib"
field = "unmapped"
evidence = "SDM: ENTER probes the final stack pointer"
'''


def _finding(group: str, summary: str) -> Finding:
    return Finding("qemu", "vectors", group, 1, summary)


def test_known_entry_marks_only_matching_findings(tmp_path: Path) -> None:
    (tmp_path / "qemu.toml").write_text(KNOWN)
    findings = [_finding("ENTER_Iw_Ib", "exception: expected=none qemu=unmapped-access"),
                _finding("ENTER_Iw_Ib", "esp: expected=0x1 qemu=0x2"),
                _finding("ADD_Ev_Gv", "exception: unmapped")]
    mark_known(findings, load_known("qemu", tmp_path))
    assert [f.is_new for f in findings] == [False, True, True]
    assert "probes" in findings[0].known


def test_engine_without_a_file_knows_nothing(tmp_path: Path) -> None:
    assert load_known("v86", tmp_path) == []


@pytest.mark.parametrize("text, message", [
    ("[[difference]]\nsuite = 'vectors'\n", "lacks group, evidence"),
    ("[[difference]\n", "not valid TOML"),
], ids=["missing-keys", "bad-toml"])
def test_a_broken_known_file_names_itself(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "qemu.toml").write_text(text)
    with pytest.raises(ValueError, match=message) as info:
        load_known("qemu", tmp_path)
    assert "qemu.toml" in str(info.value)


def test_the_committed_known_files_load() -> None:
    for engine in ("v86", "qemu", "native", "unicorn", "reference"):
        for entry in load_known(engine):
            assert entry.evidence.strip()


def test_the_report_counts_expressible_vectors_per_form_with_reason_classes() -> None:
    from conformance.findings import SuiteResult
    from conformance.matrix import Options, Report
    from conformance.report import to_json
    from conformance.vector_findings import reason_class

    assert reason_class("privileged at CPL3 (raises #GP in user mode)") == "privileged at CPL3"
    assert reason_class("page-not-mappable-here") == "page not mappable here"
    detail = {"prot32/CLI": {"vectors": 3, "expressible": 0, "privileged at CPL3": 3},
              "prot32/ADD": {"vectors": 5, "expressible": 4, "page not mappable here": 1}}
    report = Report(Options(engines=["native"], suites=["vectors"]),
                    [SuiteResult("native", "vectors", "ran", 4, 4, detail=detail)])
    assert to_json(report)["user_mode_expressible"]["native"] == {
        "vectors": 8, "expressible": 4, "privileged at CPL3": 3, "page not mappable here": 1}


def test_a_known_entry_with_bytes_matches_only_reproducers_starting_so() -> None:
    from conformance.findings import Finding
    from differential.known import KnownDifference

    entry = KnownDifference("vectors", ("BSWAP_Zv",), "SDM: undefined", bytes="(67 )?66 ")
    with_prefix = Finding("qemu", "vectors", "BSWAP_Zv", 1, "esi", {"bytes": "66 0f ce"})
    both = Finding("qemu", "vectors", "BSWAP_Zv", 1, "esi", {"bytes": "67 66 0f ce"})
    without = Finding("qemu", "vectors", "BSWAP_Zv", 1, "esi", {"bytes": "0f ce"})
    assert entry.matches_finding(with_prefix) and entry.matches_finding(both)
    assert not entry.matches_finding(without)


def test_a_known_entry_can_cover_several_forms_and_only_some_fields(tmp_path: Path) -> None:
    (tmp_path / "native.toml").write_text(
        "[[difference]]\nsuite = 'vectors'\ngroup = ['CMPS_Xv_Yv', 'SCAS_AL_Yb']\n"
        "fields = ['eflags.*']\nevidence = 'measured'\n")
    [entry] = load_known("native", tmp_path)
    flags = "eflags.AF: expected=0x0 native=0x1; eflags.SF: expected=0x0 native=0x1"
    assert entry.matches_finding(Finding("native", "vectors", "SCAS_AL_Yb", 1, flags))
    assert not entry.matches_finding(Finding("native", "vectors", "MOVS_Xv_Yv", 1, flags))
    assert not entry.matches_finding(Finding("native", "vectors", "CMPS_Xv_Yv", 1,
                                     flags + "; esi: expected=0x4 native=0x8"))


def test_a_known_entry_with_an_unknown_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / "v86.toml").write_text(
        "[[difference]]\nsuite = 'vectors'\ngroup = 'X'\nevidence = 'e'\nfeild = 'a'\n")
    with pytest.raises(ValueError, match="unknown keys feild"):
        load_known("v86", tmp_path)


def test_a_finding_keeps_its_measured_explanation_when_no_entry_matches(tmp_path: Path) -> None:
    finding = Finding("qemu", "busybox", "bc (time limit)", 28, "cut off", known="slow")
    mark_known([finding], load_known("qemu", tmp_path))
    assert finding.known == "slow" and not finding.is_new
