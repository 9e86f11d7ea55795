"""Data breakpoints (SDM Vol. 3B, 17.2.4-17.2.5 and 17.3.1.2): DR7 R/W = 01 (writes) and
11 (reads or writes), LEN 00/01/11 (1, 2, 4 bytes, DRn aligned down by LEN), enabled by
Ln or Gn. A match is a trap: the instruction completes, then #DB with DR6.Bn set; a REP
string instruction traps after the iteration that matched.

Expected values are worked out here from those rules (DR7's layout in Figure 17-1: Ln at
bit 2n, Gn at bit 2n + 1, R/Wn at 16 + 4n, LENn at 18 + 4n; bit 10 reads as 1; DR6 reads
0xFFFF0FF0 after reset on the P6, B0-B3 its bits 0-3, BS bit 14). No test depends on
what the SDM leaves undefined (B bits of breakpoints that are not enabled, LEN = 10).
"""

from __future__ import annotations

from typing import Dict, Optional

import pytest

from reference.cpu import Cpu
from reference.faults import DB, DE
from reference.step import StepResult
from reference.system.debug_registers import watch
from reference.tests.conftest import CODE, DATA, STACK_TOP, make_cpu

DR6_RESET = 0xFFFF0FF0
DR6_BS = 1 << 14
WRITES, READS_WRITES = 0b01, 0b11
LEN1, LEN2, LEN4 = 0b00, 0b01, 0b11
TF = 1 << 8


def dr7(n: int, rw: int, length: int, enable: str = "L") -> int:
    """DR7 with breakpoint ``n`` enabled (``enable`` "L", "G" or "" for neither)."""
    bits = 0x400 | rw << 16 + 4 * n | length << 18 + 4 * n
    if "L" in enable:
        bits |= 1 << 2 * n
    if "G" in enable:
        bits |= 1 << 2 * n + 1
    return bits


def arm(cpu: Cpu, settings: Dict[int, int]) -> None:
    """Put DRn values and DR7 in (``settings``: slot -> value, 5 = DR7), as a loader
    does, then let the CPU recompute what it watches."""
    for slot, value in settings.items():
        cpu.dr[slot] = value
    watch(cpu)


def moffs(opcode: str, address: int) -> bytes:
    """MOV AL/EAX to or from memory at an absolute 32-bit offset (A0-A3 moffs32)."""
    return bytes.fromhex(opcode) + address.to_bytes(4, "little")


def kind(result: StepResult) -> Optional[str]:
    """The exception's kind ("fault", "trap") or None when the step ended without one."""
    return None if result.exception is None else result.exception.kind


def test_write_breakpoint_is_a_trap_after_the_write() -> None:
    """MOV [DATA+6], AL with a 4-byte write breakpoint at DATA+4: the byte is stored,
    EIP is past the instruction, then #DB (a trap) with DR6.B0 set."""
    code = moffs("a2", DATA + 6) + b"\x90"
    cpu = make_cpu(code, "prot32", eax=0x5A)
    arm(cpu, {0: DATA + 4, 5: dr7(0, WRITES, LEN4)})
    result = cpu.step()
    assert result.exception.vector == DB and kind(result) == "trap"
    assert cpu.eip == CODE + 5 and cpu.mem.read_int(DATA + 6, 1) == 0x5A
    assert cpu.dr[4] == DR6_RESET | 1


@pytest.mark.parametrize("address, length, accessed, hit", [
    (DATA + 7, LEN4, DATA + 4, True),    # DR0 aligned down to DATA+4: DATA+4..7
    (DATA + 7, LEN4, DATA + 8, False),
    (DATA + 5, LEN2, DATA + 4, True),    # aligned down to DATA+4: DATA+4..5
    (DATA + 5, LEN2, DATA + 6, False),
    (DATA + 5, LEN1, DATA + 5, True),
    (DATA + 5, LEN1, DATA + 4, False),
])
def test_address_is_aligned_down_by_len(address: int, length: int, accessed: int,
                                        hit: bool) -> None:
    """17.2.5: the processor masks DRn's low bits by LEN (2 bytes: bit 0, 4 bytes: bits
    0-1); a byte write inside the masked range matches, one outside does not."""
    cpu = make_cpu(moffs("a2", accessed), "prot32")
    arm(cpu, {0: address, 5: dr7(0, WRITES, length)})
    assert kind(cpu.step()) == ("trap" if hit else None)


@pytest.mark.parametrize("start, size, hit", [
    (DATA + 2, 4, True),    # bytes DATA+2..5 include DATA+5
    (DATA + 6, 2, False),   # DATA+6..7
    (DATA + 4, 1, False),
    (DATA + 4, 2, True),    # DATA+4..5
])
def test_any_byte_of_the_access_in_the_range_matches(start: int, size: int, hit: bool) -> None:
    """A one-byte write breakpoint at DATA+5 and writes of 1, 2 or 4 bytes around it."""
    code = {1: moffs("a2", start), 2: b"\x66" + moffs("a3", start),
            4: moffs("a3", start)}[size]
    cpu = make_cpu(code, "prot32")
    arm(cpu, {0: DATA + 5, 5: dr7(0, WRITES, LEN1)})
    assert kind(cpu.step()) == ("trap" if hit else None)


def test_reads_match_only_read_write_breakpoints() -> None:
    """R/W = 01 is data writes only: MOV AL, [DATA] does not match it; R/W = 11 (reads or
    writes) does, and the read's value is in AL before the trap."""
    code = moffs("a0", DATA)
    cpu = make_cpu(code, "prot32")
    cpu.mem.write_bytes(DATA, b"\x77")
    arm(cpu, {3: DATA, 5: dr7(3, WRITES, LEN1)})
    assert cpu.step().exception is None
    cpu = make_cpu(code, "prot32")
    cpu.mem.write_bytes(DATA, b"\x77")
    arm(cpu, {3: DATA, 5: dr7(3, READS_WRITES, LEN1)})
    result = cpu.step()
    assert kind(result) == "trap" and cpu.get_reg("al") == 0x77
    assert cpu.dr[4] == DR6_RESET | 1 << 3


@pytest.mark.parametrize("enable, fires", [("", False), ("L", True), ("G", True), ("LG", True)])
def test_enabled_by_local_or_global_bit(enable: str, fires: bool) -> None:
    cpu = make_cpu(moffs("a2", DATA), "prot32")
    arm(cpu, {1: DATA, 5: dr7(1, WRITES, LEN1, enable)})
    result = cpu.step()
    assert kind(result) == ("trap" if fires else None)
    if fires:
        assert cpu.dr[4] & 0xF == 1 << 1


def test_two_matching_breakpoints_set_both_bits() -> None:
    cpu = make_cpu(moffs("a3", DATA), "prot32")
    arm(cpu, {0: DATA, 2: DATA + 3,
              5: dr7(0, WRITES, LEN1) | dr7(2, READS_WRITES, LEN1, "G")})
    assert kind(cpu.step()) == "trap"
    assert cpu.dr[4] == DR6_RESET | 1 | 1 << 2


def test_single_step_and_data_breakpoint_share_one_db() -> None:
    """TF = 1 and a matching write: one #DB trap after the instruction, DR6.BS and B0."""
    cpu = make_cpu(moffs("a2", DATA) + b"\x90", "prot32")
    arm(cpu, {0: DATA, 5: dr7(0, WRITES, LEN1)})
    cpu.flags.value |= TF
    result = cpu.step()
    assert result.exception.vector == DB and kind(result) == "trap"
    assert cpu.dr[4] == DR6_RESET | DR6_BS | 1 and cpu.eip == CODE + 5


def test_mov_to_debug_registers_arms_and_disarms() -> None:
    """MOV DR0, EBX; MOV DR7, EAX arm a write breakpoint; the store traps; MOV DR7, ECX
    (DR7 = 0x400, nothing enabled) disarms it: the same store then runs on."""
    store = moffs("a2", DATA + 1)
    code = (bytes.fromhex("0f 23 c3 0f 23 f8") + store
            + bytes.fromhex("0f 23 f9") + store)
    cpu = make_cpu(code, "prot32", eax=dr7(0, WRITES, LEN2), ebx=DATA, ecx=0x400)
    result = cpu.run(10)
    assert kind(result) == "trap" and cpu.eip == CODE + 11
    assert cpu.dr[4] & 0xF == 1
    assert cpu.run(2) is None and cpu.eip == CODE + 19


def test_faulting_instruction_reports_no_data_breakpoint() -> None:
    """DIV dword [DATA] reads a watched dword (R/W = 11) and faults with #DE (divisor
    0): a fault, not #DB; the instruction did not complete, so nothing is reported for
    it and the next instruction (NOP) runs without a #DB."""
    code = bytes.fromhex("f7 35") + DATA.to_bytes(4, "little") + b"\x90"
    cpu = make_cpu(code, "prot32")
    arm(cpu, {0: DATA, 5: dr7(0, READS_WRITES, LEN4)})
    result = cpu.step()
    assert result.exception.vector == DE and kind(result) == "fault"
    assert cpu.dr[4] & 0xF == 0
    cpu.eip = CODE + 6
    assert cpu.step().exception is None


@pytest.mark.parametrize("use_run", [False, True])
def test_rep_stos_traps_after_the_iteration_that_hit(use_run: bool) -> None:
    """REP STOSB, ECX = 8, EDI = DATA, with a write breakpoint on DATA+3 (17.3.1.2): four
    iterations store AL at DATA..DATA+3, then #DB with ECX = 4, EDI = DATA+4 and EIP still
    on the instruction; resumed, it finishes (ECX = 0) and stops at the HLT after it."""
    cpu = make_cpu(bytes.fromhex("f3 aa f4"), "prot32", eax=0xAB, ecx=8, edi=DATA)
    arm(cpu, {0: DATA + 3, 5: dr7(0, WRITES, LEN1)})
    if use_run:
        result = cpu.run(100)
    else:
        result = cpu.step()
        while result.exception is None:
            result = cpu.step()
    assert result.exception.vector == DB and kind(result) == "trap"
    assert (cpu.eip, cpu.get_reg("ecx"), cpu.get_reg("edi")) == (CODE, 4, DATA + 4)
    assert cpu.mem.read_bytes(DATA, 5) == b"\xab" * 4 + b"\x00"
    result = cpu.run(100)
    assert result is not None and result.halted and result.exception is None
    assert cpu.get_reg("ecx") == 0 and cpu.mem.read_bytes(DATA, 9) == b"\xab" * 8 + b"\x00"
    assert not cpu.flags.value & TF


def test_rep_movs_read_breakpoint_on_the_source() -> None:
    """REP MOVSD, ECX = 3, ESI = DATA, EDI = DATA+0x100, R/W = 11 on DATA+4 (LEN 4):
    the second iteration reads it, so the trap comes with ECX = 1, ESI = DATA+8."""
    cpu = make_cpu(bytes.fromhex("f3 a5"), "prot32", ecx=3, esi=DATA, edi=DATA + 0x100)
    arm(cpu, {1: DATA + 4, 5: dr7(1, READS_WRITES, LEN4)})
    result = cpu.run(100)
    assert kind(result) == "trap" and cpu.eip == CODE
    assert (cpu.get_reg("ecx"), cpu.get_reg("esi")) == (1, DATA + 8)
    assert cpu.dr[4] & 0xF == 1 << 1


def test_pop_ss_holds_the_trap_back_one_instruction() -> None:
    """Real mode, POP SS reads a watched word of the stack: debug exceptions are held
    off after POP SS (SDM Vol. 3A, 6.8.3), so the #DB comes after the NOP that follows,
    EIP past that NOP."""
    sp = STACK_TOP - 2
    cpu = make_cpu(bytes.fromhex("17 90 90"), "real16", esp=sp)
    arm(cpu, {0: sp, 5: dr7(0, READS_WRITES, LEN2)})
    assert cpu.step().exception is None
    result = cpu.step()
    assert kind(result) == "trap" and cpu.eip == CODE + 2
    assert cpu.dr[4] & 0xF == 1


def test_nothing_watched_while_no_data_breakpoint_is_enabled() -> None:
    """Execute breakpoints (R/W = 00) and disabled data breakpoints leave the memory path
    unwatched (the empty tuples ``Cpu.read``/``Cpu.write`` test)."""
    cpu = make_cpu(b"\x90", "prot32")
    arm(cpu, {0: DATA, 1: DATA, 5: dr7(0, 0b00, LEN1) | dr7(1, WRITES, LEN1, "")})
    assert cpu.watch_reads == () and cpu.watch_writes == ()
