"""Virtual-8086 mode without VME (SDM Vol. 3B, ch. 20 "8086 Emulation"; Vol. 2A, IRET and
INT n, their Operation sections).

The processor is in virtual-8086 mode while CR0.PE = 1 and EFLAGS.VM = 1; ``cpu.mode``
is then ``"vm86"``. It runs at CPL 3 and forms addresses as in real mode: a segment
register load sets base := selector << 4 (20.1.1), every segment has a 64 KiB limit
and 16-bit default operand, address and stack sizes. Three events change VM here:

- IRET at CPL 0 popping an EFLAGS image with VM = 1 (``iret_to_vm86``) enters the mode:
  after EIP, CS and EFLAGS it pops ESP, SS, ES, DS, FS and GS (20.2.5).
- An interrupt or exception leaves it through a 32-bit or 16-bit interrupt/trap gate to
  a non-conforming code segment of DPL 0 (``reference.system.exceptions`` pushes GS,
  FS, DS, ES, SS, ESP, EFLAGS, CS, EIP; ``leave_vm86`` then makes DS, ES, FS and GS
  null, 20.3.1.1).
- A task switch loads EFLAGS from the new TSS and VM with it (20.2.5, 20.2.6): into a
  virtual-8086 task or out of one (``reference.system.task_switch``).

CR4.VME is reserved in this model (CPUID does not report VME), so the IOPL-sensitive
instructions (CLI, STI, PUSHF, POPF, INT n, IRET) raise #GP(0) at IOPL < 3 (20.2.7)
and IN/OUT/INS/OUTS consult the TSS's I/O permission bit map whatever IOPL (20.2.8.1):
those checks live with the instructions (``reference.semantics``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reference.faults import GP, Fault
from reference.flags import IMPLEMENTED, RESERVED_ONE
from reference.operands import CS, DS, ES, FS, GS, SS

if TYPE_CHECKING:  # pragma: no cover
    from reference.cpu import Cpu

# The hidden part of every segment register in virtual-8086 mode: present, DPL 3,
# read/write data, accessed, byte granular, 16-bit (D/B = 0), limit FFFFH.
VM86_ATTR = 0x00F300
VM86_LIMIT = 0xFFFF
# IRET's pop order after EIP, CS and EFLAGS (SDM Vol. 2A, IRET,
# RETURN-TO-VIRTUAL-8086-MODE): ESP, SS, ES, DS, FS, GS.
_POPPED_SEGMENTS = (SS, ES, DS, FS, GS)


def load_vm86_segment(cpu: Cpu, index: int, selector: int) -> None:
    """Segment register ``index`` := ``selector`` with base selector << 4 and the fixed
    virtual-8086 limit and attributes."""
    selector &= 0xFFFF
    cpu.set_segment_cache(index, selector, selector << 4, VM86_LIMIT, VM86_ATTR)


def iret_to_vm86(cpu: Cpu) -> None:
    """IRETD at CPL 0 with VM = 1 in the popped EFLAGS image (RETURN-TO-VIRTUAL-8086-MODE):
    the nine dwords EIP, CS, EFLAGS, ESP, SS, ES, DS, FS, GS must lie within the stack
    segment (#SS(0)), EIP within the new 64 KiB code segment (#GP(0)); then EFLAGS :=
    the image whole (VM, IOPL, VIF, VIP included: CPL is 0), the segments are loaded
    real-mode style and CPL := 3."""
    words = [cpu.peek(32, 4 * i) for i in range(9)]  # each read faults #SS(0) alone
    eip, cs, image, esp = words[0], words[1] & 0xFFFF, words[2], words[3]
    if eip > VM86_LIMIT:
        raise Fault(GP, 0)
    cpu.flags.value = (image & IMPLEMENTED) | RESERVED_ONE
    load_vm86_segment(cpu, CS, cs)
    for index, word in zip(_POPPED_SEGMENTS, words[4:]):
        load_vm86_segment(cpu, index, word)
    cpu.cpl = 3
    cpu.eip = eip
    cpu.regs[4] = esp
    set_vm86_mode(cpu, True)


def leave_vm86(cpu: Cpu) -> None:
    """The end of INTERRUPT-FROM-VIRTUAL-8086-MODE once the frame is on the ring-0
    stack: GS, FS, DS, ES := 0 (null: their old values are in the frame) and the
    processor leaves virtual-8086 mode (the caller clears EFLAGS.VM and loads CS)."""
    for index in (GS, FS, DS, ES):
        cpu.set_null_segment(index, 0)
    set_vm86_mode(cpu, False)


def set_vm86_mode(cpu: Cpu, on: bool) -> None:
    """``cpu.mode`` follows EFLAGS.VM under CR0.PE. Decoded instructions are forgotten
    on every change, as on a real/protected switch: the fetch's privilege and CS.D can
    differ on either side."""
    mode = "vm86" if on else "prot32"
    if cpu.mode != mode:
        cpu.mode = mode
        cpu.forget_all_code()

