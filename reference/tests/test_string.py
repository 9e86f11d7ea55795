"""String instructions with REP/REPE/REPNE (SDM Vol. 2B: MOVS, CMPS, STOS, LODS, SCAS, REP).

Two kinds of check: a sweep of every string form against Unicorn over prefixes (66, 67,
F3, F2, a segment override), DF and counts; and hand-computed cases from the SDM's
Operation text with Python doing the arithmetic (bytes copied, where REPE stops, the
strlen idiom, SI/DI/CX wrapping at 64 KiB, a fault part-way through a REP).
"""

from __future__ import annotations

import dataclasses
import random
from typing import Dict, List, Optional, Tuple

import pytest

from ground.case import Case
from reference import Cpu, SparseMemory, StepResult
from reference.flags import CF, DF, SF, ZF
from reference.tests.conftest import CODE, DATA
from reference.tests.handmade import compare, forms_of, make_case

PAGE = 4096
SOURCE, DEST = DATA + 0x100, DATA + 0x800  # eSI and eDI start here, room both ways
STRING_FORMS = forms_of("MOVS", "CMPS", "STOS", "LODS", "SCAS")


def _case(code: bytes, mode: str, data: bytes, extra: Optional[Dict[int, bytes]] = None,
          **regs: int) -> Case:
    """A handmade case with ``data`` in the data page and optional ``extra`` pages."""
    case = make_case(code, mode, data, **regs)
    memory = dict(case.memory)
    for base, content in (extra or {}).items():
        memory[base] = content.ljust(PAGE, b"\0")
    return dataclasses.replace(case, memory=memory)


def _cpu(case: Case) -> Cpu:
    """A reference CPU in ``case``'s initial state."""
    memory = SparseMemory()
    for base, content in case.memory.items():
        memory.map(base, content)
    cpu = Cpu(memory, case.mode)
    for name, value in case.regs.items():
        cpu.set_reg(name, value)
    return cpu


def _run(case: Case) -> Tuple[Cpu, StepResult]:
    """One step of ``case`` on the reference."""
    cpu = _cpu(case)
    return cpu, cpu.step()


def _sweep_data(seed: int) -> bytes:
    """Seeded bytes where the first 6 bytes at eDI equal those at eSI, so REPE CMPS
    runs a few iterations before it stops and REPNE stops at once."""
    data = bytearray(random.Random(seed).randbytes(PAGE))
    data[0x800:0x806] = data[0x100:0x106]
    return bytes(data)


@pytest.mark.parametrize("form,mode", STRING_FORMS,
                         ids=[f"{f.name}-{m}" for f, m in STRING_FORMS])
def test_string_form_sweep_agrees_with_unicorn(form, mode) -> None:
    """Every prefix combination, DF 0/1, counts 0/1/7 and a segment override; 16-bit
    addressing with junk in the upper halves of ECX/ESI/EDI, which must survive."""
    failures: List[str] = []
    opcode = bytes(form.enc.opcode)
    for seed, (opsize, adsize, rep, seg, df, count) in enumerate(
            (o, a, r, s, d, c) for o in (b"", b"\x66") for a in (b"", b"\x67")
            for r in (b"", b"\xf3", b"\xf2") for s in (b"", b"\x26") for d in (0, DF)
            for c in (0, 1, 7)):
        wide = (adsize == b"") == (mode == "prot32")  # 32-bit addressing?
        junk = 0 if wide else 0x5A5A0000
        data = _sweep_data(seed)
        code = opsize + adsize + rep + seg + opcode
        case = _case(code, mode, data, ecx=junk | count, esi=junk | SOURCE,
                     edi=junk | DEST, eax=int.from_bytes(data[0x80C:0x810], "little"),
                     eflags=0x2 | df | 0x8D5)
        problems = compare(form, case)
        if problems:
            failures.append(f"{code.hex(' ')} df={df >> 10} count={count}: {problems}")
    assert not failures, "\n".join(failures[:5])


def test_rep_movsb_copies_count_bytes_upward() -> None:
    data = bytes(range(256)) * 16
    cpu, result = _run(_case(b"\xf3\xa4", "prot32", data, ecx=37, esi=SOURCE, edi=DEST))
    assert result.exception is None
    assert cpu.mem.read_bytes(DEST, 37) == data[0x100:0x100 + 37]
    assert cpu.mem.read_bytes(DEST + 37, 1) == data[0x800 + 37:0x800 + 38]  # untouched
    assert (cpu.get_reg("ecx"), cpu.get_reg("esi"), cpu.get_reg("edi")) == \
        (0, SOURCE + 37, DEST + 37)


def test_rep_movsd_with_df_copies_downward() -> None:
    data = random.Random(1).randbytes(PAGE)
    cpu, result = _run(_case(b"\xf3\xa5", "prot32", data, ecx=4, esi=SOURCE, edi=DEST,
                             eflags=0x2 | DF))
    assert result.exception is None
    # elements at SOURCE, SOURCE-4, -8, -12 land at DEST, DEST-4, -8, -12
    assert cpu.mem.read_bytes(DEST - 12, 16) == data[0x100 - 12:0x100 + 4]
    assert (cpu.get_reg("esi"), cpu.get_reg("edi")) == (SOURCE - 16, DEST - 16)


def test_rep_with_zero_count_touches_nothing() -> None:
    """WHILE CountReg != 0 is tested first: no access at all, so unmapped eSI is fine."""
    cpu, result = _run(_case(b"\xf3\xa5", "prot32", b"", ecx=0, esi=0x7FFF0000, edi=DEST))
    assert result.exception is None
    assert (cpu.eip, cpu.get_reg("esi"), cpu.get_reg("edi")) == (CODE + 2, 0x7FFF0000, DEST)


def test_f2_on_movs_repeats_like_f3() -> None:
    data = bytes(range(256)) * 16
    cpu, _ = _run(_case(b"\xf2\xa4", "prot32", data, ecx=5, esi=SOURCE, edi=DEST))
    assert cpu.mem.read_bytes(DEST, 5) == data[0x100:0x105] and cpu.get_reg("ecx") == 0


def test_repe_cmpsb_stops_at_first_difference() -> None:
    data = bytearray(PAGE)
    data[0x100:0x108] = b"abcdXefg"
    data[0x800:0x808] = b"abcdYefg"
    cpu, _ = _run(_case(b"\xf3\xa6", "prot32", bytes(data), ecx=8, esi=SOURCE, edi=DEST))
    assert (cpu.get_reg("ecx"), cpu.get_reg("esi"), cpu.get_reg("edi")) == \
        (8 - 5, SOURCE + 5, DEST + 5)
    flags = cpu.get_reg("eflags")
    # "X" - "Y" = -1: borrow (CF), negative (SF), not zero
    assert flags & (CF | SF | ZF) == CF | SF


def test_repne_scasb_strlen_idiom() -> None:
    """ECX = -1, AL = 0, REPNE SCASB: afterwards NOT ECX - 1 is the string's length."""
    text = b"hello, world"
    data = bytearray(PAGE)
    data[0x800:0x800 + len(text)] = text
    cpu, _ = _run(_case(b"\xf2\xae", "prot32", bytes(data), ecx=0xFFFFFFFF, edi=DEST,
                        eax=0x41414100))
    assert (~cpu.get_reg("ecx") & 0xFFFFFFFF) - 1 == len(text)
    assert cpu.get_reg("edi") == DEST + len(text) + 1 and cpu.flags.zf == 1


def test_16_bit_addressing_wraps_si_di_and_keeps_upper_halves() -> None:
    """67 A4 in prot32: SI and DI step from FFFF to 0000 (64 KiB wrap), CX counts; the
    upper halves of ESI/EDI/ECX are not part of the address and must not change."""
    extra = {0xF000: bytes(PAGE - 1) + b"\xab"}  # linear 0xFFFF holds AB
    case = _case(b"\x67\xf3\xa4", "prot32", b"", extra, ecx=0x77770001,
                 esi=0x1234FFFF, edi=0x5678FFFF)
    cpu, result = _run(case)
    assert result.exception is None
    assert (cpu.get_reg("esi"), cpu.get_reg("edi"), cpu.get_reg("ecx")) == \
        (0x12340000, 0x56780000, 0x77770000)
    assert compare(forms_of("MOVS")[0][0], case) == []


def test_real_mode_source_override_and_es_destination() -> None:
    """26 A4 in real mode: the source is ES:SI (override), the destination ES:DI always."""
    es, ds = 0x0200, 0x0100  # bases 0x2000 and 0x1000
    data = bytearray(PAGE)
    data[0x10] = 0xC3        # ES:0010 (linear 0x2010): the overridden source
    case = _case(b"\x26\xa4", "real16", bytes(data), es=es, ds=ds, esi=0x10, edi=0x20)
    cpu, _ = _run(case)
    assert cpu.mem.read_bytes(0x2020, 1) == b"\xc3"
    assert compare(forms_of("MOVS")[0][0], case) == []


def test_rep_fault_part_way_keeps_finished_iterations() -> None:
    """REP MOVSB reading across into an unmapped page: the one step reports the fault
    with the 2 finished bytes kept and EIP on the instruction (SDM REP: the operation is
    suspended, registers point at the next elements), as Unicorn shows too."""
    stack_page = {0x3000: bytes(PAGE - 2) + b"\x11\x22"}
    case = _case(b"\xf3\xa4", "prot32", b"", stack_page, ecx=5, esi=0x3FFE, edi=DEST)
    cpu, result = _run(case)
    assert result.exception.kind == "unmapped" and cpu.eip == CODE
    assert (cpu.get_reg("ecx"), cpu.get_reg("esi"), cpu.get_reg("edi")) == \
        (3, 0x4000, DEST + 2)
    assert cpu.mem.read_bytes(DEST, 2) == b"\x11\x22"
    assert compare(forms_of("MOVS")[0][0], case) == []


def _byte_by_byte_copy(memory: bytearray, src: int, dst: int, count: int) -> None:
    """The SDM's MOVSB loop in Python: one byte at a time, upward."""
    for i in range(count):
        memory[dst + i] = memory[src + i]


@pytest.mark.parametrize("gap", [1, 2, 3, 5, 0x80], ids=lambda g: f"dst=src+{g}")
def test_overlapping_rep_movsb_replicates_like_the_element_loop(gap: int) -> None:
    """memmove-style overlap with the destination ahead of the source: each byte copied
    is read again later, so a pattern repeats. A bulk copy would get this wrong."""
    data = bytearray(random.Random(gap).randbytes(PAGE))
    case = _case(b"\xf3\xa4", "prot32", bytes(data), ecx=0x300, esi=SOURCE,
                 edi=SOURCE + gap)
    cpu, _ = _run(case)
    _byte_by_byte_copy(data, 0x100, 0x100 + gap, 0x300)
    assert cpu.mem.read_bytes(DATA, PAGE) == bytes(data)
    assert compare(forms_of("MOVS")[0][0], case) == []


@pytest.mark.parametrize("text,count", [("f3a4", 0x1234), ("f3a5", 0x345), ("66f3a5", 0x5A1),
                                        ("f3aa", 0x1500), ("f3ab", 0x456)])
def test_rep_runs_across_pages_agree_with_unicorn(text: str, count: int) -> None:
    """Several pages, unaligned starts: runs end at each page boundary."""
    pages = {base: random.Random(base).randbytes(PAGE) for base in range(0x10000, 0x18000,
                                                                         PAGE)}
    case = _case(bytes.fromhex(text), "prot32", b"", pages, ecx=count, esi=0x10FF3,
                 edi=0x14FF9, eax=0xA1B2C3D4)
    form = forms_of("MOVS" if text[-2:] in ("a4", "a5") else "STOS")[0][0]
    assert compare(form, case) == []


@pytest.mark.parametrize("text,count", [("f3a4", 0x1234), ("f3a5", 0x345), ("66f3a5", 0x5A1),
                                        ("f3aa", 0x1500), ("f3ab", 0x456)])
def test_rep_runs_down_across_pages_agree_with_unicorn(text: str, count: int) -> None:
    """DF = 1 (memmove copying down): runs end at each page start, and elements that
    cross a page end (unaligned starts) sit between them."""
    pages = {base: random.Random(base).randbytes(PAGE) for base in range(0x10000, 0x1C000,
                                                                         PAGE)}
    case = _case(bytes.fromhex(text), "prot32", b"", pages, ecx=count, esi=0x15FF3,
                 edi=0x1BFF9, eax=0xA1B2C3D4, eflags=0x2 | DF)
    form = forms_of("MOVS" if text[-2:] in ("a4", "a5") else "STOS")[0][0]
    assert compare(form, case) == []


def _element_copy(memory: bytearray, src: int, dst: int, count: int, size: int,
                  step: int) -> None:
    """The SDM's MOVS loop in Python: one element at a time, eSI/eDI moving by
    ``step``."""
    for i in range(count):
        at, to = src + i * step, dst + i * step
        memory[to:to + size] = memory[at:at + size]


@pytest.mark.parametrize("gap", [-0x81, -5, -4, -1, 1, 3, 4, 0x80],
                         ids=lambda g: f"dst=src{g:+}")
def test_overlapping_rep_movsd_down_agrees_with_the_element_loop(gap: int) -> None:
    """REP MOVSD with DF = 1 over overlapping buffers: with the destination above the
    source (memmove's case) each element is read before anything lands on it, so runs
    may copy it whole; with the destination below, elements just written are read
    again, and the result must still be the element loop's."""
    data = bytearray(random.Random(gap & 0xFF).randbytes(PAGE))
    top = 0x900  # the first (highest) source dword
    case = _case(b"\xf3\xa5", "prot32", bytes(data), ecx=0x180, esi=DATA + top,
                 edi=DATA + top + gap, eflags=0x2 | DF)
    cpu, result = _run(case)
    assert result.exception is None
    _element_copy(data, top, top + gap, 0x180, 4, -4)
    assert cpu.mem.read_bytes(DATA, PAGE) == bytes(data)
    assert (cpu.get_reg("esi"), cpu.get_reg("edi")) == \
        (DATA + top - 0x600, DATA + top + gap - 0x600)


def _counting_reads(cpu: Cpu) -> List[int]:
    """Wrap ``cpu.read`` to record the size of each call (how many accesses a REP
    took: one per element on the element loop, one per run on the fast path)."""
    sizes: List[int] = []
    read = cpu.read

    def counted(seg: int, offset: int, size: int) -> int:
        sizes.append(size)
        return read(seg, offset, size)

    cpu.read = counted  # type: ignore[method-assign]
    return sizes


@pytest.mark.parametrize("df", [0, DF], ids=["up", "down"])
def test_rep_movsd_with_elements_across_page_ends_copies_in_runs(df: int) -> None:
    """A dword copy whose elements straddle each page end (ESI 2 bytes short of a
    page): the straddling element is one access, and the fast path goes on after it
    instead of leaving the rest of the copy to the element loop. 0x1000 dwords over
    five pages take a few accesses per page, and agree with Unicorn."""
    pages = {base: random.Random(base).randbytes(PAGE) for base in range(0x10000, 0x20000,
                                                                         PAGE)}
    esi, edi = (0x10FFE, 0x18000) if not df else (0x14FFE, 0x1C000)
    case = _case(b"\xf3\xa5", "prot32", b"", pages, ecx=0x1000,
                 esi=esi, edi=edi, eflags=0x2 | df)
    cpu = _cpu(case)
    sizes = _counting_reads(cpu)
    assert cpu.step().exception is None
    assert cpu.get_reg("ecx") == 0
    assert sum(size for size in sizes if size >= 4) == 0x1000 * 4
    assert len(sizes) <= 20, f"{len(sizes)} reads: the element loop took over"
    assert compare(forms_of("MOVS")[0][0], case) == []


def test_rep_stosd_fault_in_a_later_page_keeps_the_runs_done() -> None:
    """REP STOSD from 0x3F00 with the page at 0x4000 unmapped: 64 dwords fit, the 65th
    faults; the step reports the fault there with the 64 stores kept."""
    case = _case(b"\xf3\xab", "prot32", b"", ecx=100, edi=0x3F00, eax=0x11223344)
    cpu, result = _run(case)
    assert result.exception.kind == "unmapped" and cpu.eip == CODE
    assert (cpu.get_reg("ecx"), cpu.get_reg("edi")) == (100 - 64, 0x4000)
    assert cpu.mem.read_bytes(0x3F00, 256) == bytes.fromhex("44332211") * 64
    assert compare(forms_of("STOS")[0][0], case) == []


def test_rep_movsb_with_16_bit_addressing_wraps_inside_a_run() -> None:
    """67 F3 A4 in prot32 with SI = FFF0: bytes FFF0..FFFF, then 0000.. (64 KiB wrap)."""
    pages = {0x0000: bytes(range(256)) * 16, 0xF000: bytes(reversed(range(256))) * 16}
    case = _case(b"\x67\xf3\xa4", "prot32", b"", pages, ecx=0x20, esi=0x5555FFF0,
                 edi=0x2100)
    cpu, _ = _run(case)
    assert cpu.mem.read_bytes(0x2100, 0x20) == pages[0xF000][-16:] + pages[0x0000][:16]
    assert cpu.get_reg("esi") == 0x55550010
    assert compare(forms_of("MOVS")[0][0], case) == []


def _cpu_with_bus(code: bytes, **regs: int):
    """A prot32 CPU with ``code``, a data page of 00 01 02 ... and a recording I/O bus."""
    from reference.tests.test_misc import RecordingBus

    memory = SparseMemory()
    memory.map(CODE, code)
    memory.map(DATA, bytes(range(256)) * 16)
    cpu = Cpu(memory, "prot32")
    bus = RecordingBus()
    cpu.io_in, cpu.io_out = bus.io_in, bus.io_out
    for name, value in {"eip": CODE, **regs}.items():
        cpu.set_reg(name, value)
    return cpu, bus


def test_rep_insb_reads_the_port_count_times() -> None:
    """REP INSB: ES:[EDI] := IN(DX) for each element; the port is read ECX times."""
    cpu, bus = _cpu_with_bus(b"\xf3\x6c", ecx=3, edi=DEST, edx=0x71)
    assert cpu.step().exception is None
    assert cpu.mem.read_bytes(DEST, 3) == bytes([(0x71 * 3 + 8) & 0xFF]) * 3
    assert bus.reads == {0x71: 3} and cpu.get_reg("edi") == DEST + 3


def test_rep_outsw_writes_each_element_to_the_port() -> None:
    """66 F3 6F in prot32: two words from DS:ESI to port DX, in order."""
    cpu, bus = _cpu_with_bus(b"\x66\xf3\x6f", ecx=2, esi=SOURCE, edx=0x3F8)
    assert cpu.step().exception is None
    assert bus.writes == [(0x3F8, 16, 0x0100), (0x3F8, 16, 0x0302)]
    assert cpu.get_reg("esi") == SOURCE + 4


@pytest.mark.parametrize("text,count,al", [
    ("f2ae", 0x3000, 0x00),   # REPNE SCASB: strlen, the 00 is in the third page
    ("f2ae", 0x0800, 0x00),   # count runs out first
    ("f3ae", 0x3000, 0x61),   # REPE SCASB: a run of "a" across pages, then "b"
    ("f3ae", 0x10, 0x62),     # REPE stops at once
])
def test_byte_scans_across_pages_agree_with_unicorn(text: str, count: int, al: int) -> None:
    pages = {0x10000: b"a" * PAGE, 0x11000: b"a" * PAGE, 0x12000: b"a" * 0x123 + b"b\0"}
    case = _case(bytes.fromhex(text), "prot32", b"", pages, ecx=count, edi=0x10F00,
                 eax=0x55555500 | al)
    assert compare(forms_of("SCAS")[0][0], case) == []
    cpu, _ = _run(case)
    if text == "f2ae" and count == 0x3000:  # strlen idiom: length = bytes before the 00
        assert 0x3000 - cpu.get_reg("ecx") - 1 == 0x100 + 0x1000 + 0x124


def test_repne_scasb_into_an_unmapped_page_stops_at_the_boundary() -> None:
    """No 00 before the page ends: the fault is reported at the boundary, the 0x100
    bytes scanned kept in ECX/EDI."""
    pages = {0x10000: b"a" * PAGE}
    case = _case(b"\xf2\xae", "prot32", b"", pages, ecx=0x2000, edi=0x10F00)
    cpu, result = _run(case)
    assert result.exception.kind == "unmapped" and cpu.eip == CODE
    assert (cpu.get_reg("ecx"), cpu.get_reg("edi")) == (0x2000 - 0x100, 0x11000)
    assert compare(forms_of("SCAS")[0][0], case) == []


def test_single_step_traps_after_each_rep_iteration() -> None:
    """SDM Vol. 3A, 18.3.1.4: with TF = 1 a repeated string instruction traps after each
    iteration; while iterations remain the trap's EIP is the instruction itself. QEMU's
    test-i386 (test_single_step) checks the same on hardware: REP MOVSB with ECX = 3 shows
    its own address three times, then the next instruction's; ECX = 0 traps once."""
    from reference import Cpu, SparseMemory

    memory = SparseMemory()
    memory.map(0x1000, bytes.fromhex("f3 a4 90"))  # rep movsb; nop
    memory.map(0x2000, bytes(range(1, 17)))
    memory.map(0x3000, bytes(16))
    for count, expected in ((3, [(0x1000, 2), (0x1000, 1), (0x1002, 0)]), (0, [(0x1002, 0)])):
        cpu = Cpu(memory, "prot32")
        for name, value in (("eip", 0x1000), ("ecx", count), ("esi", 0x2000), ("edi", 0x3000)):
            cpu.set_reg(name, value)
        cpu.flags.value |= 0x100  # TF
        seen = []
        for _ in expected:
            result = cpu.step()
            assert result.exception is not None and result.exception.vector == 1  # #DB trap
            seen.append((cpu.eip, cpu.get_reg("ecx")))
        assert seen == expected
    assert memory.read_bytes(0x3000, 4) == bytes([1, 2, 3, 0])
