"""Linux's x86 selftests as a suite: reading the runner's output, aligning verdict lines by
section, masking what the kernel or the run (not the CPU) decides, listing a test that
does not build with the compiler's reason, and the guest-kernel entries' precision."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conformance import selftests
from conformance.findings import Finding, load_known
from conformance.suites.selftests import GUEST_KERNEL, compare_test, line_differences
from differential.cpu_identity import this_cpu

NATIVE = """selftest-begin=sigreturn
[RUN]\tValid sigreturn: 32-bit CS (23), 32-bit SS (2b, GDT)
[OK]\tall registers okay
[RUN]\t32-bit CS (23), bogus SS (47)
[OK]\tGot #GP(0x0) (i.e. Segmentation fault)

selftest-end=sigreturn 0 10.00 10.25
selftest-begin=unwind_vdso
[OK]\tAT_SYSINFO maps to linux-gate.so.1, loaded at 0x0xf7f25000
[OK]\t  NR = 2838, args = 1, 2
[OK]\tGDT entry 13 has AR 0x0040F300 and limit 0x000FFFFF

selftest-end=unwind_vdso 1 10.25 10.50
"""
GUEST = NATIVE.replace("(23)", "(73)").replace("(2b, GDT)", "(7b, GDT)").replace(
    "[OK]\tall registers okay", "[OK]\tall registers okay\n[WARN]\tnoise\n[SKIP]\textra").replace(
    "#GP(0x0) (i.e. Segmentation fault)", "#IRET(0x0) (i.e. Illegal instruction)").replace(
    "0x0xf7f25000", "0x0xb7fe2000").replace("2838", "157").replace("entry 13", "entry 7")


def test_parse_run_keeps_status_seconds_sections_and_masks_addresses() -> None:
    runs = selftests.parse_run(NATIVE)
    sigreturn, unwind = runs["sigreturn"], runs["unwind_vdso"]
    assert (sigreturn.status, sigreturn.seconds) == (0, 0.25)
    assert sigreturn.verdicts == ["[OK]\tall registers okay",
                                  "[OK]\tGot #GP(0x0) (i.e. Segmentation fault)"]
    assert sigreturn.sections == ["Valid sigreturn: 32-bit CS (23), 32-bit SS (2b, GDT)",
                                  "32-bit CS (23), bogus SS (47)"]
    assert unwind.status == 1
    assert unwind.verdicts[0].endswith("loaded at 0x…")  # an address, lowercase hex
    assert unwind.verdicts[2] == "[OK]\tGDT entry (TLS) has AR 0x0040F300 and limit 0x000FFFFF"
    assert "[RUN]" in sigreturn.output  # the whole output is kept for the report


def test_a_line_that_varies_between_native_runs_is_compared_without_its_numbers() -> None:
    first = selftests.parse_run(NATIVE)
    second = selftests.parse_run(NATIVE.replace("2838", "2901"))
    shapes = selftests.unstable_shapes(first, second)
    assert shapes == {"[OK]\t  NR = #, args = #, #"}
    guest = selftests.parse_run(GUEST)
    assert line_differences(first["unwind_vdso"], guest["unwind_vdso"], shapes) == []
    # Without the second run the PID shows as a difference.
    [difference] = line_differences(first["unwind_vdso"], guest["unwind_vdso"], set())
    assert "2838" in difference.expected and "157" in difference.got
    # A verdict that changes word still differs, masked or not.
    failed = selftests.parse_run(GUEST.replace("[OK]\t  NR", "[FAIL]\t  NR"))
    assert len(line_differences(first["unwind_vdso"], failed["unwind_vdso"], shapes)) == 1


def test_lines_pair_in_order_and_sections_are_named_without_selectors() -> None:
    native, guest = selftests.parse_run(NATIVE), selftests.parse_run(GUEST)
    found = line_differences(native["sigreturn"], guest["sigreturn"], set())
    assert [(d.section, d.expected, d.got) for d in found] == [
        ("32-bit CS (…), bogus SS (…)", "[OK]\tGot #GP(0x0) (i.e. Segmentation fault)",
         "[SKIP]\textra"),
        ("32-bit CS (…), bogus SS (…)", "(no line)",
         "[OK]\tGot #IRET(0x0) (i.e. Illegal instruction)")]
    # A case skipped without its [RUN] line (sigreturn's 64-bit CS under a 32-bit kernel)
    # pairs with the line it replaces and takes that line's section.
    skipped = selftests.parse_run(NATIVE.replace(
        "[RUN]\tValid sigreturn: 32-bit CS (23), 32-bit SS (2b, GDT)\n[OK]\tall registers okay",
        "[SKIP]\tCode segment unavailable for 32-bit CS"))
    [difference] = line_differences(native["sigreturn"], skipped["sigreturn"], set())
    assert (difference.section, difference.expected, difference.got) == (
        "Valid sigreturn: 32-bit CS (…), 32-bit SS (…, GDT)", "[OK]\tall registers okay",
        "[SKIP]\tCode segment unavailable for 32-bit CS")


def test_compare_test_gives_one_finding_per_section_and_one_for_the_status() -> None:
    native, guest = selftests.parse_run(NATIVE), selftests.parse_run(GUEST)
    assert compare_test("qemu", "sigreturn", native["sigreturn"], native["sigreturn"],
                        "/bin/x", 60, set()) == []
    cut_off = selftests.TestRun(status=143, verdicts=guest["sigreturn"].verdicts,
                                sections=guest["sigreturn"].sections)
    findings = compare_test("v86", "sigreturn", native["sigreturn"], cut_off, "/bin/x", 60,
                            set())
    assert [f.group for f in findings] == ["sigreturn: (exit status)",
                                           "sigreturn: 32-bit CS (…), bogus SS (…)"]
    assert findings[1].count == 2
    assert findings[0].summary == "native exit 0, v86 cut off by the 60 s limit"
    assert findings[1].reproducer["guest_command"] == \
        "timeout 60 /opt/x86lab/selftests/sigreturn_32"


def _finding(group: str, expected: str, got: str) -> Finding:
    return Finding("qemu", "selftests", group, 1, f"expected {expected!r}, got {got!r}")


def test_guest_kernel_entries_match_only_the_line_the_kernel_explains() -> None:
    entries = load_known(GUEST_KERNEL)
    explained = _finding("syscall_arg_fault: SYSCALL with invalid state",
                         "[OK]\tSeems okay", "[SKIP]\tIllegal instruction")
    other = _finding("syscall_arg_fault: SYSCALL with invalid state",
                     "[OK]\tSeems okay", "[FAIL]\tGot SIGSEGV")
    assert any(entry.matches_finding(explained) for entry in entries)
    assert not any(entry.matches_finding(other) for entry in entries)
    amd_only = _finding("syscall_arg_fault: SYSENTER with invalid state",
                        "[SKIP]\tIllegal instruction", "[OK]\tSeems okay")
    [entry] = [e for e in entries if e.matches_finding(amd_only)]
    assert entry.applies_here("AuthenticAMD family 25") and not entry.applies_here(
        "GenuineIntel family 6")


def test_a_test_that_does_not_build_is_listed_with_the_compilers_reason(
        tmp_path: Path) -> None:
    source, out = tmp_path / "src", tmp_path / "out"
    source.mkdir()
    out.mkdir()
    (source / "helpers.h").write_text("")
    (source / "broken.c").write_text("int main(void) { return missing_symbol; }\n")
    binary, reason = selftests._compile("broken", source, out)
    assert "missing_symbol" in reason and "error" in reason
    assert not binary.exists()
    assert selftests._compile("broken", source, out)[1] == reason  # remembered, not rebuilt


def test_a_machine_without_gcc_is_an_error_not_a_remembered_failure(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source, out = tmp_path / "src", tmp_path / "out"
    source.mkdir()
    out.mkdir()
    (source / "helpers.h").write_text("")
    (source / "fine.c").write_text("int main(void) { return 0; }\n")
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    with pytest.raises(selftests.SourceError, match="gcc could not run"):
        selftests._compile("fine", source, out)
    assert list(out.iterdir()) == []  # a later run with gcc builds it


def test_the_runner_script_brackets_each_test_with_its_status(tmp_path: Path) -> None:
    """The script as the guest runs it, with a stand-in ``timeout`` that just runs the
    command (BusyBox's is in the guest and in the native run)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "timeout").write_text('#!/bin/sh\nshift\nexec "$@"\n')
    (tmp_path / "one_32").write_text("#!/bin/sh\nprintf '[RUN]\\tx\\n[FAIL]\\ty'\nexit 3\n")
    (tmp_path / "two_32").write_text("#!/bin/sh\necho '[OK]\\tz'\n")
    for path in (bin_dir / "timeout", tmp_path / "one_32", tmp_path / "two_32"):
        path.chmod(0o755)
    script = tmp_path / "run.sh"
    script.write_text(selftests.SCRIPT)
    out = tmp_path / "out.txt"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    subprocess.run(["sh", str(script), str(tmp_path), str(out), "5", "one", "two"],
                   check=True, env=env)
    runs = selftests.parse_run(out.read_text())
    assert runs["one"].status == 3 and runs["one"].verdicts == ["[FAIL]\ty"]
    assert runs["two"].status == 0 and runs["two"].verdicts == ["[OK]\tz"]


@pytest.mark.slow
def test_every_32_bit_selftest_builds_or_says_why_and_runs_on_this_cpu() -> None:
    built = selftests.build()
    assert sorted([*built.binaries, *built.failed]) == sorted(selftests.TESTS)
    assert all(reason for reason in built.failed.values())
    runs = selftests.parse_run(selftests.run_natively(built))
    assert set(runs) == set(built.binaries)
    assert all(run.status != -1 for run in runs.values())


@pytest.mark.slow
def test_the_amd_sysenter_entry_applies_exactly_where_this_cpu_refuses_sysenter() -> None:
    """The claim behind the entry with ``cpu = "AuthenticAMD"``: under this machine's
    64-bit kernel SYSENTER is refused (SIGILL) on AMD and runs elsewhere."""
    built = selftests.build()
    run = selftests.parse_run(selftests.run_natively(built))["syscall_arg_fault"]
    refused = run.verdicts[run.sections.index("SYSENTER with invalid state")] == \
        "[SKIP]\tIllegal instruction"
    [entry] = [e for e in load_known(GUEST_KERNEL) if e.cpu]
    assert entry.applies_here(this_cpu().describe()) is refused
