"""Comparing printed results: line differences grouped by test, a dead program's tail."""

from __future__ import annotations

from conformance.busybox_suite import parse_run
from conformance.program_output import compare_output, symbolize

EXPECTED = "addl A=1 R=2\naddl A=3 R=4\nsubl A=5 R=0\nmull A=2 R=4\nstatus=0\n"


def test_identical_output_passes_every_line() -> None:
    result = compare_output(EXPECTED, EXPECTED)
    assert (result.passed, result.total, result.diffs) == (5, 5, [])


def test_a_changed_line_is_grouped_by_its_test_name() -> None:
    got = EXPECTED.replace("subl A=5 R=0", "subl A=5 R=1")
    result = compare_output(EXPECTED, got)
    assert list(result.by_test()) == ["subl"]
    assert result.by_test()["subl"][0].got == "subl A=5 R=1"
    assert result.passed == 4


def test_a_program_that_died_leaves_lines_never_reached() -> None:
    got = "\n".join(EXPECTED.splitlines()[:2]) + "\n"
    result = compare_output(EXPECTED, got)
    assert result.never_reached == 3
    assert result.first_unreached == "subl A=5 R=0"


def test_addresses_inside_the_binary_become_symbols() -> None:
    table = ([0x08049000, 0x08049100, 0x0804A000], ["main", "test_segs", "_end"])
    text = "trapno=0000000d err=00000000 EIP=08049123\nA=08049123"
    assert symbolize(text, table) == "trapno=0000000d err=00000000 EIP=<test_segs+0x23>\n" \
        "A=08049123"


def test_busybox_verdict_lines() -> None:
    out = "PASS: cat-works\nFAIL: xargs -n1\nnoise\nSKIPPED: tar bz2\nfoo: bar\n"
    assert parse_run(out).verdicts == {"cat-works": "PASS", "xargs -n1": "FAIL",
                                       "tar bz2": "SKIPPED"}


def test_a_crash_message_and_status_count_against_the_first_lines_only() -> None:
    got = "addl A=1 R=2\naddl A=3 R=4Illegal instruction\nstatus=132\n"
    result = compare_output(EXPECTED, got)
    assert [d.got for d in result.diffs] == ["addl A=3 R=4Illegal instruction", "status=132"]
    assert result.never_reached == 2 and result.first_unreached == "mull A=2 R=4"


def test_a_garbled_stepper_line_is_a_crash_not_an_error() -> None:
    from conformance.tests.conftest import make_case
    from differential.runners.native_runner import parse_output

    cases = [make_case(bytes.fromhex("90")), make_case(bytes.fromhex("90"))]
    good = "0 S 1 0 " + " ".join(["0"] * 8) + " 10011 302"
    [first, second] = parse_output(cases, good + "\n1 S 1 0 0 0 0 0 0 0 0 0 10011 302 20000:0@")
    assert first.status == "ran" and first.outcome.regs["eip"] == 0x10011
    assert (second.status, second.reason) == ("crashed", "garbled output line")
