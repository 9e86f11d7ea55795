"""The bare-metal oracle's pipeline without booting an emulator: the case records the
runner reads, the serial lines it prints, decoding and judging, and a few cases run by
the reference PC whose expected state comes from the SDM (written out here)."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Dict, List

import pytest

from differential.bare_metal import cases as families
from differential.bare_metal import layout as bm
from differential.bare_metal.compare import CaseResult, judge, run_cases
from differential.bare_metal.engines import Raw, run_reference
from differential.bare_metal.image import (
    CASE_MAGIC,
    Case,
    build_image,
    encode_case,
    encode_cases,
    load_segments,
    parse_output,
)
from differential.known import KnownDifference

pytest.importorskip("keystone")


def small_case(**changes) -> Case:
    fields = dict(name="t/one", family="t", cr0=0x80000011, cr3=0x20A000, cr4=0x10,
                  gdtr=(0x200000, 0x7F), idtr=(0x201000, 0x7FF), tr=0x28, ldtr=0,
                  entry=(0x08, 0x203000), stack=(0x10, 0x206F00),
                  writes=[(0x300000, b"\x01\x02\x03"), (0x301000, (0x20, 0x5A))],
                  dumps=[("results", 0x209000, 0x60)])
    fields.update(changes)
    return Case(**fields)


def test_a_record_has_the_layout_runner_s_reads():
    record = encode_case(7, small_case())
    # runner.S: magic, index, length; CR0/CR3/CR4 at 12/16/20; LGDT/LIDT operands
    # (limit16 then base32) at 24 and 32; TR, LDTR, ESP, SS, EIP, CS at 40..60.
    assert record[0:4] == b"CASE"
    assert struct.unpack_from("<3I", record, 0)[1:] == (7, len(record))
    assert struct.unpack_from("<3I", record, 12) == (0x80000011, 0x20A000, 0x10)
    assert struct.unpack_from("<HI", record, 24) == (0x7F, 0x200000)
    assert struct.unpack_from("<HI", record, 32) == (0x7FF, 0x201000)
    assert struct.unpack_from("<6I", record, 40) == (0x28, 0, 0x206F00, 0x10, 0x203000, 8)
    assert struct.unpack_from("<2I", record, 64) == (2, 1)
    # A 3-byte write is padded to a dword; a fill has bit 31 of its length set.
    assert record[72:72 + 12] == struct.pack("<II", 0x300000, 3) + b"\x01\x02\x03\x00"
    assert record[84:96] == struct.pack("<III", 0x301000, 0x80000020, 0x5A)
    assert record[96:] == struct.pack("<II", 0x209000, 0x60)


def test_the_list_ends_with_a_zero_dword_and_indices_continue():
    blob = encode_cases([small_case(), small_case()], first_index=5)
    first_length = struct.unpack_from("<I", blob, 8)[0]
    assert struct.unpack_from("<2I", blob, first_length) == (CASE_MAGIC, 6)
    assert blob[-4:] == bytes(4)


def test_output_is_parsed_after_begin_and_a_cut_off_case_is_named():
    text = ("SeaBIOS noise\r\nC 00000009\nBM BEGIN\r\nC 00000000\nM 00209000 0a0b\n"
            "E 00000000\nC 00000001\nM 00209000 ff\n")
    out = parse_output(text)
    assert out.began and not out.complete
    assert out.cases[0].ended and out.cases[0].dumps == {0x209000: b"\x0a\x0b"}
    assert not out.cases[1].ended and out.last_started == 1
    done = parse_output(text + "E 00000001\nBM END\n")
    assert done.complete and done.last_started is None
    assert parse_output("BM BEGIN\nBM RUNNER-FAULT 0000000d\n").runner_fault == 13


def test_descriptors_and_gates_follow_the_sdm_figures():
    # Vol. 3A Figure 3-8: base 0, limit 0xFFFFF, G=1 D=1, P=1 DPL=0 code execute/read.
    assert bm.descriptor(0, 0xFFFFF, 0x9A) == (0x00CF9A000000FFFF).to_bytes(8, "little")
    # A TSS descriptor: base 0x202000, limit 103, type 9 (available), byte granular.
    assert bm.descriptor(0x202000, 103, 0x89, 0) == bytes(
        [103, 0, 0x00, 0x20, 0x20, 0x89, 0x00, 0x00])
    # Figure 6-2: offset 15:0, selector, 0, P|DPL|type, offset 31:16.
    assert bm.gate(0x08, 0x12345678, bm.INT32, dpl=3) == bytes(
        [0x78, 0x56, 0x08, 0x00, 0x00, 0xEE, 0x34, 0x12])
    assert bm.gate(0x30, 0, bm.TASK_GATE, present=False)[5] == 0x05
    tss = bm.tss32(esp0=0x206F00, ss0=0x10, eip=0x205050, cs=0x08)
    assert len(tss) == 104 and struct.unpack_from("<3I", tss, 0) == (0, 0x206F00, 0x10)
    assert struct.unpack_from("<I", tss, 0x20)[0] == 0x205050  # Figure 7-2: EIP at 20H
    assert struct.unpack_from("<I", tss, 0x4C)[0] == 0x08      # CS at 4CH
    assert struct.unpack_from("<H", tss, 0x66)[0] == 104       # I/O map base at 66H


def test_every_family_builds_unique_names():
    cases = families.all_cases()
    assert len({c.name for c in cases}) == len(cases) > 60
    assert {c.family for c in cases} == set(families.FAMILIES)


def result(outcome: str = "done", **fields: int) -> CaseResult:
    return CaseResult("x", outcome, {f"results.{k}": v for k, v in fields.items()})


def entry(id_: str, group: str, fields: List[str]) -> KnownDifference:
    return KnownDifference("bare-metal", (group,), "test", id=id_, fields=tuple(fields))


def test_judge_needs_an_entry_on_the_wrong_side_for_every_field():
    bochs, reference = result(vector=13, stack0=0x33), result(vector=13, stack0=0x33)
    qemu = result(vector=13, stack0=0x32)
    known: Dict[str, List[KnownDifference]] = {
        "qemu": [entry("ext", "fault/*", ["results.stack0"])]}
    engines = {"qemu": qemu, "bochs": bochs, "reference": reference}
    verdict = judge("fault/ud", engines, known)
    assert verdict.status == "known" and verdict.decided_by == ("bochs",)
    assert judge("other/ud", engines, known).status == "new"  # group does not match
    qemu.fields["results.vector"] = 6  # a second field the entry does not cover
    assert judge("fault/ud", engines, known).status == "new"
    assert judge("fault/ud", {"bochs": bochs, "reference": reference}, {}).status == "agree"


def test_undefined_fields_are_excused_for_everyone_and_the_rest_still_judged():
    undefined = [entry("df", "double-fault/*", ["tss_main.eflags"])]
    left = CaseResult("x", "done", {"tss_main.eflags": 0x10006, "results.vector": 8})
    right = CaseResult("x", "done", {"tss_main.eflags": 0x6, "results.vector": 8})
    verdict = judge("double-fault/a", {"bochs": left, "reference": right}, {}, undefined)
    assert verdict.status == "known" and verdict.decided_by == ("bochs",)
    right.fields["results.vector"] = 13
    assert judge("double-fault/a", {"bochs": left, "reference": right}, {},
                 undefined).status == "new"
    assert judge("x", {"bochs": result(), "reference": result("hang")}, {}).status == "new"


def test_a_case_that_hangs_is_marked_and_the_rest_rerun(tmp_path: Path):
    cases = [c for c in families.all_cases(["segment"])][:3]
    seen: List[int] = []

    def fake(engine: str, image: Path) -> Raw:
        # The first image holds all three cases: case 1 starts and never ends.
        records = load_segments(image.read_bytes())
        assert records
        if not seen:
            seen.append(0)
            return Raw("BM BEGIN\nC 00000000\nE 00000000\nC 00000001\n", "timeout")
        seen.append(1)
        return Raw("BM BEGIN\nC 00000002\nM 00209000 " + "00" * 0x60 +
                   "\nE 00000002\nBM END\n", "end")

    results = run_cases("fake", cases, fake, tmp_path, progress=lambda text: None)
    assert [r.outcome for r in results] == ["done", "hang", "done"]
    assert results[2].fields["results.vector"] == 0
    assert (tmp_path / "image-2.elf").exists()  # the rerun image starts at case 2


# The reference PC runs the real image: expected values from the SDM, per case.
SDM_EXPECTATIONS = {
    # Vol. 3A 6.12.1, Figure 6-4: CPL 3 -> 0 through a DPL-3 interrupt gate: SS0:ESP0
    # from the TSS, then SS, ESP, EFLAGS, CS, EIP pushed (EIP after the 2-byte INT 0x80
    # that follows a 5-byte MOV); IF cleared in the handler.
    "int-inner/int32-dpl3-int80": {
        "results.vector": 0x80, "results.esp": bm.STACK0_TOP - 20,
        "results.stack0": bm.CODE3 + 7, "results.stack1": bm.CODE3_SEL,
        "results.stack2": 0xA02, "results.stack3": bm.STACK3_TOP,
        "results.stack4": bm.DATA3_SEL, "results.ss": bm.DATA0_SEL},
    # Vol. 2A INT n: a DPL-0 gate from CPL 3 is #GP(vector*8+2) = 0x402, a fault with
    # RF = 1 in the image (Vol. 3B 17.3.1.1), EIP at the INT.
    "int-inner/int32-dpl0-int80": {
        "results.vector": 13, "results.stack0": 0x80 * 8 + 2,
        "results.stack1": bm.CODE3 + 5, "results.stack3": 0x10A02},
    # Vol. 3A 6.13: #NP raised delivering #UD (a hardware exception): EXT = 1.
    "fault/ud-gate-not-present-ext": {"results.vector": 11, "results.stack0": 6 * 8 + 2 + 1},
    # Vol. 3A 4.7: a user-mode write to a present read-only page: P=1 W/R=1 U/S=1.
    "fault/pf-cpl3-write-read-only": {
        "results.vector": 14, "results.stack0": 7, "results.cr2": bm.DATA_PAGE + 0x10},
    # Vol. 2A IRET, RETURN-TO-OUTER-PRIVILEGE-LEVEL: DS holding a DPL-0 data segment
    # becomes null; ES (DPL 3) stays. Ring 3 put ES:DS into ECX.
    "iret-outer/ds-dpl0-becomes-null": {"results.vector": 0x80,
                                        "results.ecx": bm.DATA3_SEL << 16},
    # Vol. 3A 6.15 and 7.3: #DF through a task gate: TR = the #DF TSS, error code 0 on
    # its stack, NT set, the old TSS selector in its link field, both TSSs busy (type B).
    "double-fault/task-gp-gate-beyond-idt-limit": {
        "results.vector": 8, "results.tr": bm.TSS_DF_SEL, "results.stack0": 0,
        "results.esp": bm.STACK_DF_TOP - 4, "tss_df.link": bm.TSS_MAIN_SEL},
    # Vol. 3A 7.3, Table 7-2: CALL to a TSS: link = old TSS, NT set, both busy; the old
    # task saved with EIP after the 7-byte CALL that follows three 5-byte MOVs.
    "task/call-tss": {
        "results.vector": 0x1000, "results.tr": bm.TSS_DF_SEL, "results.eax": 0x55555555,
        "tss_df.link": bm.TSS_MAIN_SEL, "tss_main.eip": bm.CODE0 + 22,
        "tss_main.eax": 0x11111111, "tss_main.edx": 0x44444444,
        "gdt.0x28.hi": 0x8B20, "gdt.0x30.hi": 0x8B20},
    # JMP: no link, NT clear, the old TSS no longer busy (type 9), the new one busy.
    "task/jmp-tss": {
        "results.tr": bm.TSS_DF_SEL, "tss_df.link": 0, "tss_main.eip": bm.CODE0 + 22,
        "gdt.0x28.hi": 0x8920, "gdt.0x30.hi": 0x8B20},
    # IRET with NT = 1 returns through the link: TR back to 0x28, execution after the
    # CALL, the called task's TSS available again and its saved EFLAGS without NT.
    "task/call-tss-then-iret": {
        "results.vector": 0xFFFFFFFF, "results.eax": 0x66666666, "results.tr": 0x28,
        "gdt.0x30.hi": 0x8920, "tss_df.eflags": 0x2},
    # INT n: "IF new stack does not have room ... THEN #SS(error_code(NewSS, 0, EXT))",
    # here through a task gate, which pushes the error code on the task's stack.
    "task/ss-frame-below-limit": {"results.vector": 12, "results.stack0": bm.SPARE_SEL},
    "task/ts-null-ss0": {"results.vector": 10, "results.stack0": 0},
    # The same while #UD (a hardware exception) is delivered: EXT = 1 (Vol. 3A 6.13).
    "task/ts-null-ss0-during-ud": {"results.vector": 10, "results.stack0": 1},
    "task/ss-frame-below-limit-during-ud": {"results.vector": 12,
                                            "results.stack0": bm.SPARE_SEL | 1},
    # Vol. 3A 7.6, Figure 7-11: a 16-bit TSS (type 1, limit 0x2B; descriptor high dword
    # base 23:16 = 0x20, P = 1, type 1: 0x8120). JMP there and back: the first task
    # resumes (EAX from its TSS) and was saved after its JMP (three 5-byte MOVs and a
    # 7-byte JMP); the 16-bit task's words: IP after its two 5-byte MOVs and its 7-byte
    # JMP at offset 0x3800 of its code segment, AX, CX, SP = 0x8F00; no link (JMP).
    "task/jmp-tss16-and-back": {
        "results.vector": 0xFFFFFFFF, "results.tr": 0x28, "results.eax": 0x11111111,
        "tss_main.eip": bm.CODE0 + 22, "tss16_df.link": 0, "tss16_df.ip": 0x3800 + 17,
        "tss16_df.ax": 0x5555, "tss16_df.cx": 0x5678, "tss16_df.sp": 0x8F00,
        "tss16_df.cs": 0x60, "tss16_df.ss": 0x68, "gdt.0x28.hi": 0x8B20,
        "gdt.0x30.hi": 0x8120},
    # INT 0x40 through a task gate to it: the link (offset 0) = 0x28; its IRET (NT = 1)
    # returns: TR = 0x28, the 16-bit TSS available again, its FLAG word saved without
    # NT (0x0002, what it was loaded with) and IP after the 1-byte IRETD.
    "task/int-task-gate-tss16-then-iret": {
        "results.vector": 0xFFFFFFFF, "results.tr": 0x28, "tss16_df.link": 0x28,
        "tss16_df.flags": 0x0002, "tss16_df.ip": 0x3800 + 6, "tss16_df.bx": 0x7777,
        "gdt.0x30.hi": 0x8120},
    # #GP(0x30) (MOV DS with the TSS selector; EIP at the 4-byte MOV BX after three
    # 5-byte MOVs) through a task gate to it: the error code pushed as a word (ECX),
    # SP = 0x8F00 - 2 (EBX), the two pattern bytes below it untouched (EAX).
    "task/gp-task-gate-tss16-error-code": {
        "results.vector": 13, "results.tr": 0x30, "results.cs": 0x60,
        "results.ecx": 0x30, "results.ebx": 0x8EFE, "results.eax": 0x00305A5A,
        "tss16_df.link": 0x28, "tss_main.eip": bm.CODE0 + 19},
    # Vol. 2B SYSENTER: CS = IA32_SYSENTER_CS (8), SS = CS + 8, ESP/EIP from the MSRs;
    # ECX kept; IF cleared (the record's EFLAGS lacks 0x200).
    "sysenter/sysenter-from-cpl3": {
        "results.vector": 0x2000, "results.cs": 0x08, "results.ss": 0x10,
        "results.esp": bm.STACK_DF_TOP, "results.ecx": 0x1111},
    # SYSEXIT: CS = IA32_SYSENTER_CS + 16 | 3, SS = + 24 | 3, ESP = ECX, EIP = EDX, EFLAGS
    # untouched (0x2C7, which ring 3 put in EBX); seen in INT 0x80's frame (EIP after
    # PUSHFD, POP, a 5-byte MOV, CMP and the INT: 11 bytes).
    "sysenter/sysexit-to-cpl3": {
        "results.vector": 0x80, "results.ebx": 0x2C7, "results.stack0": bm.CODE3 + 11,
        "results.stack1": 0x1B, "results.stack3": bm.STACK3_TOP - 0x10,
        "results.stack4": 0x23},
    # "IF IA32_SYSENTER_CS[15:2] = 0 THEN #GP(0)"; SYSEXIT: "IF CPL != 0 THEN #GP(0)".
    "sysenter/sysenter-cs-msr-zero": {"results.vector": 13, "results.stack0": 0,
                                      "results.stack2": 0x1B},
    "sysenter/sysexit-at-cpl3": {"results.vector": 13, "results.stack0": 0,
                                 "results.stack1": bm.CODE3},
    # Vol. 3A 4.3, Table 4-4: a 4-MByte PDE (PS, base 0) maps 0x400000 + X to X: the
    # read returns CODE0's first dword, the MOV's own bytes A1 00 30 60 (MOV EAX, moffs
    # 0x603000); 4.8: A set in the PDE, D only after a write.
    "paging/pse-4mb-read": {"results.eax": 0xA1 | ((0x400000 + bm.CODE0) << 8) & 0xFFFFFFFF,
                            "pde1.0": 0x80 | 0x20 | 3},
    "paging/pse-4mb-write": {"results.eax": 0x12345678, "pde1.0": 0x80 | 0x40 | 0x20 | 3},
    # 4.7: a reserved bit in a present entry: P = 1, RSVD (bit 3) = 1, a read at CPL 0.
    "paging/pse-reserved-bit-21": {"results.vector": 14, "results.stack0": 0x9,
                                   "results.cr2": 0x400000},
    # 4.6: R/W = 0 in the PDE makes the page read-only whatever the PTE says.
    "paging/pde-read-only-cpl3-write": {"results.vector": 14, "results.stack0": 7,
                                        "results.cr2": bm.DATA_PAGE + 0x10},
    # Vol. 2A CALL, MORE-PRIVILEGE: SS:ESP from the TSS, then old SS, old ESP, the 2
    # parameters (copied in order), CS, EIP (after the 7-byte CALL that follows two
    # 5-byte PUSHes and a 5-byte MOV).
    "call-gate/ring3-to-ring0-with-parameters": {
        "results.vector": 0x3000, "results.esp": bm.STACK0_TOP - 24,
        "results.stack0": bm.CODE3 + 22, "results.stack1": bm.CODE3_SEL,
        "results.stack2": 0xAAAA, "results.stack3": 0xBBBB,
        "results.stack4": bm.STACK3_TOP - 8, "results.stack5": bm.DATA3_SEL},
    # Conforming code: SAME-PRIVILEGE, "CS(RPL) := CPL": the INT 0x80 it runs pushes
    # CS 0x4B and switches to the TSS stack (CPL 3).
    "call-gate/to-conforming-code-stays-at-cpl3": {
        "results.vector": 0x80, "results.stack1": families.CONFORMING_SEL | 3,
        "results.stack4": bm.DATA3_SEL},
    # "IF tempEIP not within code segment limit THEN #GP(0)": at the CALL, CPL 3.
    "call-gate/target-beyond-code-limit": {
        "results.vector": 13, "results.stack0": 0, "results.stack1": bm.CODE3 + 5},
    # RET: "IF return instruction pointer is not within code segment limit THEN #GP(0)"
    # at the RETF (CPL 0; its EIP after four 5-byte or 2-byte PUSHes).
    "call-gate/retf-beyond-code-limit": {
        "results.vector": 13, "results.stack0": 0, "results.stack2": bm.CODE0_SEL},
    # RET to an outer level nulls DS when it holds a DPL-0 data segment.
    "call-gate/retf-to-cpl3-nulls-ds": {"results.vector": 0x80, "results.ecx": 0},
    # Vol. 3A 5.9: HLT at CPL 3 is #GP(0), EIP at the HLT (after a 5-byte MOV).
    "privileged/hlt": {"results.vector": 13, "results.stack0": 0,
                       "results.stack1": bm.CODE3 + 5},
    "privileged/rdtsc-tsd": {"results.vector": 13, "results.stack0": 0,
                             "results.stack1": bm.CODE3},
    # Vol. 1 19.5.2: the port's bit 0 allows OUT at CPL 3 > IOPL, so the UD2 after it
    # (2-byte MOV, 2-byte OUT) is reached: #UD, a fault, RF = 1 in the image.
    "privileged/out-io-bitmap-allows": {"results.vector": 6, "results.stack0": bm.CODE3 + 4,
                                        "results.stack2": 0x10202},
    "privileged/out-io-bitmap-denies": {"results.vector": 13, "results.stack0": 0,
                                        "results.stack1": bm.CODE3 + 2},
    # CLI at IOPL 3 clears IF; POPF at CPL 3 > IOPL leaves IF set (no fault).
    "privileged/cli-iopl3": {"results.vector": 6, "results.stack2": 0x13002},
    "privileged/popf-if-at-iopl0": {"results.vector": 6, "results.stack2": 0x10202},
    # MOV SS: "IF segment selector's RPL != CPL or segment is not a writable data
    # segment or DPL != CPL THEN #GP(selector)"; "IF segment not marked present THEN
    # #SS(selector)"; a null SS is #GP(0). The faulting MOV is at CODE0 + 9.
    "selector/mov-ss-rpl-not-cpl": {"results.vector": 13, "results.stack0": 0x10,
                                    "results.stack1": bm.CODE0 + 9},
    "selector/mov-ss-null": {"results.vector": 13, "results.stack0": 0},
    "selector/mov-ss-read-only": {"results.vector": 13, "results.stack0": bm.SPARE_SEL},
    "selector/mov-ss-not-present": {"results.vector": 12, "results.stack0": bm.SPARE_SEL},
    # MOV DS: execute-only code is #GP(selector); readable code loads; an LDT selector
    # beyond the LDT's limit (0xF) is #GP(selector) (TI and RPL as given: 0x14).
    "selector/mov-ds-execute-only-code": {"results.vector": 13,
                                          "results.stack0": bm.SPARE_SEL},
    "selector/mov-ds-readable-code": {"results.vector": 0xFFFFFFFF,
                                      "results.ds": bm.SPARE_SEL},
    "selector/mov-ds-ldt-selector": {"results.vector": 0xFFFFFFFF, "results.ds": 0x0C},
    "selector/mov-ds-beyond-ldt-limit": {"results.vector": 13, "results.stack0": 0x14},
    # A null DS loads without a fault; its use is #GP(0) (Vol. 3A 5.4.1).
    "selector/null-ds-used": {"results.vector": 13, "results.stack0": 0,
                              "results.stack1": bm.CODE0 + 5},
    # LTR: "IF segment descriptor is not for an available TSS THEN #GP(selector)"; LLDT:
    # "IF segment selector ... does not point to a descriptor for an LDT THEN
    # #GP(selector)".
    "selector/ltr-busy-tss": {"results.vector": 13, "results.stack0": bm.TSS_MAIN_SEL},
    "selector/lldt-tss-descriptor": {"results.vector": 13, "results.stack0": bm.TSS_DF_SEL},
    # IRQ 0 at vector 0x20 wakes HLT (STI's shadow lets HLT run first): EIP after the
    # HLT, IF set in the pushed image; through a not-present gate #NP(0x20*8+2+EXT=1).
    # PIC_AND_PIT is 24 two-byte instructions (MOV AL/OUT imm8/XOR AL), then a 5-byte
    # MOV and STI: the HLT is at CODE0 + 54, the next instruction at + 55.
    "external/irq0-out-of-hlt": {"results.vector": 0x20, "results.stack0": bm.CODE0 + 55,
                                 "results.stack2": 0x246},
    "external/irq0-gate-not-present-ext": {"results.vector": 11, "results.stack0": 0x103,
                                           "results.stack1": bm.CODE0 + 55},
    # 4.8: a read sets A (0x20), a write A and D (0x40) in the PTE.
    "paging/accessed-dirty-first-touch": {"pte.0x20d000": 0x20D000 | 0x20 | 7,
                                          "pte.0x20c000": 0x20C000 | 0x60 | 7},
}


@pytest.fixture(scope="module")
def reference_results(tmp_path_factory) -> Dict[str, CaseResult]:
    chosen = [c for c in families.all_cases() if c.name in SDM_EXPECTATIONS]
    results = run_cases("reference", chosen, lambda engine, image: run_reference(image),
                        tmp_path_factory.mktemp("bm"), progress=lambda text: None)
    return {r.name: r for r in results}


@pytest.mark.parametrize("name", sorted(SDM_EXPECTATIONS))
def test_the_reference_runs_the_image_to_the_sdm_state(reference_results, name):
    got = reference_results[name]
    assert got.outcome == "done"
    assert got.fields["results.marker"] == bm.RECORDED
    for field, value in SDM_EXPECTATIONS[name].items():
        assert got.fields[field] == value, field


def test_a_triple_fault_ends_the_machine_and_the_next_case_still_runs(tmp_path: Path):
    """SDM Vol. 3A 6.15: a fault while calling the #DF handler is a shutdown; the
    reference PC stops, and run_cases reruns the cases after it in a new image."""
    chosen = families.all_cases(["triple-fault"]) + families.all_cases(["task"])[:1]
    results = run_cases("reference", chosen, lambda engine, image: run_reference(image),
                        tmp_path, progress=lambda text: None)
    assert [r.outcome for r in results] == ["shutdown", "done"]


def test_sysenter_clears_if(reference_results):
    assert not reference_results["sysenter/sysenter-from-cpl3"].fields["results.eflags"] \
        & 0x200


def test_task_gate_double_fault_flags(reference_results):
    got = reference_results["double-fault/task-gp-gate-beyond-idt-limit"].fields
    assert got["results.eflags"] & 0x4000  # NT
    busy = [(got[f"gdt.{s:#x}.hi"] >> 8) & 0xF for s in (bm.TSS_MAIN_SEL, bm.TSS_DF_SEL)]
    assert busy == [bm.TSS32_BUSY, bm.TSS32_BUSY]


def test_build_image_places_bm_exit_where_cases_jump(tmp_path: Path):
    image = build_image([small_case()], tmp_path / "x.elf")
    segments = load_segments(image.read_bytes())
    assert segments[0][0] == 0x100000
    text = segments[0][1]
    # Multiboot 0.6.96 3.1.1: magic, flags, checksum summing to 0, within 8 KiB.
    at = text.find(struct.pack("<I", 0x1BADB002))
    assert 0 <= at < 8192 and sum(struct.unpack_from("<3I", text, at)) & 0xFFFFFFFF == 0


def test_the_command_runs_the_reference_and_writes_json(tmp_path: Path, capsys):
    """python -m differential.bare_metal --engine reference: the summary line, exit 0,
    and the JSON per case (one engine, so nothing to compare and nothing decided)."""
    import json

    from differential.bare_metal.__main__ import main

    out = tmp_path / "bm.json"
    status = main(["--engine", "reference", "--families", "int-same",
                   "--cases", "int-same/int32-int80", "--json", str(out)])
    assert status == 0
    assert "1 cases (int-same 1) on reference: 1 agree" in capsys.readouterr().out
    data = json.loads(out.read_text())
    case = data["cases"][0]
    assert case["name"] == "int-same/int32-int80" and case["verdict"] == "agree"
    assert case["results"]["reference"]["fields"]["results.vector"] == 0x80


def test_the_command_refuses_an_unknown_family():
    from differential.bare_metal.__main__ import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--families", "no-such-family"])
    assert exit_info.value.code == 2
