"""The bare-metal suite (``conformance/suites/bare_metal.py``) without emulators: which
engines it applies to, how a case is judged against the oracles' answer (passed, a
known finding when the engine's own entries cover every field, new otherwise,
undefined where the SDM leaves the fields open), and that the matrix runs a suite with a
machine of its own beside the guest, booting nothing for it."""

from __future__ import annotations

from pathlib import Path

from conformance import matrix
from conformance.findings import SuiteResult
from conformance.matrix import Options, run_matrix
from conformance.suite import Run, Suite
from conformance.suites import APPLICABLE, BY_SUITE
from conformance.suites.bare_metal import BareMetalSuite
from differential.bare_metal.compare import CaseResult
from differential.bare_metal.image import Case
from ground.engines import BOOTS_IMAGE, BY_NAME, EngineEntry


def test_it_applies_to_the_engines_that_run_the_image() -> None:
    for name in ("v86", "qemu", "bochs", "reference"):
        assert "bare-metal" in APPLICABLE[name], name
    for name in ("native", "unicorn"):
        assert "bare-metal" not in APPLICABLE.get(name, ()), name


def _case(name: str) -> Case:
    return Case(name, name.split("/")[0], cr0=1, cr3=0, cr4=0, gdtr=(0, 7), idtr=(0, 7),
                tr=0, ldtr=0, entry=(8, 0), stack=(0x10, 0), writes=[], dumps=[])


def _done(name: str, **fields: int) -> CaseResult:
    return CaseResult(name, "done", {f"results.{k}": v for k, v in fields.items()})


def _suite(tmp_path: Path, names, oracles, decided) -> BareMetalSuite:
    suite = BareMetalSuite(Run(Options(engines=[], suites=[], repro_dir=tmp_path)))
    suite.cases = [_case(name) for name in names]
    suite.by_engine = oracles
    suite.decided = decided
    suite.oracle_error = ""
    return suite


def test_a_case_passes_when_it_matches_an_oracle_that_decided_it(tmp_path: Path) -> None:
    """Four cases, v86's results given: equal to Bochs (pass); INT3 at IOPL 0 as #GP
    where v86's own entry v86-bare-int3-iopl-sensitive-in-vm86 covers results.*
    (known); a field no entry of v86 names (new); QEMU, found wrong, decides nothing, so
    matching it is no pass."""
    names = ["int-same/int32-int80", "vm86-gates/int16-int3-iopl0", "paging/pse-4mb-read",
             "fault/cli-cpl3-iopl0"]
    bochs = [_done(names[0], vector=0x80), _done(names[1], vector=3),
             _done(names[2], eax=0xA1), _done(names[3], stack2=0x10202)]
    qemu = bochs[:3] + [_done(names[3], stack2=0x202)]
    suite = _suite(tmp_path, names, {"qemu": qemu, "bochs": bochs},
                   [("qemu", "bochs")] * 3 + [("bochs",)])
    suite.by_engine["v86"] = [_done(names[0], vector=0x80), _done(names[1], vector=13),
                              _done(names[2], eax=0), _done(names[3], stack2=0x202)]
    result = suite.run_here(BY_NAME["v86"])
    assert (result.status, result.passed, result.total) == ("ran", 1, 4)
    kinds = {f.group: (f.kind, f.summary) for f in result.findings}
    assert kinds[names[1]] == ("known", "results.vector")
    assert kinds[names[2]] == ("new", "results.eax")
    assert kinds[names[3]][1] == "results.stack2"
    assert result.findings[0].reproducer["oracle"] in ("qemu", "bochs")


def test_the_oracle_found_wrong_has_a_known_finding(tmp_path: Path) -> None:
    """QEMU's RF-clear fault frame: Bochs alone decides the case, QEMU's own entry
    (qemu-fault-pushes-rf-clear, fields results.stack2/3) explains its finding."""
    name = "fault/cli-cpl3-iopl0"
    suite = _suite(tmp_path, [name], {"qemu": [_done(name, stack2=0x202)],
                                      "bochs": [_done(name, stack2=0x10202)]}, [("bochs",)])
    result = suite.run_here(BY_NAME["qemu"])
    assert (result.passed, [f.kind for f in result.findings]) == (0, ["known"])
    assert suite.run_here(BY_NAME["bochs"]).passed == 1


def test_an_unavailable_oracle_makes_error_cells(tmp_path: Path) -> None:
    suite = _suite(tmp_path, [], {}, [])
    suite.oracle_error = "oracle unavailable: qemu-system-i386 missing"
    assert suite.run_here(BY_NAME["v86"]).cell() == "error"


class _OwnMachine(Suite):
    name = "own-machine"
    rank = 98
    needs = (BOOTS_IMAGE,)
    own_machine = True

    def run_here(self, engine: EngineEntry) -> SuiteResult:
        return SuiteResult(engine.name, self.name, "ran", 2, 2)


def test_the_matrix_boots_no_guest_for_a_suite_with_its_own_machine(monkeypatch,
                                                                   tmp_path: Path) -> None:
    def no_boot(*args, **kwargs):
        raise AssertionError("a guest was booted")

    monkeypatch.setattr(matrix, "_run_guest", no_boot)
    monkeypatch.setitem(BY_SUITE, "own-machine", _OwnMachine)
    report = run_matrix(Options(engines=["qemu"], suites=["own-machine"], repro_dir=tmp_path))
    assert [(r.engine, r.suite, r.cell()) for r in report.results] == [
        ("qemu", "own-machine", "2/2")]
