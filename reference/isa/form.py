"""One row of the opcode table: ``Form`` and the small vocabulary its fields use.

Encodings are written as in the SDM's opcode column: ``"01 /r"``, ``"0F AF /r"``,
``"D0 /4"``, ``"50+r"``. Operands use the SDM Appendix A letters:

====== ===============================================================================
``E``  ModRM r/m: register or memory        ``G``  ModRM reg field, general register
``M``  ModRM r/m, memory only (reg -> #UD)  ``S``  ModRM reg field, segment register
``Z``  register in the opcode's low 3 bits   ``I``  immediate; ``Ibs`` = imm8 sign-extended
``J``  relative target (EIP-relative)       ``O``  moffs: address-size offset, no ModRM
``X``  DS:eSI string source (segment override allowed)   ``Y``  ES:eDI string destination
``A``  far pointer ptr16:16/32 (``Ap``)   ``C``  ModRM reg field, control register CRn
``R``  ModRM r/m, always a general register (MOV CRn ignores the mod field)
``D``  ModRM reg field, debug register DRn
====== ===============================================================================

Sizes: ``b`` 8, ``w`` 16, ``d`` 32, ``v`` the operand size (16/32), ``z`` operand size
for immediates (16 or 32), ``q`` 64, ``vw`` operand size for a register but 16 bits in
memory (MOV Evw, Sw: a selector stored to memory is always a word); ``Mp`` a far pointer
in memory (offset of the operand size, then a selector), ``Ma`` a pair of bounds (BOUND),
``Ms`` a pseudo-descriptor (a 16-bit limit, then a 32-bit base: LGDT, SGDT).
Fixed registers are named directly: ``AL``, ``CL``, ``DX``, ``eAX`` (AX/EAX by operand
size), segment registers ``ES CS SS DS FS GS``; the constant ``1`` is the shift count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Tuple

SIZE_LETTERS = {"b": 8, "w": 16, "d": 32, "q": 64, "s": 48}  # "v", "z" depend on the prefix
FIXED_REGS = {"AL": ("gpr", 0, 8), "CL": ("gpr", 1, 8), "DX": ("gpr", 2, 16),
              "eAX": ("gpr", 0, 0)}
SEG_NAMES = ("ES", "CS", "SS", "DS", "FS", "GS")
ALL_MODES = ("real16", "prot32")

# When an Undefined rule applies (evaluated by ``reference.isa.undefined``).
ALWAYS = "always"
# Masked shift/rotate count of 2 or more: OF is defined only for a 1-bit shift or rotate,
# and a masked count of 0 changes no flag at all (SDM Vol. 2B, SAL/SAR/SHL/SHR, RCL/RCR/
# ROL/ROR, SHLD, SHRD: Flags Affected), so 0 must not excuse OF either.
COUNT_ABOVE_1 = "count>1"
COUNT_NOT_0 = "count!=0"          # masked count is not 0
COUNT_OVER_SIZE = "count>size"    # SHLD/SHRD: masked count greater than operand size
COUNT_AT_LEAST_SIZE = "count>=size"  # SHL/SHR CF: masked count at least the operand size
SOURCE_ZERO = "source==0"         # BSF/BSR: the source operand is zero
SIZE_16 = "size==16"              # BSWAP: a 16-bit operand size
CONDITIONS = (ALWAYS, COUNT_ABOVE_1, COUNT_NOT_0, COUNT_OVER_SIZE, COUNT_AT_LEAST_SIZE,
              SOURCE_ZERO, SIZE_16)


@dataclass(frozen=True)
class Undefined:
    """What the SDM leaves undefined for a form, and when.

    ``flags`` is an EFLAGS mask; ``dest=True`` means the destination operand's value is
    undefined too (BSF/BSR on a zero source, SHLD/SHRD with a count above the operand
    size): a comparator masks the whole destination (register or memory bytes).
    """

    flags: int
    when: str = ALWAYS
    dest: bool = False

    def __post_init__(self) -> None:
        if self.when not in CONDITIONS:
            raise ValueError(f"unknown condition {self.when!r}; expected one of {CONDITIONS}")


@dataclass(frozen=True)
class Encoding:
    """The parsed opcode column: opcode bytes, ModRM use and the ``+r`` register form."""

    opcode: Tuple[int, ...]
    modrm: bool          # a ModRM byte follows the opcode
    digit: Optional[int]  # the /digit in the reg field, or None for /r or no ModRM
    plus_r: bool         # low 3 bits of the last opcode byte name a register


def parse_encoding(text: str) -> Encoding:
    """``"0F BA /4"`` -> Encoding((0x0F, 0xBA), modrm=True, digit=4, plus_r=False)."""
    opcode = []
    modrm = plus_r = False
    digit = None
    for token in text.split():
        if token == "/r":
            modrm = True
        elif token.startswith("/") and token[1:].isdigit():
            modrm, digit = True, int(token[1:])
        elif token.endswith("+r"):
            opcode.append(int(token[:-2], 16))
            plus_r = True
        else:
            opcode.append(int(token, 16))
    if not opcode:
        raise ValueError(f"encoding {text!r} has no opcode byte")
    return Encoding(tuple(opcode), modrm, digit, plus_r)


@dataclass(frozen=True)
class Form:
    """One encoding of one instruction, with everything the tools need to know about it.

    ``name`` (default: mnemonic and operands, ``ADD_Ev_Gv``) is the stable key for vector
    files and coverage. ``writes`` are the status flags the form may change; ``undefined``
    lists the SDM's undefined flags/results with ``cite``. ``lockable`` allows LOCK when
    the destination is memory; ``rep`` is ``"rep"`` (F3 repeats) or ``"repe"`` (F3/F2 as
    REPE/REPNE) for string forms. ``cond`` is the condition code of Jcc/SETcc/CMOVcc.
    ``untestable`` says why no oracle can settle this form (the coverage report counts
    it apart); ``version2`` says why the version-1 machine cannot run it (it needs
    system or x87 state), so its differential cases are version-2 vectors
    (``x86lab vectors generate --version 2``, the oracle named in each) and the
    version-1 tools (campaigns, ``vectors generate``, the form tests) leave it out.
    ``modes`` lists the modes it may be generated in. ``fpu_undefined``: the x87 status
    word's condition bits (C0 C1 C2 C3, as a mask of the word) that the SDM's "FPU Flags
    Affected" leaves undefined after this instruction; vectors do not compare them.
    """

    mnemonic: str
    encoding: str
    operands: str = ""
    writes: int = 0
    undefined: Tuple[Undefined, ...] = ()
    cite: str = ""
    name: str = ""
    lockable: bool = False
    rep: str = ""
    cond: Optional[int] = None
    untestable: str = ""
    version2: str = ""
    modes: Tuple[str, ...] = ALL_MODES
    fpu_undefined: int = 0
    note: str = ""
    enc: Encoding = field(init=False, repr=False, compare=False)
    specs: Tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        specs = tuple(s.strip() for s in self.operands.split(",") if s.strip())
        object.__setattr__(self, "specs", specs)
        object.__setattr__(self, "enc", parse_encoding(self.encoding))
        if not self.name:
            object.__setattr__(self, "name", "_".join((self.mnemonic,) + specs))
        if self.undefined and not self.cite:
            raise ValueError(f"form {self.name}: undefined flags need a cite")

    @property
    def not_version1(self) -> str:
        """Why the version-1 differential tools leave this form out ("" if they run it):
        no oracle settles it, or it needs a version-2 vector's system or x87 state."""
        return self.untestable or self.version2

    @property
    def always_undefined(self) -> int:
        """EFLAGS bits undefined whatever the operands (no count/source condition)."""
        mask = 0
        for rule in self.undefined:
            if rule.when == ALWAYS:
                mask |= rule.flags
        return mask
