"""Flag instructions: CLC STC CMC CLD STD CLI STI (SDM Vol. 2A/2B).

Each one changes exactly one EFLAGS bit and nothing else. CLI and STI are the only ones
with a privilege rule: in protected mode they need CPL <= IOPL, else #GP(0) (the VME/PVI
virtual-interrupt variants are not modelled: the reference has no virtual-8086 mode).
STI sets the one-instruction interrupt shadow that the step loop honours.
"""

from __future__ import annotations

from reference.cpu import Cpu
from reference.faults import GP, Fault
from reference.flags import IOPL
from reference.semantics import implements


@implements("CLC")
def clc(cpu: Cpu) -> None:
    """CF := 0."""
    cpu.flags.cf = 0


@implements("STC")
def stc(cpu: Cpu) -> None:
    """CF := 1."""
    cpu.flags.cf = 1


@implements("CMC")
def cmc(cpu: Cpu) -> None:
    """CF := NOT CF."""
    cpu.flags.cf = 1 - cpu.flags.cf


@implements("CLD")
def cld(cpu: Cpu) -> None:
    """DF := 0 (string instructions count up)."""
    cpu.flags.df = 0


@implements("STD")
def std(cpu: Cpu) -> None:
    """DF := 1 (string instructions count down)."""
    cpu.flags.df = 1


def current_privilege(cpu: Cpu) -> int:
    """CPL: 0 in real mode; in protected mode ``cpu.cpl``, set by CS loads (SDM Vol.
    3A, 5.5: the DPL of the current code segment, which a CS load copies into CS.RPL);
    3 in virtual-8086 mode (SDM Vol. 3B, 20.2.1)."""
    return 0 if cpu.mode == "real16" else cpu.cpl


def require_iopl(cpu: Cpu) -> None:
    """#GP(0) unless CPL <= IOPL: the SDM's check for CLI and STI in protected mode
    (real mode has no privilege levels). In virtual-8086 mode CPL is 3, so this is
    the IOPL < 3 rule of SDM Vol. 3B, 20.2.7."""
    iopl = (cpu.flags.value & IOPL) >> 12
    if cpu.mode != "real16" and current_privilege(cpu) > iopl:
        raise Fault(GP, 0)


def require_vm86_iopl3(cpu: Cpu) -> None:
    """PUSHF, POPF, INT n and IRET in virtual-8086 mode without VME: #GP(0) unless
    IOPL = 3 (SDM Vol. 3B, 20.2.7 "Sensitive Instructions"; each one's Operation)."""
    if cpu.mode == "vm86" and cpu.flags.value & IOPL != IOPL:
        raise Fault(GP, 0)


@implements("CLI")
def cli(cpu: Cpu) -> None:
    """IF := 0 (maskable interrupts off); #GP(0) in protected mode if CPL > IOPL."""
    require_iopl(cpu)
    cpu.flags.if_ = 0


@implements("STI")
def sti(cpu: Cpu) -> None:
    """IF := 1 (maskable interrupts on); #GP(0) in protected mode if CPL > IOPL. If IF
    was 0, interrupts stay blocked until after the next instruction (the STI shadow)."""
    require_iopl(cpu)
    if not cpu.flags.if_:
        cpu.interrupt_shadow = True
    cpu.flags.if_ = 1
