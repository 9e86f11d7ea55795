"""Control transfer: JMP Jcc CALL RET LOOP/LOOPE/LOOPNE JCXZ, ENTER/LEAVE, INT3/INT n/INTO,
and the real-mode far forms JMPF CALLF RETF IRET (SDM Vol. 2A/2B).

Every near branch ends in ``branch``: the target (already truncated to the operand size,
as the SDM's "IF OperandSize = 16 THEN EIP := EIP AND 0000FFFFH") must lie within the
code segment limit or the instruction raises #GP(0) and does not happen. In real mode
that limit is 0xFFFF, so a 66-prefixed branch past 64 KiB faults, as on hardware.

The count register of LOOP/JCXZ follows the *address* size (CX or ECX), the pushed return
address and popped target the *operand* size, and eSP the stack size (SS.B, here the
mode's default): three separate attributes that the 66 and 67 prefixes change apart.
INT n, INT3 and INTO are traps: the step loop reports them with EIP past the instruction.
"""

from __future__ import annotations

from typing import Optional

from reference.cpu import Cpu
from reference.faults import BP, DB, GP, Fault, Unmapped
from reference.faults import OF as OVERFLOW
from reference.flags import IMPLEMENTED, IOPL, RESERVED_ONE
from reference.operands import CS, SS, FarPtr, Operand, gpr
from reference.semantics import implements
from reference.semantics.flagops import require_vm86_iopl3
from reference.semantics.string import add_at_address_size, count_register, keep_state_at_fault
from reference.system import far_transfers

ECX, ESP, EBP = 1, 4, 5


def code_limit(cpu: Cpu) -> int:
    """The CS limit (``cpu.seg_limit``): 64 KiB - 1 in real mode, above any offset in the
    flat prot32 model; descriptor loads will set it."""
    return cpu.seg_limit[CS]


def branch(cpu: Cpu, target: int) -> None:
    """EIP := target, or #GP(0) if it lies beyond the code segment limit."""
    limit = code_limit(cpu)
    if target > limit:
        raise Fault(GP, 0)
    cpu.eip = target


@implements("JMP")
def jmp(cpu: Cpu, target: Operand) -> None:
    """EIP := rel target or r/m (near, same segment); operand size truncates it."""
    branch(cpu, target.read())


@implements("Jcc")
def jcc(cpu: Cpu, target: Operand) -> None:
    """IF condition THEN EIP := EIP + rel (truncated to the operand size)."""
    if cpu.flags.condition(cpu.insn.cond):
        branch(cpu, target.read())


def far_transfer(cpu: Cpu, selector: int, offset: int) -> None:
    """CS:EIP := selector:offset. The limit check comes first (the target must lie in the
    new code segment, 64 KiB in real mode), then CS is loaded: base selector*16 in real
    mode; in prot32 the segment loader decides, and without a GDT that is #GP."""
    if offset > code_limit(cpu):
        raise Fault(GP, 0)
    cpu.load_segment(CS, selector)
    cpu.eip = offset


def uses_descriptors(cpu: Cpu) -> bool:
    """Protected mode with descriptor tables (after LGDT): far transfers go through
    ``reference.system.far_transfers``. Real mode and the table-less flat model keep
    the simple path here."""
    return cpu.mode == "prot32" and cpu.segment_loader.tables


@implements("JMPF")
def jmp_far(cpu: Cpu, pointer: FarPtr) -> None:
    """CS:EIP := ptr16:16/32 (EA) or m16:16/32 (FF /5); the offset is operand-sized."""
    if uses_descriptors(cpu):
        far_transfers.far_jump(cpu, pointer.selector, pointer.read())
        return
    far_transfer(cpu, pointer.selector, pointer.read())


@implements("CALLF")
def call_far(cpu: Cpu, pointer: FarPtr) -> None:
    """Push(CS) (zero-extended to the operand size); Push(EIP); CS:EIP := pointer. The
    pointer is read before anything is pushed (it may live on the stack)."""
    selector, offset = pointer.selector, pointer.read()
    size = cpu.insn.opsize
    if uses_descriptors(cpu):
        far_transfers.far_call(cpu, selector, offset, size)
        return
    cpu.push(cpu.sregs[CS], size)
    cpu.push(cpu.eip & ((1 << size) - 1), size)
    far_transfer(cpu, selector, offset)


@implements("RETF")
def ret_far(cpu: Cpu, *release: Operand) -> None:
    """EIP := Pop(); CS := Pop() (low 16 bits of an operand-sized slot); then eSP +=
    imm16 (RETF imm16) at the stack size."""
    size = cpu.insn.opsize
    if uses_descriptors(cpu):
        far_transfers.far_return(cpu, size, release[0].read() if release else 0)
        return
    offset = cpu.pop(size)
    selector = cpu.pop(size) & 0xFFFF
    far_transfer(cpu, selector, offset)
    if release:
        cpu.adjust_sp(release[0].read())


@implements("IRET")
def iret(cpu: Cpu) -> None:
    """Real-address mode IRET: EIP := Pop(); CS := Pop(); then with a 32-bit operand
    EFLAGS := (Pop() AND 257FD5H) OR (EFLAGS AND 1A0000H) (VM, VIF, VIP kept), with a
    16-bit one EFLAGS[15:0] := Pop(). Virtual-8086 mode pops the same way at IOPL 3
    (#GP(0) below), IOPL keeping its value. Protected-mode IRET (privilege and task
    changes) is ``reference.system.far_transfers.iret_protected``."""
    require_vm86_iopl3(cpu)
    size = cpu.insn.opsize
    cpu.nmi_blocked = False  # IRET ends the NMI handler's blocking (SDM Vol. 3A, 6.7.1)
    if uses_descriptors(cpu):
        far_transfers.iret_protected(cpu, size)
        return
    offset = cpu.pop(size)
    selector = cpu.pop(size) & 0xFFFF
    image = cpu.pop(size)
    far_transfer(cpu, selector, offset)
    old = cpu.flags.value
    if size == 32:
        new = (image & 0x257FD5) | (old & 0x1A0000)
    else:
        new = (old & 0xFFFF0000) | image
    if cpu.mode == "vm86":
        new = (new & ~IOPL) | (old & IOPL)
    cpu.flags.value = (new & IMPLEMENTED) | RESERVED_ONE


@implements("CALL")
def call(cpu: Cpu, target: Operand) -> None:
    """tempEIP := target; Push(EIP) at the operand size; EIP := tempEIP. The r/m target
    is read before the push, so CALL [ESP] uses the old ESP."""
    destination = target.read()
    if destination > code_limit(cpu):
        raise Fault(GP, 0)
    size = cpu.insn.opsize
    cpu.push(cpu.eip & ((1 << size) - 1), size)
    cpu.eip = destination


@implements("RET")
def ret(cpu: Cpu, release: Optional[Operand] = None) -> None:
    """EIP := Pop() at the operand size; then eSP += imm16 (RET imm16) at the stack size."""
    branch(cpu, cpu.pop(cpu.insn.opsize))
    if release is not None:
        cpu.adjust_sp(release.read())


@implements("LOOP")
def loop(cpu: Cpu, target: Operand) -> None:
    """Count := Count - 1 (CX or ECX by address size); IF Count != 0 THEN branch."""
    if add_at_address_size(cpu, ECX, -1) != 0:
        branch(cpu, target.read())


@implements("LOOPE")
def loope(cpu: Cpu, target: Operand) -> None:
    """Count := Count - 1; IF Count != 0 AND ZF = 1 THEN branch (flags unchanged)."""
    if add_at_address_size(cpu, ECX, -1) != 0 and cpu.flags.zf:
        branch(cpu, target.read())


@implements("LOOPNE")
def loopne(cpu: Cpu, target: Operand) -> None:
    """Count := Count - 1; IF Count != 0 AND ZF = 0 THEN branch (flags unchanged)."""
    if add_at_address_size(cpu, ECX, -1) != 0 and not cpu.flags.zf:
        branch(cpu, target.read())


@implements("JCXZ")
def jcxz(cpu: Cpu, target: Operand) -> None:
    """IF CX = 0 (JCXZ, 16-bit address size) or ECX = 0 (JECXZ) THEN branch."""
    if count_register(cpu) == 0:
        branch(cpu, target.read())


@implements("ENTER")
def enter(cpu: Cpu, alloc: Operand, nesting: Operand) -> None:
    """Push(eBP); FrameTemp := eSP; copy NestingLevel-1 frame pointers from [eBP-k*size]
    then push FrameTemp (if NestingLevel > 0); eBP := FrameTemp; eSP := eSP - AllocSize.

    NestingLevel is imm8 MOD 32. Pushes and the eBP write follow the operand size, eSP
    and the addresses of the copied pointers the stack size. Measured on the host CPU:
    with 66 on a 32-bit stack it kept EBP's upper half and took the allocation from all
    of ESP; with a 32-bit operand on a 16-bit stack (an LDT segment) FrameTemp was the
    whole ESP, upper half included, while only SP moved. The SDM's loop steps eBP itself
    before eBP := FrameTemp overwrites it; a temporary does the same without touching
    EBP's upper half.
    """
    size = cpu.insn.opsize
    nbytes = size >> 3
    level = nesting.read() % 32
    stack_mask = 0xFFFFFFFF if cpu.stack_size == 32 else 0xFFFF
    frame_pointer = gpr(cpu, EBP, size)
    esp_before = cpu.regs[ESP]
    cpu.push(frame_pointer.read(), size)
    frame_temp = cpu.regs[ESP]  # the whole register, even on a 16-bit stack (measured)
    if level > 0:
        display = cpu.regs[EBP]
        try:
            for _ in range(level - 1):
                display = (display - nbytes) & stack_mask
                cpu.push(cpu.read(SS, display, nbytes), size)
            cpu.push(frame_temp & frame_pointer.mask, size)
        except (Fault, Unmapped) as stop:
            # Measured (step32, enter 0,2 with [EBP-4] unmapped): the host CPU reports
            # the fault with the registers as before ENTER but Push(eBP) left in memory;
            # Unicorn agrees. ESP is the one register changed so far.
            cpu.regs[ESP] = esp_before
            keep_state_at_fault(cpu, stop)
            raise
    frame_pointer.write(frame_temp & frame_pointer.mask)
    cpu.adjust_sp(-alloc.read())


@implements("LEAVE")
def leave(cpu: Cpu) -> None:
    """eSP := eBP (at the stack size); eBP := Pop() (BP or EBP by operand size)."""
    if cpu.stack_size == 32:
        cpu.regs[ESP] = cpu.regs[EBP]
    else:
        cpu.regs[ESP] = (cpu.regs[ESP] & 0xFFFF0000) | (cpu.regs[EBP] & 0xFFFF)
    frame_pointer = gpr(cpu, EBP, cpu.insn.opsize)
    frame_pointer.write(cpu.pop(frame_pointer.size))


def software_interrupt(vector: int) -> Fault:
    """The trap INT n, INT3 and INTO raise: delivered with EIP past the instruction,
    and in protected mode only through a gate whose DPL >= CPL (SDM Vol. 3A, 6.12.1.1)."""
    fault = Fault(vector, trap=True)
    fault.software = True
    return fault


@implements("INT3")
def int3(cpu: Cpu) -> None:
    """The one-byte breakpoint: a #BP (vector 3) trap."""
    raise software_interrupt(BP)


@implements("INT1")
def int1(cpu: Cpu) -> None:
    """ICEBP (F1): a #DB trap, EIP past the instruction. Unlike INT n it is delivered as
    a hardware event: no check of the gate's DPL (SDM Vol. 3A, 6.12.1.1)."""
    raise Fault(DB, trap=True)


@implements("INT")
def int_n(cpu: Cpu, vector: Operand) -> None:
    """Software interrupt ``vector``: a trap, EIP past the instruction. In
    virtual-8086 mode it is IOPL-sensitive (#GP(0) at IOPL < 3); INT3 and INTO are
    not (SDM Vol. 2A, INT n, Operation)."""
    require_vm86_iopl3(cpu)
    raise software_interrupt(vector.read())


@implements("INTO")
def into(cpu: Cpu) -> None:
    """IF OF = 1 THEN #OF (vector 4) as a trap; otherwise nothing."""
    if cpu.flags.of:
        raise software_interrupt(OVERFLOW)
