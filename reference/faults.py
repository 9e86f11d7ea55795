"""Guest-caused exceptions, as Python exceptions that never leave ``Cpu.step``.

Semantics and the decoder ``raise Fault(vector, error_code)`` exactly where the SDM's
Operation section says "#GP(0)" or "#DE"; the step loop catches it, rolls the instruction
back and hands it to the CPU's delivery policy. ``Unmapped`` is not a CPU exception: it
says the test memory has no page there (Unicorn's UC_ERR_*_UNMAPPED), so a case can end
cleanly instead of inventing a #PF that the hardware would not raise.
"""

from __future__ import annotations

from typing import Optional

# Vector numbers, SDM Vol. 3A, Table 6-1 "Protected-Mode Exceptions and Interrupts".
DE = 0   # divide error
DB = 1   # debug
NMI = 2  # non-maskable interrupt
BP = 3   # breakpoint (INT3), a trap
OF = 4   # overflow (INTO), a trap
BR = 5   # BOUND range exceeded
UD = 6   # invalid opcode
NM = 7   # device not available
DF = 8   # double fault
TS = 10  # invalid TSS
NP = 11  # segment not present
SS = 12  # stack-segment fault
GP = 13  # general protection
PF = 14  # page fault
MF = 16  # x87 floating-point error
AC = 17  # alignment check


class Fault(Exception):
    """A CPU exception raised by the current instruction.

    ``trap=False`` (a fault) means the instruction did not happen: state is rolled back
    and EIP points at it. ``trap=True`` (INT n, INT3, INTO) means it completed: state is
    kept and EIP points at the next instruction, as the SDM's saved return address says.
    ``partial=True`` means a fault part-way that keeps what the instruction did so far
    (a REP string's finished iterations, ENTER's pushed frame pointer): the semantics
    set the reported state themselves (EIP back on the instruction), nothing is rolled
    back.
    """

    def __init__(self, vector: int, error_code: Optional[int] = None, trap: bool = False):
        super().__init__(vector, error_code, trap)
        self.vector = vector
        self.error_code = error_code
        self.trap = trap
        self.partial = False
        self.software = False  # INT n, INT3, INTO: the IDT gate's DPL is checked, EXT = 0
        self.external = False  # an interrupt from the INTR/NMI line: no error code

    def __repr__(self) -> str:
        kind = "trap" if self.trap else "fault"
        code = "" if self.error_code is None else f", error_code={self.error_code:#x}"
        return f"Fault({self.vector}{code}, {kind})"


class Unmapped(Exception):
    """An access to a linear address that the test memory does not hold."""

    def __init__(self, address: int, access: str):
        super().__init__(f"{access} of unmapped address {address:#010x}")
        self.address = address
        self.access = access  # "read", "write" or "fetch"
        self.partial = False  # as Fault.partial: finished REP iterations are kept


class Unimplemented(NotImplementedError):
    """The decoded form has no semantics yet: a gap in the emulator, not a guest error."""
