"""The fallback for engines without a single-step trap: a sentinel INT3 stops a vector
where TF would, the real CPU vetoes sentinels that change a result, and the TF probe
reads as the SDM says on this machine's CPU."""

from __future__ import annotations

import struct

import pytest

from conformance import single_step
from conformance.sentinels import candidate, checked_stops
from conformance.tests.conftest import CODE_PAGE, make_case
from differential.runners.native_runner import Stop, encode, parse_output, run_natively
from ground.case import Exc, Outcome

pytestmark = pytest.mark.usefixtures("stepper_available")
INSN = CODE_PAGE + 0x10


def _expected(case, eip: int, exception=None) -> Outcome:
    """Only what the sentinel rules read: EIP after the instruction and the exception."""
    return Outcome({**case.regs, "eip": eip}, dict(case.memory), exception)


def test_a_sentinel_stops_an_add_where_the_single_step_would() -> None:
    a, b = 0xFFFFFFF0, 0x25
    case = make_case(bytes.fromhex("01d8"), {"eax": a, "ebx": b})  # add eax, ebx
    data = encode([case], [Stop(INSN + 2)])
    [result] = parse_output([case], run_natively(data, stop="sentinel"))
    assert result.stop == "sentinel"
    assert result.outcome.exception is None
    assert result.outcome.regs["eax"] == (a + b) & 0xFFFFFFFF
    assert result.outcome.regs["eip"] == INSN + 2
    assert result.outcome.memory == case.memory  # the INT3 was put back


def test_without_a_sentinel_a_vector_that_expects_no_exception_is_not_run() -> None:
    case = make_case(bytes.fromhex("90"))
    [result] = parse_output([case], run_natively(encode([case]), stop="sentinel"))
    assert result.status == "inexpressible" and "sentinel" in result.reason


def test_no_sentinel_on_the_instruction_itself_and_after_it_for_an_exception() -> None:
    jump_to_self = make_case(bytes.fromhex("ebfe"))
    assert candidate(jump_to_self, _expected(jump_to_self, INSN)).sentinel is None
    divide = make_case(bytes.fromhex("f7f1"))  # div ecx, ecx = 0: #DE
    stop = candidate(divide, _expected(divide, INSN, Exc(0, "fault")))
    assert stop == Stop(INSN + 2, expects_exception=True)


def test_the_cpu_vetoes_a_sentinel_that_the_instruction_reads() -> None:
    reads_next = make_case(b"\xa0" + struct.pack("<I", INSN + 5))  # mov al, [INSN+5]
    add = make_case(bytes.fromhex("01d8"))
    stops = checked_stops([reads_next, add], [_expected(reads_next, INSN + 5),
                                              _expected(add, INSN + 2)])
    assert stops == [Stop(None), Stop(INSN + 2)]


def test_this_cpu_single_steps_as_the_sdm_says() -> None:
    """SDM Vol. 3A 17.3.1.4: TF set by POPF traps after the instruction after POPF; set by
    IRET (sigreturn), after the first instruction; INT3 traps with EIP after it."""
    lines = single_step.run_natively().splitlines()
    assert lines == ["popf: 1@+1 1@+2 1@+3 1@+4 end:SIGILL:6@+8",
                     "sigreturn: 1@+1 1@+2 1@+3 1@+4 end:SIGILL:6@+8", "int3: 3@+2"]


def test_an_engine_that_ignores_tf_gets_one_finding() -> None:
    native = single_step.run_natively()
    assert single_step.finding("qemu", native, "noise\n" + native) is None
    ignored = "popf: end:SIGILL:6@+8\nsigreturn: end:SIGILL:6@+8\nint3: 3@+2\n"
    found = single_step.finding("v86", native, ignored)
    assert found is not None and found.group == single_step.GROUP
    assert found.reproducer["got"] == ignored.strip()
