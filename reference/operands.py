"""Operands bound to a CPU: what a semantics function reads and writes.

Every operand has ``size`` (bits), ``mask`` (all ones of that size), ``read()`` and, when
it is a destination, ``write(value)`` (``value`` already masked to ``size``). Memory
operands also have ``is_mem = True``, ``offset()`` (the effective address, what LEA
stores) and ``seg`` (segment register index). Register operands are specialised per size
so the common case is one list access; that is the speed trick, kept in this file.

The block compiler (``reference.blocks``) inlines operand accesses: ``source_read()``,
``source_write(name)`` and ``source_offset()`` give the Python source of exactly what
``read``, ``write`` and ``offset`` do, with ``regs`` standing for ``cpu.regs`` and the
operand's fields as constants (None: this operand is not inlined, the compiled code
calls it). Each sits beside the method it mirrors. An operand's ``constant()`` (an
immediate, a displacement) may be written as a name instead (their ``constant`` argument):
code made once per shape of instruction fills in each instruction's own
(``reference.blocks.snippets``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional, Tuple

if TYPE_CHECKING:  # pragma: no cover
    from reference.cpu import Cpu

# Segment register indexes in encoding order (ModRM reg field of 8C/8E).
ES, CS, SS, DS, FS, GS = range(6)


class Operand:
    """Base class: a value of ``size`` bits somewhere in the machine."""

    __slots__ = ("cpu", "size", "mask")
    is_mem = False
    is_reg = False

    def __init__(self, cpu: Cpu, size: int) -> None:
        self.cpu = cpu
        self.size = size
        self.mask = (1 << size) - 1

    def read(self) -> int:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    def write(self, value: int) -> None:
        raise TypeError(f"{type(self).__name__} operand is not writable")

    def sign(self, value: int) -> int:
        """``value`` (of this operand's size) as a signed Python int."""
        return value - (1 << self.size) if value >> (self.size - 1) else value

    def source_read(self, constant: Optional[str] = None) -> Optional[str]:
        return None

    def source_write(self, value: str, constant: Optional[str] = None) -> Optional[str]:
        return None

    def source_offset(self, constant: Optional[str] = None) -> Optional[str]:
        return None

    CONSTANT: Optional[str] = None
    """The slot holding the number ``constant()`` gives, if the class has one."""

    def constant(self) -> Optional[int]:
        """The number in this operand's source (an immediate, a displacement) that code
        made once per shape of instruction writes as a name (the ``constant`` argument
        of the ``source_*`` methods); None when it has none."""
        return None if self.CONSTANT is None else getattr(self, self.CONSTANT)  # type: ignore[no-any-return]

    def shape(self) -> Tuple[Any, ...]:
        """What this operand's source depends on apart from ``constant()``: its class and
        its fields (but the CPU and that constant)."""
        skip = ("cpu", self.CONSTANT if self.constant() is not None else None)
        return (type(self),) + tuple(getattr(self, slot) for cls in type(self).__mro__
                                     for slot in getattr(cls, "__slots__", ())
                                     if slot not in skip)


class Reg32(Operand):
    """EAX..EDI by index 0..7."""

    __slots__ = ("index",)
    is_reg = True

    def __init__(self, cpu: Cpu, index: int) -> None:
        super().__init__(cpu, 32)
        self.index = index

    def read(self) -> int:
        return self.cpu.regs[self.index]

    def write(self, value: int) -> None:
        self.cpu.regs[self.index] = value

    def source_read(self, constant: Optional[str] = None) -> Optional[str]:
        return f"regs[{self.index}]" if type(self) is Reg32 else None

    def source_write(self, value: str, constant: Optional[str] = None) -> Optional[str]:
        return f"regs[{self.index}] = {value}" if type(self) is Reg32 else None


class Reg16(Reg32):
    """AX..DI: the low half; writing keeps the upper 16 bits."""

    __slots__ = ()

    def __init__(self, cpu: Cpu, index: int) -> None:
        Operand.__init__(self, cpu, 16)
        self.index = index

    def read(self) -> int:
        return self.cpu.regs[self.index] & 0xFFFF

    def write(self, value: int) -> None:
        regs = self.cpu.regs
        regs[self.index] = (regs[self.index] & 0xFFFF0000) | value

    def source_read(self, constant: Optional[str] = None) -> Optional[str]:
        return f"(regs[{self.index}] & 0xFFFF)"

    def source_write(self, value: str, constant: Optional[str] = None) -> Optional[str]:
        return f"regs[{self.index}] = (regs[{self.index}] & 0xFFFF0000) | {value}"


class Reg8(Operand):
    """AL CL DL BL (index 0-3: low byte) and AH CH DH BH (4-7: bits 8-15 of reg index-4)."""

    __slots__ = ("index", "shift")
    is_reg = True

    def __init__(self, cpu: Cpu, number: int) -> None:
        super().__init__(cpu, 8)
        self.index = number & 3
        self.shift = 8 if number & 4 else 0

    def read(self) -> int:
        return (self.cpu.regs[self.index] >> self.shift) & 0xFF

    def write(self, value: int) -> None:
        regs = self.cpu.regs
        regs[self.index] = (regs[self.index] & ~(0xFF << self.shift)) | (value << self.shift)

    def source_read(self, constant: Optional[str] = None) -> Optional[str]:
        return f"((regs[{self.index}] >> {self.shift}) & 0xFF)"

    def source_write(self, value: str, constant: Optional[str] = None) -> Optional[str]:
        i, shift = self.index, self.shift
        return f"regs[{i}] = (regs[{i}] & {~(0xFF << shift)}) | ({value} << {shift})"


def gpr(cpu: Cpu, number: int, size: int) -> Operand:
    """The general register ``number`` (ModRM encoding) at ``size`` bits."""
    if size == 32:
        return Reg32(cpu, number)
    if size == 16:
        return Reg16(cpu, number)
    return Reg8(cpu, number)


class SegReg(Operand):
    """A segment register: reads its selector; writes load it (``Cpu.load_segment``)."""

    __slots__ = ("index",)
    is_reg = True

    def __init__(self, cpu: Cpu, index: int) -> None:
        super().__init__(cpu, 16)
        self.index = index

    def read(self) -> int:
        return self.cpu.sregs[self.index]

    def write(self, value: int) -> None:
        self.cpu.load_segment(self.index, value)
        if self.index == SS:  # MOV SS / POP SS: no interrupt before the next instruction
            self.cpu.interrupt_shadow = True


class SystemReg(Operand):
    """A control or debug register (MOV to/from CRn or DRn). Reads and writes go through
    the functions of the module that owns its checks and side effects
    (``reference.system.control_registers`` read_cr/write_cr, ``debug_registers``
    read_dr/write_dr)."""

    __slots__ = ("number", "_read", "_write")
    is_reg = True

    def __init__(self, cpu: Cpu, number: int, read: Callable[[Cpu, int], int],
                 write: Callable[[Cpu, int, int], None]) -> None:
        super().__init__(cpu, 32)
        self.number, self._read, self._write = number, read, write

    def read(self) -> int:
        return self._read(self.cpu, self.number)

    def write(self, value: int) -> None:
        self._write(self.cpu, self.number, value)


class Imm(Operand):
    """An immediate, already zero- or sign-extended to ``size`` by the decoder."""

    __slots__ = ("value",)

    def __init__(self, cpu: Cpu, value: int, size: int) -> None:
        super().__init__(cpu, size)
        self.value = value & self.mask

    def read(self) -> int:
        return self.value

    CONSTANT = "value"

    def source_read(self, constant: Optional[str] = None) -> Optional[str]:
        return str(self.value) if constant is None else constant


class Rel(Operand):
    """A relative branch target: ``read()`` is the target EIP (next EIP + displacement,
    truncated to the operand size). Valid during execution, when ``cpu.eip`` already
    holds the next instruction's address."""

    __slots__ = ("disp",)

    def __init__(self, cpu: Cpu, disp: int, size: int) -> None:
        super().__init__(cpu, size)
        self.disp = disp  # signed

    def read(self) -> int:
        return (self.cpu.eip + self.disp) & self.mask

    CONSTANT = "disp"

    def source_read(self, constant: Optional[str] = None) -> Optional[str]:
        return f"((cpu.eip + {self.disp if constant is None else constant}) & {self.mask})"


class FarPtr(Operand):
    """ptr16:16 or ptr16:32 (JMP far EA): ``selector`` and ``offset``; read() = offset."""

    __slots__ = ("selector", "offset_value")

    def __init__(self, cpu: Cpu, selector: int, offset: int, size: int) -> None:
        super().__init__(cpu, size)
        self.selector = selector
        self.offset_value = offset

    def read(self) -> int:
        return self.offset_value


class Mem(Operand):
    """A memory operand: seg:[base + index*scale + disp], wrapped to the address size.

    ``base``/``index`` are register numbers or None. The address is computed at each
    access from the current registers, so a cached decoded instruction stays valid.
    """

    __slots__ = ("seg", "base", "index", "scale", "disp", "admask")
    is_mem = True

    def __init__(self, cpu: Cpu, size: int, seg: int, base: Optional[int],
                 index: Optional[int], scale: int, disp: int, adsize: int) -> None:
        super().__init__(cpu, size)
        self.seg = seg
        self.base = base
        self.index = index
        self.scale = scale
        self.disp = disp
        self.admask = (1 << adsize) - 1

    def offset(self) -> int:
        """The effective address (offset within the segment)."""
        regs = self.cpu.regs
        ea = self.disp
        if self.base is not None:
            ea += regs[self.base]
        if self.index is not None:
            ea += regs[self.index] * self.scale
        return ea & self.admask

    def read(self) -> int:
        return self.cpu.read(self.seg, self.offset(), self.size >> 3)

    def write(self, value: int) -> None:
        self.cpu.write(self.seg, self.offset(), self.size >> 3, value)

    def constant(self) -> Optional[int]:
        """The displacement, when the source holds one (``source_offset``)."""
        return self.disp if self.disp and type(self) is Mem else None

    CONSTANT = "disp"

    def source_offset(self, constant: Optional[str] = None) -> Optional[str]:
        if type(self) is not Mem:  # pieces and far pointers keep their own methods
            return None
        terms = [str(self.disp) if constant is None else constant] if self.disp else []  # as
        if self.base is not None:  # offset() sums them, less a zero displacement and a
            terms.append(f"regs[{self.base}]")  # scale of 1
        if self.index is not None:
            terms.append(f"regs[{self.index}]" + (f" * {self.scale}" if self.scale > 1 else ""))
        return f"(({' + '.join(terms) or '0'}) & {self.admask})"

    def source_read(self, constant: Optional[str] = None) -> Optional[str]:
        offset = self.source_offset(constant)
        return None if offset is None else f"cpu.read({self.seg}, {offset}, {self.size >> 3})"

    def source_write(self, value: str, constant: Optional[str] = None) -> Optional[str]:
        offset = self.source_offset(constant)
        if offset is None:
            return None
        return f"cpu.write({self.seg}, {offset}, {self.size >> 3}, {value})"

    def part(self, delta: int, size: int) -> MemPart:
        """The ``size``-bit piece ``delta`` bytes into this operand (BOUND's upper bound,
        a far pointer's selector): the address is EA + delta with no wrap at the address
        size, so a piece beyond the segment limit faults, as on hardware."""
        return MemPart(self, delta, size)

    def at(self, delta: int, size: int) -> Mem:
        """The ``size``-bit memory operand ``delta`` bytes further, the delta joining the
        effective address (which wraps at the address size): BT's addressed word."""
        return Mem(self.cpu, size, self.seg, self.base, self.index, self.scale,
                   self.disp + delta, self.admask.bit_length())


class FarMem(Mem):
    """m16:16 / m16:32 (LDS, JMP FAR [mem]): ``read()`` is the offset (operand size),
    ``selector`` the word after it; the same interface as FarPtr, so one semantics
    function serves the immediate and the memory form."""

    __slots__ = ()

    def __init__(self, cpu: Cpu, mem: Mem) -> None:
        Mem.__init__(self, cpu, mem.size, mem.seg, mem.base, mem.index, mem.scale, mem.disp,
                     mem.admask.bit_length())

    @property
    def selector(self) -> int:
        return self.cpu.read(self.seg, self.offset() + (self.size >> 3), 2)


class MemPart(Mem):
    """A piece of a larger memory operand: ``offset()`` is the whole operand's effective
    address plus ``delta`` (see ``Mem.part``)."""

    __slots__ = ("whole", "delta")

    def __init__(self, whole: Mem, delta: int, size: int) -> None:
        Mem.__init__(self, whole.cpu, size, whole.seg, whole.base, whole.index, whole.scale,
                     whole.disp, whole.admask.bit_length())
        self.whole = whole
        self.delta = delta

    def offset(self) -> int:
        return self.whole.offset() + self.delta
