"""Bytes -> ``Insn``: legacy prefixes, one- and two-byte opcode maps, ModRM/SIB, immediates.

The opcode map is built from ``FORMS`` at import (``OPCODE_MAP``); nothing here knows an
instruction by name. Faults follow the hardware: an instruction longer than 15 bytes
raises #GP(0), an undefined opcode or ``/digit`` raises #UD, and so do LOCK on a form or
operand that does not allow it, a register where only memory is allowed (``M``), and a
segment register number above GS (or CS as a MOV destination).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Tuple, Union

from reference.faults import GP, UD, Fault
from reference.isa.form import FIXED_REGS, SEG_NAMES, SIZE_LETTERS, Form
from reference.isa.table import FORMS
from reference.operands import (
    CS,
    DS,
    ES,
    SS,
    FarMem,
    FarPtr,
    Imm,
    Mem,
    Operand,
    Rel,
    SegReg,
    SystemReg,
    gpr,
)
from reference.system.control_registers import read_cr, write_cr
from reference.system.debug_registers import read_dr, write_dr
from reference.x87.fpu import StackRegister

if TYPE_CHECKING:  # pragma: no cover
    from reference.cpu import Cpu

MAX_LENGTH = 15
SEGMENT_PREFIXES = {0x26: ES, 0x2E: CS, 0x36: SS, 0x3E: DS, 0x64: 4, 0x65: 5}
OPSIZE, ADSIZE, LOCK, REPNE, REP = 0x66, 0x67, 0xF0, 0xF2, 0xF3

# opcode bytes -> a Form (no ModRM digit) or {digit: Form} for /digit groups
Entry = Union[Form, Dict[int, Form]]


def _build_map() -> Dict[Tuple[int, ...], Entry]:
    table: Dict[Tuple[int, ...], Entry] = {}
    plus_r: List[Form] = []
    for form in FORMS:
        enc = form.enc
        if enc.plus_r:
            plus_r.append(form)
        elif enc.digit is not None:
            group = table.setdefault(enc.opcode, {})
            if not isinstance(group, dict) or enc.digit in group:
                raise ValueError(f"opcode map clash at {form.encoding} ({form.name})")
            group[enc.digit] = form
        elif enc.opcode in table:
            raise ValueError(f"opcode map clash at {form.encoding} ({form.name})")
        else:
            table[enc.opcode] = form
    for form in plus_r:  # explicit rows win: 90 is NOP, not XCHG eAX, eAX
        for reg in range(8):
            key = form.enc.opcode[:-1] + (form.enc.opcode[-1] + reg,)
            table.setdefault(key, form)
    return table


OPCODE_MAP = _build_map()
TWO_BYTE_LEADS = {key[0] for key in OPCODE_MAP if len(key) == 2} - set(range(0xD8, 0xE0))

ESCAPES = range(0xD8, 0xE0)  # x87: the ModRM byte takes part in choosing the row
X87_OPERANDS = ("ST0", "STi", "Mt")


def _escape_opcode(reader: _Reader, byte: int) -> Tuple[int, ...]:
    """D8-DF: with a register ModRM (mod 3) the whole byte names the row ("D9 E8",
    "D8 C0+r") and is consumed here; with a memory one the reg field does ("D9 /0")."""
    modrm = reader.byte()
    if modrm >> 6 == 3:
        return (byte, modrm)
    reader.unread()  # the ModRM byte is read again with its addressing bytes
    return (byte,)


def _x87_operand(cpu: Cpu, reader: _Reader, spec: str, insn: Insn, mod: int, rm: int,
                 low3: int) -> object:
    """ST(0), ST(i) from the low three bits of a register ModRM, or an 80-bit m80."""
    if spec == "ST0":
        return StackRegister(0)
    if spec == "STi":
        return StackRegister(low3)
    return _modrm_memory(cpu, reader, mod, rm, insn.adsize, insn.seg, 80)


class Insn:
    """One decoded instruction, cached by physical address and executed many times.

    Semantics see it as ``cpu.insn``: ``form``, ``operands``, ``length``, ``opsize`` and
    ``adsize`` (16/32), ``seg`` (override segment index or None), ``rep`` (None, "rep"
    for F3 or "repne" for F2; for CMPS/SCAS "rep" means REPE), ``lock``, ``cond``
    (condition code of Jcc/SETcc/CMOVcc), ``reg`` (ModRM reg field) and ``raw`` bytes.
    """

    __slots__ = ("form", "operands", "length", "opsize", "adsize", "seg", "rep", "lock",
                 "cond", "reg", "raw", "fn", "opcode", "execute", "conditional_undefined",
                 "fixed_undefined", "invalid", "hits", "block", "stepped")

    def __init__(self) -> None:
        self.fn: Optional[Callable[..., None]] = None
        self.stepped = False  # run() always sends it through step() (reference.step)
        self.hits = 0  # fast-path executions, until a block is compiled from here
        self.block = None  # the reference.blocks.compiler.Block starting here

    def __repr__(self) -> str:
        return f"<Insn {self.form.name} {self.raw.hex(' ')}>"


class _Reader:
    """Reads instruction bytes one at a time, enforcing the 15-byte limit: from
    ``window`` (the bytes at ``linear`` its caller already had, ``code_window``) while it
    lasts, then each from ``fetch`` (what lies past the window: the next page, a
    device), which keeps them in ``raw``. ``bytes_read()``: the instruction's bytes."""

    __slots__ = ("fetch", "linear", "count", "raw", "window", "size")

    def __init__(self, fetch: Callable[[int], int], linear: int,
                 window: Union[bytes, bytearray] = b"") -> None:
        self.fetch = fetch
        self.linear = linear
        self.count = 0
        self.raw = bytearray()
        self.window = window
        self.size = len(window)

    def byte(self) -> int:
        count = self.count
        if count >= MAX_LENGTH:
            raise Fault(GP, 0)
        if count < self.size:
            self.count = count + 1
            return self.window[count]
        value = self.fetch((self.linear + count) & 0xFFFFFFFF)  # wraps at 4 GiB
        self.count = count + 1
        self.raw.append(value)
        return value

    def unread(self) -> None:
        """Give the last byte back: it is read again."""
        self.count -= 1
        if self.count >= self.size:
            del self.raw[-1]

    def bytes_read(self) -> bytes:
        """The bytes read so far, in order."""
        if self.count <= self.size:
            return bytes(self.window[:self.count])
        return bytes(self.window) + bytes(self.raw)

    def unsigned(self, nbytes: int) -> int:
        value = 0
        for i in range(nbytes):
            value |= self.byte() << (8 * i)
        return value

    def signed(self, nbytes: int) -> int:
        value = self.unsigned(nbytes)
        top = 1 << (8 * nbytes - 1)
        return value - (top << 1) if value & top else value


_RM16 = ((3, 6), (3, 7), (5, 6), (5, 7), (6, None), (7, None), (5, None), (3, None))


def _modrm_memory(cpu: Cpu, reader: _Reader, mod: int, rm: int, adsize: int,
                  seg: Optional[int], size: int) -> Mem:
    """The memory operand of a ModRM byte with mod != 3 (SDM Vol. 2A, Tables 2-1..2-3)."""
    index: Optional[int] = None
    scale = 1
    if adsize == 16:
        base, index = _RM16[rm]
        if mod == 0 and rm == 6:
            base, index, disp = None, None, reader.unsigned(2)
        else:
            disp = reader.signed(mod) if mod else 0  # mod 1: disp8, mod 2: disp16
        default = SS if base == 5 else DS
    else:
        base = rm
        if rm == 4:
            sib = reader.byte()
            scale, idx, base = 1 << (sib >> 6), (sib >> 3) & 7, sib & 7
            index = None if idx == 4 else idx
            if base == 5 and mod == 0:
                base = None
                disp = reader.signed(4)
        if mod == 0 and rm == 5:
            base = None
            disp = reader.signed(4)
        elif mod == 1:
            disp = reader.signed(1)
        elif mod == 2:
            disp = reader.signed(4)
        elif base is not None:
            disp = 0
        default = SS if base in (4, 5) else DS
    return Mem(cpu, size, default if seg is None else seg, base, index, scale, disp, adsize)


def decode(cpu: Cpu, linear: int, fetch: Callable[[int], int],
           window: Union[bytes, bytearray] = b"") -> Insn:
    """Decode the instruction at ``linear``; ``fetch(address) -> byte`` reads code, past
    ``window``: the bytes at ``linear`` already read (``reference.memory.code_window``),
    each of which ``fetch`` would have given."""
    reader = _Reader(fetch, linear, window)
    opsize = adsize = cpu.default_size
    seg: Optional[int] = None
    rep: Optional[str] = None
    lock = False
    while True:
        byte = reader.byte()
        if byte == OPSIZE:
            opsize = 48 - cpu.default_size
        elif byte == ADSIZE:
            adsize = 48 - cpu.default_size
        elif byte in SEGMENT_PREFIXES:
            seg = SEGMENT_PREFIXES[byte]
        elif byte == LOCK:
            lock = True
        elif byte == REP:
            rep = "rep"
        elif byte == REPNE:
            rep = "repne"
        else:
            break
    opcode: Tuple[int, ...] = (byte,)
    if byte in ESCAPES:
        opcode = _escape_opcode(reader, byte)
    elif byte in TWO_BYTE_LEADS:
        opcode = (byte, reader.byte())
    entry = OPCODE_MAP.get(opcode)
    if entry is None:
        raise Fault(UD)
    mod = reg = rm = -1
    form = entry if isinstance(entry, Form) else None
    if form is None or form.enc.modrm:
        modrm = reader.byte()
        mod, reg, rm = modrm >> 6, (modrm >> 3) & 7, modrm & 7
        if form is None:
            form = entry.get(reg)  # type: ignore[union-attr]
            if form is None:  # an undefined /digit: fetch the addressing bytes, then #UD
                if mod != 3:
                    _modrm_memory(cpu, reader, mod, rm, adsize, seg, 8)
                raise Fault(UD)
    insn = Insn()
    insn.invalid = lock and (not form.lockable or mod == 3)
    insn.form, insn.opsize, insn.adsize, insn.seg, insn.rep = form, opsize, adsize, seg, rep
    insn.lock, insn.cond, insn.reg, insn.opcode = lock, form.cond, reg, opcode
    operands = []
    for spec in form.specs:
        operands.append(_operand(cpu, reader, spec, insn, mod, rm, opcode[-1] & 7))
    if insn.invalid:
        # Fetching the whole instruction comes before decode faults (SDM Vol. 3A, Table
        # 6-2: code fetch faults have priority over #UD), so this waits until here.
        raise Fault(UD)
    insn.operands = tuple(operands)
    insn.length = reader.count
    insn.raw = reader.bytes_read()
    return insn


def _size(letter: str, opsize: int) -> int:
    if letter in ("v", "z", "vw"):
        return opsize
    if letter == "a":
        return 2 * opsize
    return SIZE_LETTERS[letter]


def _operand(cpu: Cpu, reader: _Reader, spec: str, insn: Insn, mod: int, rm: int,
             low3: int) -> Operand:
    """Build one operand from its Appendix-A spec (see ``reference.isa.form``)."""
    opsize, adsize = insn.opsize, insn.adsize
    if spec in X87_OPERANDS:
        return _x87_operand(cpu, reader, spec, insn, mod, rm, low3)  # type: ignore[return-value]
    if spec in FIXED_REGS:
        _, number, size = FIXED_REGS[spec]
        return gpr(cpu, number, size or opsize)
    if spec in SEG_NAMES:
        return SegReg(cpu, SEG_NAMES.index(spec))
    if spec == "1":
        return Imm(cpu, 1, 8)
    kind, letters = spec[0], spec[1:]
    if kind in "EM":
        if mod == 3:
            if kind == "M":
                insn.invalid = True  # a register where only memory is allowed
                return gpr(cpu, rm, 32)
            return gpr(cpu, rm, _size(letters, opsize))
        if letters == "p":
            mem = _modrm_memory(cpu, reader, mod, rm, adsize, insn.seg, opsize)
            return FarMem(cpu, mem)
        size = 16 if letters == "vw" else (_size(letters, opsize) if letters else opsize)
        return _modrm_memory(cpu, reader, mod, rm, adsize, insn.seg, size)
    if kind == "G":
        return gpr(cpu, insn.reg, _size(letters, opsize))
    if kind == "S":
        if insn.reg > 5 or (insn.reg == CS and insn.form.specs[0] == spec):
            insn.invalid = True  # no such segment register; MOV CS, r/m is invalid
            return SegReg(cpu, CS)
        return SegReg(cpu, insn.reg)
    if kind == "Z":
        return gpr(cpu, low3, _size(letters, opsize))
    if kind == "R":
        return gpr(cpu, rm, 32)
    if kind == "C":
        if insn.reg not in (0, 2, 3, 4):
            insn.invalid = True  # CR1, CR5-CR7 do not exist
        return SystemReg(cpu, insn.reg, read_cr, write_cr)
    if kind == "D":
        return SystemReg(cpu, insn.reg, read_dr, write_dr)
    if kind == "I":
        if letters == "bs":
            return Imm(cpu, reader.signed(1), opsize)
        size = _size(letters, opsize)
        return Imm(cpu, reader.unsigned(size >> 3), size)
    if kind == "J":
        nbytes = 1 if letters == "b" else opsize >> 3
        return Rel(cpu, reader.signed(nbytes), opsize)
    if kind == "O":
        offset = reader.unsigned(adsize >> 3)
        seg = DS if insn.seg is None else insn.seg
        return Mem(cpu, _size(letters, opsize), seg, None, None, 1, offset, adsize)
    if kind == "X":
        seg = DS if insn.seg is None else insn.seg
        return Mem(cpu, _size(letters, opsize), seg, 6, None, 1, 0, adsize)
    if kind == "Y":  # ES:eDI; ES cannot be overridden
        return Mem(cpu, _size(letters, opsize), ES, 7, None, 1, 0, adsize)
    if kind == "A":
        offset = reader.unsigned(opsize >> 3)
        return FarPtr(cpu, reader.unsigned(2), offset, opsize)
    raise ValueError(f"form {insn.form.name}: unknown operand spec {spec!r}")


def decode_bytes(code: bytes, mode: str = "prot32") -> Insn:
    """Decode the first instruction of ``code`` (for tools: coverage, labelling).

    Raises ``Fault`` (#UD, #GP(0) past 15 bytes) like the CPU would, and ``Unmapped``
    when ``code`` ends inside the instruction. Operands are bound to a scratch CPU."""
    from reference.cpu import Cpu
    from reference.faults import Unmapped
    from reference.memory import SparseMemory

    def fetch(address: int) -> int:
        if address >= len(code):
            raise Unmapped(address, "fetch")
        return code[address]

    return decode(Cpu(SparseMemory(), mode), 0, fetch)
