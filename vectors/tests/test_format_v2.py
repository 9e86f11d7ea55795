"""Format version 2 (system state): the documented examples, the well-formedness rules,
the comparison of every stated key, Unicorn's counted skips, and the committed corpus."""

from __future__ import annotations

import copy
import gzip
import json
import re
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

from vectors.files import Entry, find_vector_files, read_header, read_vectors, scan_vectors
from vectors.format import VectorError, from_record_v2, make_header
from vectors.replay import replay_file, system_differences
from vectors.system_state import KEYS

VECTORS = Path(__file__).resolve().parent.parent
ROOT = VECTORS.parent
FORMAT_MD = VECTORS / "FORMAT.md"
CORPUS_V2 = VECTORS / "corpus-v2"
EXAMPLE = re.compile(r"<!-- example: (\S+) (.+?) -->\n```json\n(.*?)```", re.S)
ORACLES = {"unicorn", "native", "reference"}


def doc_examples() -> List[Tuple[str, str, Dict[str, Any]]]:
    return [(path, name, json.loads(text))
            for path, name, text in EXAMPLE.findall(FORMAT_MD.read_text())]


def corpus_line(path: str, name: str) -> Dict[str, Any]:
    with gzip.open(ROOT / path, "rt") as stream:
        for line in stream:
            record = json.loads(line)
            if record.get("name") == name:
                return record
    raise AssertionError(f"{name} not in {path}")


def test_the_doc_has_an_example_for_every_new_field() -> None:
    examples = doc_examples()
    assert len(examples) >= 4
    stated = set()
    for _, _, record in examples:
        stated |= set(record["initial"]["system"])
        if "delivery" in record:
            stated.add("delivery")
    assert stated >= set(KEYS) | {"delivery"}


@pytest.mark.parametrize("path, name, record", doc_examples(),
                         ids=[name for _, name, _ in doc_examples()])
def test_each_doc_example_is_a_corpus_line_that_replays(path: str, name: str,
                                                        record: Dict[str, Any]) -> None:
    assert record == corpus_line(path, name)
    case, expected, system = from_record_v2(record)
    assert system is not None
    entry = Entry(Path(path), 0, case, expected, system)
    assert system_differences(entry, "reference") == []


def _example(name: str) -> Dict[str, Any]:
    return copy.deepcopy(next(r for _, n, r in doc_examples() if n == name))


def _problems(record: Dict[str, Any]) -> List[str]:
    case, expected, system = from_record_v2(record)
    return system_differences(Entry(Path("x"), 0, case, expected, system), "reference")


@pytest.mark.parametrize("name, where, field", [
    ("INT_Ib #14", ("segments", "cs", "selector"), "cs.selector"),
    ("INT_Ib #14", ("cpl",), "cpl"),
    ("MOV_eAX_Ov #18", ("cr2",), "cr2"),
    ("WRMSR #54", ("msrs", "0x174"), "msr.0x174"),
    ("WRMSR #54", ("ldtr", "base"), "ldtr.base"),
    ("FADD_Md #2", ("x87", "fsw"), "x87.fsw.IE"),
    ("FADD_Md #2", ("x87", "fcw"), "x87.fcw.IM"),
    ("MOV_Dd_Rd #18", ("dr", "dr6"), "dr6"),
])
def test_a_wrong_expected_system_value_fails_by_name(name: str, where: Tuple[str, ...],
                                                     field: str) -> None:
    record = _example(name)
    target = record["final"]["system"]
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] ^= 1
    problems = _problems(record)
    assert problems and problems[0].startswith(f"{field}: ")


def test_status_word_differences_name_the_flag() -> None:
    """C1 is bit 9 and TOP bits 13:11 of the status word (SDM Vol. 1, Figure 8-4): a
    difference names them, with the field's own value (TOP 7 -> 6, not 0x3800)."""
    record = _example("FADD_Md #2")
    fsw = record["final"]["system"]["x87"]["fsw"]
    assert fsw >> 11 & 7 == 7
    record["final"]["system"]["x87"]["fsw"] = fsw ^ (1 << 9) ^ (1 << 11)
    assert sorted(_problems(record)) == [
        "x87.fsw.C1: expected=" + ("0x0" if fsw >> 9 & 1 else "0x1")
        + " got=" + ("0x1" if fsw >> 9 & 1 else "0x0"), "x87.fsw.TOP: expected=0x6 got=0x7"]


def test_a_wrong_st0_fails_but_an_empty_register_is_not_compared() -> None:
    record = _example("FADD_Md #2")
    record["final"]["system"]["x87"]["st"][0] ^= 1
    assert [p.split(":")[0] for p in _problems(record)] == ["x87.st0"]


@pytest.mark.parametrize("change, message", [
    (lambda r: r["final"].pop("system"), "come together"),
    (lambda r: r["final"]["system"].pop("cpl"), "the same keys"),
    (lambda r: r["initial"]["system"].update(gdt=1), "unknown keys gdt"),
    (lambda r: (r["initial"]["system"].pop("idtr"), r["final"]["system"].pop("idtr")),
     "needs initial.system.idtr"),
    (lambda r: r["initial"]["system"].update(cr0=0x10), "contradicts mode"),
    (lambda r: r["initial"]["system"]["tr"].update(attributes=0xFF008B00), "base and limit"),
    (lambda r: r.update(delivery="deliver"), "is not one of"),
    (lambda r: r["initial"]["system"]["segments"]["cs"].update(base=0x10), "differ from the "
     "memory at cs_base"),
])
def test_malformed_version_2_vectors_say_why(change: Any, message: str) -> None:
    record = _example("INT_Ib #14")
    change(record)
    with pytest.raises(VectorError, match=message):
        from_record_v2(record)


def test_code_is_read_through_the_page_tables() -> None:
    """With CR0.PG the bytes are fetched through CR3's tables: moving the code page's
    PTE (at 0xC004) elsewhere makes the fetch read other bytes, a malformed vector."""
    record = _example("MOV_eAX_Ov #18")
    record["initial"]["ram"] = [p if p[0] != 0xC005 else [0xC005, 0x20]
                                for p in record["initial"]["ram"]]
    with pytest.raises(VectorError, match="differ from the memory"):
        from_record_v2(record)


def _write(path: Path, version: int, *records: Dict[str, Any]) -> Path:
    lines = [json.dumps(make_header(version, form="X"))] + [json.dumps(r) for r in records]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_version_1_writers_and_readers_are_unchanged(tmp_path: Path) -> None:
    assert make_header()["version"] == 1
    sample = next(iter(find_vector_files([VECTORS / "corpus" / "prot32"])))
    assert read_header(sample)["version"] == 1  # type: ignore[index]
    assert all(entry.system is None for entry in read_vectors(sample))


def test_a_system_part_in_a_version_1_file_is_malformed(tmp_path: Path) -> None:
    path = _write(tmp_path / "v1.jsonl", 1, _example("WRMSR #54"))
    [problem] = list(scan_vectors(path))
    assert "version-1 file" in str(problem)
    ok = _write(tmp_path / "v2.jsonl", 2, _example("WRMSR #54"))
    [entry] = list(read_vectors(ok))
    assert entry.system is not None and entry.system.initial.msrs is not None


def test_unicorn_skips_idt_delivery_with_its_reason_and_never_passes(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.jsonl", 2, _example("INT_Ib #14"))
    result = replay_file(path, runner=None, engine="unicorn")  # type: ignore[arg-type]
    assert result.passed == 0 and result.failed == 0
    [skip] = result.skipped
    assert "never delivers them through the IDT" in skip.reason


def test_cpl_3_runs_on_unicorn_after_its_iret(tmp_path: Path) -> None:
    """CPL 3 on Unicorn: an IRET from a scratch page loads the stated ring-3 CS and SS.
    INT 0x20 at CPL 3, reported (not delivered): the reference's outcome is written, and
    Unicorn must give the same trap, EIP and CPL; without CS and SS stated it cannot."""
    from vectors.format import to_record
    from vectors.system_run import run_reference
    from vectors.system_state import SystemVector

    record = _example("INT_Ib #14")
    record.pop("delivery")
    record["final"] = {}
    record["final"]["system"] = record["initial"]["system"]
    record["final"].update(regs=record["initial"]["regs"], ram=[], exception=None)
    case, _, system = from_record_v2(record)
    assert system is not None
    reported = SystemVector(system.initial, system.initial)
    outcome, final = run_reference(case, reported)
    assert outcome.exception is not None and outcome.exception.kind == "trap"
    assert final.cpl == 3
    written = to_record(case, outcome, SystemVector(system.initial, final))
    path = _write(tmp_path / "c.jsonl", 2, written)
    result = replay_file(path, None, "unicorn")  # type: ignore[arg-type]
    assert (result.passed, result.failures, result.skipped) == (1, [], [])
    del written["initial"]["system"]["segments"]["ss"]
    del written["final"]["system"]["segments"]["ss"]
    path = _write(tmp_path / "n.jsonl", 2, written)
    [skip] = replay_file(path, None, "unicorn").skipped  # type: ignore[arg-type]
    assert "IRET to the stated CS and SS" in skip.reason


def test_json_lists_results_per_form(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from x86lab.cli import main

    good = _example("WRMSR #54")
    bad = _example("WRMSR #54")
    bad["name"] = "WRMSR broken"
    bad["final"]["system"]["msrs"]["0x174"] ^= 4
    path = _write(tmp_path / "w.jsonl", 2, good, bad, _example("INT_Ib #14"))
    status = main(["vectors", "run", "--engine", "unicorn", "--json", str(path)])
    report = json.loads(capsys.readouterr().out)
    assert status == 1
    assert (report["passed"], report["failed"], report["skipped"]) == (1, 1, 1)
    wrmsr = report["forms"]["WRMSR"]
    assert (wrmsr["passed"], wrmsr["failed"]) == (1, 1)
    assert wrmsr["failures"][0]["problems"][0].startswith("msr.0x174")
    assert "--name 'WRMSR broken'" in wrmsr["failures"][0]["reproducer"]
    assert report["forms"]["INT_Ib"]["skipped"] == 1


def test_unicorn_takes_x87_state_in_and_out_unchanged(tmp_path: Path) -> None:
    """The FRSTOR/FNSAVE stub: FNOP with every exception masked and nothing pending
    leaves the state as it was, so what comes out is what went in."""
    record = _example("FADD_Md #2")
    record["name"] = "FNOP"
    record["bytes"] = [0xD9, 0xD0]
    record["initial"]["ram"] = [[0x1000, 0xD9], [0x1001, 0xD0]]
    x87 = record["initial"]["system"]["x87"]
    x87.update(fcw=0x037F, fsw=0x3800, ftw=0x3885)  # R6 (ST(7)) empty: its tag must survive
    record["final"]["system"] = copy.deepcopy(record["initial"]["system"])
    record["final"].update(ram=[], exception=None)
    record["final"]["regs"] = dict(record["initial"]["regs"], eip=0x1002)
    path = _write(tmp_path / "x.jsonl", 2, record)
    result = replay_file(path, None, "unicorn")  # type: ignore[arg-type]
    assert (result.passed, result.failures) == (1, [])


# --- the committed corpus -------------------------------------------------------------

CORPUS_FILES = find_vector_files([CORPUS_V2]) if CORPUS_V2.is_dir() else []


def test_corpus_v2_is_present_small_and_headed() -> None:
    assert len(CORPUS_FILES) > 100
    assert sum(p.stat().st_size for p in CORPUS_FILES) < 1024 * 1024
    for path in CORPUS_FILES:
        header = read_header(path)
        assert header is not None and header["version"] == 2
        assert header["oracle"] in ORACLES and path.parts[-3] == header["group"]
        assert path.name == f"{header['form']}.jsonl.gz"
        if header["oracle"] == "native":
            assert header["cpu"]["vendor"]


@pytest.mark.parametrize("engine", ["reference", "unicorn"])
def test_a_sample_of_corpus_v2_replays(engine: str) -> None:
    """Two vectors a file; on Unicorn the groups it decided must pass and IDT delivery
    must be skipped (x87, decided by the CPU, is where Unicorn is known to differ, and
    decided-by-sdm holds its listed bugs: the next test)."""
    failures, skipped = [], 0
    for path in CORPUS_FILES:
        header = read_header(path)
        for entry in list(read_vectors(path))[:2]:
            assert entry.system is not None
            assert entry.expected.notes["oracle"] == header["oracle"]  # type: ignore[index]
            if engine == "unicorn" and (header["oracle"] == "native"  # type: ignore[index]
                                        or header["group"] == "decided-by-sdm"):  # type: ignore
                continue
            try:
                problems = system_differences(entry, engine)
            except Exception as exc:  # noqa: BLE001 - a skip is checked below
                assert engine == "unicorn" and header["group"] == "delivery"  # type: ignore
                assert "IDT" in str(exc)
                skipped += 1
                continue
            if problems:
                failures.append(f"{path.name} {entry.case.name}: {problems[:2]}")
    assert failures == []
    assert (skipped > 0) == (engine == "unicorn")


def test_unicorn_fails_the_sdm_decided_vectors_only_as_their_listed_bug() -> None:
    """``decided-by-sdm``: where Unicorn departs from the SDM as a known-divergence entry
    says; each vector names its entry, the reference passes it (the sample above), and
    Unicorn's differences are exactly what that entry explains."""
    from differential.known import load_known
    from ground.compare import compare
    from vectors.system_run import run_system
    from vectors.system_state import compare_states

    known = {entry.id: entry for entry in load_known()}
    paths = find_vector_files([CORPUS_V2 / "decided-by-sdm"])
    assert {p.name for p in paths} >= {"LTR_Ew.jsonl.gz", "RDMSR.jsonl.gz", "WRMSR.jsonl.gz"}
    seen = set()
    for path in paths:
        for entry in read_vectors(path):
            assert entry.system is not None
            named = known[entry.expected.notes["known"]]
            seen.add(named.id)
            theirs, state = run_system("unicorn", entry.case, entry.system)
            differences = compare(entry.case, theirs, entry.expected) + compare_states(
                entry.system.final, state, ("segments.hidden",))
            assert differences, entry.case.name
            assert named.matches_case(entry.case, differences, theirs.notes, "unicorn"), \
                (entry.case.name, [d.render("unicorn", "expected") for d in differences])
    assert {"unicorn-ltr-null-selector-raises-no-gp", "unicorn-ltr-caches-the-tss-as-available",
            "unicorn-unknown-msr-raises-no-gp"} <= seen


def test_the_stdlib_consumer_skips_version_2_vectors(tmp_path: Path) -> None:
    """consume.py runs only version 1's machine: a NOP with CPL 3 state is skipped, not
    passed."""
    import subprocess
    import sys

    record = _example("INT_Ib #14")
    record.pop("delivery")
    record["bytes"] = [0x90]
    record["initial"]["ram"] = [[0x1000, 0x90]] + record["initial"]["ram"][2:]
    record["final"].update(exception=None, ram=[], regs=dict(record["initial"]["regs"],
                                                             eip=0x1001))
    path = tmp_path / "v2.jsonl.gz"
    with gzip.open(path, "wt") as stream:
        stream.write(json.dumps(make_header(2)) + "\n" + json.dumps(record) + "\n")
    done = subprocess.run([sys.executable, str(VECTORS / "examples" / "consume.py"),
                           str(path)], capture_output=True, text=True, check=True)
    assert "passed 0, failed 0, skipped 1" in done.stdout


def test_unicorn_fails_corpus_v2_only_as_its_known_entries() -> None:
    """The whole version-2 corpus on Unicorn: every vector passes, is skipped with a reason
    (IDT delivery), or fails exactly as one entry of differential/known_divergences.toml
    says (x87: decided by the CPU, where Unicorn 2.1.4 is no oracle; decided-by-sdm: its
    listed system-level bugs). A new kind of difference would be an unexplained failure."""
    from differential.known import vector_explainer
    from vectors.replay import replay_files

    results = replay_files(CORPUS_FILES, None, "unicorn", known=vector_explainer("unicorn"))  # type: ignore
    failures = [f"{f.name}: {f.problems[:3]}" for r in results for f in r.failures]
    assert failures == []
    entries = {k.entry for r in results for k in r.known}
    assert {"unicorn-x87-no-stack-fault", "unicorn-x87-status-flags",
            "unicorn-x87-pending-exception-not-raised", "unicorn-rdpmc-raises-ud",
            "unicorn-sysenter-is-not-executed", "unicorn-mov-dr-ignores-general-detect"} <= entries
    known_x87 = sum(1 for r in results for k in r.known if r.path.parts[-3] == "x87")
    passed_x87 = sum(r.passed for r in results if r.path.parts[-3] == "x87")
    assert known_x87 + passed_x87 == sum(1 for p in CORPUS_FILES if p.parts[-3] == "x87"
                                         for _ in read_vectors(p))


def test_fxsave_leaves_the_implementation_dependent_bytes_open() -> None:
    """FXSAVE with CR4.OSFXSR clear: MXCSR and the XMM area are saved or not as the
    implementation likes (SDM Vol. 2A, FXSAVE), so the vector's undefined_dest lists
    them, with the reserved bytes, as several ranges; a wrong byte there passes, a wrong
    FCW (bytes 0-1 of the image) does not."""
    record = corpus_line("vectors/corpus-v2/x87/prot32/FXSAVE_M.jsonl.gz", "FXSAVE_M #0")
    ranges = [item.split(":") for item in record["undefined_dest"].split(",")]
    assert len(ranges) == 10 and all(kind == "mem" for kind, _, _ in ranges)
    image = int(ranges[0][1], 16) - 24  # the first open range is MXCSR at offset 24
    assert [(int(a, 16) - image, int(n)) for _, a, n in ranges][::9] == [(24, 8), (160, 352)]

    def with_byte(offset: int, value: int) -> List[str]:
        changed = copy.deepcopy(record)
        ram = [p for p in changed["final"]["ram"] if p[0] != image + offset]
        changed["final"]["ram"] = ram + [[image + offset, value]]
        return _problems(changed)

    assert with_byte(200, 0xA5) == []             # XMM1: open
    assert with_byte(0, 0xA5)[0].startswith(f"mem[{image:#x}]")  # FCW: compared


def test_undefined_fsw_leaves_the_sdms_undefined_condition_bits_open() -> None:
    """FINCSTP: "C1 Set to 0. C0, C2, C3 Undefined." (SDM Vol. 2A, FINCSTP, FPU Flags
    Affected): the vector carries 0x4500 (C3 bit 14, C2 bit 10, C0 bit 8); a wrong C0
    passes, a wrong C1 (bit 9) fails; and the mask needs x87 state."""
    from reference.isa.table import BY_NAME

    # the table's rows, read against each instruction's "FPU Flags Affected"
    assert BY_NAME["FSIN"].fpu_undefined == 0x4100      # C2 says out of range
    assert BY_NAME["FCOM_Md"].fpu_undefined == 0        # the comparison sets C0 C2 C3
    assert BY_NAME["FNSTSW_AX"].fpu_undefined == 0x4700  # all four undefined
    assert BY_NAME["FCOMI_ST0_STi"].fpu_undefined == 0  # C0, C2, C3 not affected
    record = corpus_line("vectors/corpus-v2/x87/prot32/FINCSTP.jsonl.gz", "FINCSTP #0")
    assert record["undefined_fsw"] == 0x4500
    x87 = record["final"]["system"]["x87"]
    x87["fsw"] ^= 0x0100
    assert _problems(record) == []
    x87["fsw"] ^= 0x0200
    assert [p.split(":")[0] for p in _problems(record)] == ["x87.fsw.C1"]
    wrmsr = _example("WRMSR #54")
    wrmsr["undefined_fsw"] = 0x4500
    with pytest.raises(VectorError, match="undefined_fsw needs initial.system.x87"):
        from_record_v2(wrmsr)
