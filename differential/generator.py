"""Turn drawn choices into complete cases: code placed, stack placed, every page the
instruction touches mapped (sometimes deliberately not, at a page edge), the SDM's
undefined flags for this very execution computed from the table's rules.

Two sources share this: ``form_case`` (an instance of one row of FORMS) and
``bytes_case`` (random bytes behind random legacy prefixes, labelled by Capstone).
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Tuple

from differential.decoded import facts
from differential.draw import Draw
from differential.encoder import SEGMENT_OVERRIDES, encode
from differential.encoding import (
    LEGACY_PREFIXES,
    MAX_INSTRUCTION_LENGTH,
    is_rep_string,
    split_prefixes,
)
from differential.locate import (
    Located,
    Locator,
    from_capstone,
    linear,
    modrm_fields,
    register_name,
)
from differential.operands import (
    decode,
    destination,
    operand_value,
    read_linear,
    register_value,
)
from differential.state import page_bytes, pages_covering, registers
from ground.case import PAGE_SIZE, Case
from reference.isa.form import ALWAYS
from reference.isa.undefined import undefined_for

STACK_REACH = 64  # PUSHA/POPA, ENTER and INT touch up to 32 bytes around eSP; keep margin
# Code and stack usually sit in a few fixed pages (edges of the address space among them).
# In prot32 these pages are part of every case. (They were chosen when Unicorn mapped
# pages per case and a toggle cost 25-400 µs; since its runner keeps a fixed pool of
# frames behind a virtual TLB they cost ~1.5 µs like any page, and stay so that a seed
# draws the same case as before.)
_PAGE_CHOICES = (0x10000, 0x7FFFF000, 0xFFFFF000, 0x00100000)
_ALWAYS_PRESENT = (0x10000, 0x7FFFF000, 0x00100000)  # placeable in an i386 process too
_SELECTOR_CHOICES = (0x0000, 0x0100, 0x7FFF, 0xF000, 0xFFFF)
_LOCATOR = Locator()  # FORMS cases: memory operands read from the bytes (locate.py)
_UNDECODED = object()  # "Capstone not asked yet" (None means it could not decode)


def _fixed_or_random_page(draw: Draw) -> int:
    return draw.choice(_PAGE_CHOICES) if draw.chance(70) else draw.integer(0, 0xFFFFF) << 12


def _fixed_or_random_selectors(draw: Draw, regs: Dict[str, int]) -> None:
    for name in ("cs", "ss"):
        if draw.chance(70):
            regs[name] = draw.choice(_SELECTOR_CHOICES)


def _place_code(draw: Draw, mode: str, regs: Dict[str, int], length: int) -> int:
    """Set EIP (and CS) and return the linear address of the code. Usually well inside a
    page; sometimes ending exactly at a page edge so the next page (mapped or not) matters."""
    if draw.chance(10):
        offset = PAGE_SIZE - draw.integer(1, max(1, length))
    else:
        offset = draw.integer(0, PAGE_SIZE - 32)
    if mode == "real16":
        _fixed_or_random_selectors(draw, regs)
        regs["eip"] = draw.integer(0, 0xFFF0 - PAGE_SIZE) & ~0xFFF | offset
        return (regs["cs"] << 4) + regs["eip"]
    regs["eip"] = _fixed_or_random_page(draw) + offset
    return regs["eip"]


def _place_stack(draw: Draw, mode: str, regs: Dict[str, int]) -> List[int]:
    """Point eSP into a page with room both ways (aligned), or rarely anywhere; return the
    linear addresses the stack instructions may touch."""
    if draw.chance(90):
        page = regs["esp"] & 0xFFFFF000 if mode == "real16" else _fixed_or_random_page(draw)
        regs["esp"] = page | (draw.integer(STACK_REACH, PAGE_SIZE - STACK_REACH) & ~3)
    if mode == "real16":
        regs["esp"] &= 0xFFFF if draw.chance(80) else 0xFFFFFFFF
        sp = regs["esp"] & 0xFFFF
        base = regs["ss"] << 4
        return [base + ((sp - STACK_REACH) & 0xFFFF), base + sp,
                base + ((sp + STACK_REACH) & 0xFFFF)]
    esp = regs["esp"]
    return [esp - STACK_REACH, esp, esp + STACK_REACH]


def _operand_addresses(mode: str, located: Located, regs: Dict[str, int]) -> List[int]:
    """First and last byte of every memory operand, plus DS:eBX+AL for XLAT."""
    out: List[int] = []
    for place in located.places:
        start = linear(mode, located, place, regs)
        out += [start, start + place.size - 1]
    if located.xlat:
        base = (regs["ds"] << 4) if mode == "real16" else 0
        out.append(base + ((regs["ebx"] + (regs["eax"] & 0xFF)) & 0xFFFFFFFF))
    return out


def _small_count(regs: Dict[str, int], address_size: int, draw: Draw) -> None:
    """Mostly 0-16 iterations for REP string cases: 0 and 1 are the edges, and a count of
    2**32 walks pages byte by byte (~50 ms a case in each runner)."""
    if address_size == 2:
        regs["ecx"] = (regs["ecx"] & 0xFFFF0000) | draw.integer(0, 16)
    else:
        regs["ecx"] = draw.integer(0, 16)


def _aim_at(mode: str, located: Located, regs: Dict[str, int], page: int,
            draw: Draw) -> None:
    """Move the base register so the first memory operand lands in ``page`` (the stack
    page, mapped anyway): fewer distinct pages per case keeps Unicorn from remapping,
    its dearest step. Any operand that cannot be aimed keeps its drawn address."""
    if not located.places:
        return
    place = located.places[0]
    base = place.base
    if not base or base == place.index or base in ("esp", "sp", "eip", "ip"):
        return
    current = linear(mode, located, place, regs)
    delta = page + draw.integer(0, PAGE_SIZE - 16) - current
    if base in regs:
        regs[base] = (regs[base] + delta) & 0xFFFFFFFF
    else:  # a 16-bit base: only its low word moves
        full = regs["e" + base]
        regs["e" + base] = (full & 0xFFFF0000) | ((full + delta) & 0xFFFF)


def _memory(draw: Draw, wanted: Iterable[int], code_at: int, code: bytes) -> Dict[int, bytes]:
    """Drawn contents for every wanted page, the code written over them. A page holding
    code is built in one copy around views of the drawn bytes (two copies through a
    bytearray cost ~0.3 µs a case, issue 18); each run of code lies in its own page."""
    pages: Dict[int, bytes] = {}
    for base in pages_covering(wanted):
        pages[base] = page_bytes(draw)
    done = 0
    while done < len(code):  # a run of bytes per page (two at most, or a 4 GiB wrap)
        address = (code_at + done) & 0xFFFFFFFF
        offset = address & (PAGE_SIZE - 1)
        count = min(len(code) - done, PAGE_SIZE - offset)
        base = address - offset
        page = pages.get(base)
        if page is not None:
            view = memoryview(page)
            pages[base] = b"".join((view[:offset], code[done:done + count],
                                    view[offset + count:]))
        done += count
    return pages


def _undefined(form, mode: str, insn, regs: Dict[str, int],
               memory: Dict[int, bytes]) -> Tuple[int, str]:
    """(EFLAGS mask, undefined destination) the table's rules give for this execution."""
    if form is None or not form.undefined:
        return 0, ""
    if insn is None:  # Capstone cannot decode it (odd prefixes): our decoder's facts
        known = facts(mode, regs, memory)
        if known is None:
            return form.always_undefined, ""
        size, operands, target = known.size, len(known.values), known.destination

        def value(index: int) -> Optional[int]:
            return known.values[index]  # type: ignore[union-attr]
    else:
        size = insn.operands[0].size * 8 if insn.operands else 32
        operands, target = len(insn.operands), None

        def value(index: int) -> Optional[int]:
            return operand_value(mode, insn, index, regs, memory)
    count: Optional[int] = None
    specs = form.specs
    if specs and specs[-1] in ("CL", "Ib", "1") and operands >= 2:
        raw = value(operands - 1)
        count = None if raw is None else raw & 0x1F
    source = value(1) if form.mnemonic in ("BSF", "BSR") else None
    mask, dest = undefined_for(form, size, count, source)
    if not dest:
        return mask, ""
    kind, where, extent = target or destination(mode, insn, regs)
    label = f"reg:{where}:{extent:#x}" if kind == "reg" else f"mem:{where:#x}:{extent}"
    return mask, label


_SHIFT_COUNTS = ("1", "CL", "Ib")
_NOT_ALWAYS = -1
_ALWAYS_MASKS: Dict[str, int] = {}
"""Per row: the EFLAGS mask of a row whose undefined-flag rules are all ALWAYS (it
depends on the row alone), or ``_NOT_ALWAYS``. Scanning the rules and applying them again
for each case cost ~1 µs of such a case (issue 18)."""


def _always_mask(form) -> int:
    mask = _ALWAYS_MASKS.get(form.name)
    if mask is None:
        only_always = all(rule.when == ALWAYS and not rule.dest for rule in form.undefined)
        mask = _ALWAYS_MASKS[form.name] = \
            undefined_for(form, 32)[0] if only_always else _NOT_ALWAYS
    return mask


def _undefined_from_bytes(form, mode: str, code: bytes, located: Located,
                          regs: Dict[str, int], memory: Dict[int, bytes]
                          ) -> Optional[Tuple[int, str]]:
    """What ``_undefined`` finds through Capstone, read from the bytes instead, for the
    rows whose rules need no fact (only ALWAYS rules), a count (shifts, rotates, SHLD,
    SHRD: ``E, [G,] 1|CL|Ib``) or BSF/BSR's source; None for any other row (Capstone
    then decodes it). ``tests/test_locate.py`` compares the two on every such row."""
    always = _always_mask(form)
    if always != _NOT_ALWAYS:
        return always, ""
    specs = form.specs
    fields = modrm_fields(form, code)
    if fields is None or not specs or specs[0][0] not in "EG" or len(specs[0]) != 2:
        return None
    mod, reg, rm = fields
    default = 16 if mode == "real16" else 32
    prefixes, _body = split_prefixes(code)
    bits = (48 - default) if 0x66 in prefixes else default

    def operand(spec: str):
        """(("reg", name) or ("mem", Place)) and size in bits of an E or G operand."""
        size = 8 if spec[1] == "b" else bits
        if spec[0] == "G":
            return ("reg", register_name(reg, size)), size
        if mod == 3:
            return ("reg", register_name(rm, size)), size
        return ("mem", located.places[0]), size

    def value(where) -> Optional[int]:
        kind, what = where
        if kind == "reg":
            return register_value(regs, what)
        return read_linear(memory, linear(mode, located, what, regs), what.size)

    first, size = operand(specs[0])
    count: Optional[int] = None
    source: Optional[int] = None
    if form.mnemonic in ("BSF", "BSR") and len(specs) == 2 and specs[1][0] == "E":
        source = value(operand(specs[1])[0])
    elif specs[-1] in _SHIFT_COUNTS and len(specs) >= 2 and specs[0][0] == "E":
        if specs[-1] == "1":
            count = 1
        elif specs[-1] == "CL":
            count = regs["ecx"] & 0x1F
        else:
            count = code[-1] & 0x1F
    else:
        return None
    mask, dest = undefined_for(form, size, count, source)
    if not dest:
        return mask, ""
    kind, what = first
    if kind == "mem":
        return mask, f"mem:{linear(mode, located, what, regs):#x}:{what.size}"
    if size == 8:
        extent = 0xFF00 if what[1] == "h" else 0xFF
        return mask, f"reg:e{what[0]}x:{extent:#x}"
    if size == 16:
        return mask, f"reg:e{what}:0xffff"
    return mask, f"reg:{what}:0xffffffff"


def _assemble_case(draw: Draw, mode: str, code: bytes, form, name: str,
                   located: Optional[Located], insn=_UNDECODED) -> Case:
    """The case around ``code``; ``located`` gives its memory operands (None: nothing
    decodes it), ``insn`` Capstone's decoding where the caller already has it (else it is
    decoded only if the undefined-flag rules need it)."""
    regs = registers(draw, mode)
    code_at = _place_code(draw, mode, regs, len(code))
    wanted = [code_at, code_at + len(code) - 1] if draw.chance(90) else [code_at]
    stack = _place_stack(draw, mode, regs)
    wanted += stack
    # A FORMS row's bytes are a string instruction only where the row is one (every row's
    # opcode byte is checked in tests/test_locate.py): the bytes of the others
    # are not split again (issue 18).
    if (located is None or located.from_capstone or located.string) and \
            is_rep_string(code) and draw.chance(80):
        _small_count(regs, located.addr_size if located else (2 if mode == "real16" else 4),
                     draw)
    if located is not None:
        if draw.chance(60):
            _aim_at(mode, located, regs, stack[1] & ~(PAGE_SIZE - 1), draw)
        wanted += _operand_addresses(mode, located, regs)
        if not located.string:
            pass
        elif mode == "real16":
            wanted += [(regs["es"] << 4) + (regs["edi"] & 0xFFFF),
                       (regs["ds"] << 4) + (regs["esi"] & 0xFFFF)]
        else:
            wanted += [regs["esi"], regs["edi"]]
    if mode == "prot32":  # always present: Unicorn then keeps them mapped (see _PAGE_CHOICES)
        wanted += _ALWAYS_PRESENT
    memory = _memory(draw, wanted, code_at, code)
    mask, dest = 0, ""
    if form is not None and form.undefined:
        quick = None
        if insn is _UNDECODED and located is not None and not located.from_capstone:
            quick = _undefined_from_bytes(form, mode, code, located, regs, memory)
        if quick is not None:
            mask, dest = quick
        elif insn is _UNDECODED:
            insn = decode(mode, code) if located is not None else None
        if quick is None:
            mask, dest = _undefined(form, mode, insn, regs, memory)
    form_name = form.name if form is not None else ""
    # Positional, in Case's field order (name, mode, code, regs, memory, form,
    # undefined_flags, undefined_dest): matching eight keywords cost ~0.6 µs a case
    # (issue 18); draw_digest tells a swap apart.
    return Case(name, mode, code, regs, memory, form_name, mask, dest)


def form_case(form, mode: str, draw: Draw, name: str = "",
              state: Optional[Draw] = None) -> Case:
    """An instance of one FORMS row with a drawn initial state. ``state`` (default:
    ``draw``) draws the registers and pages: the CI tests pass a seeded ``RandomDraw``
    there, so Hypothesis makes ~15 choices per case (the encoding, which it shrinks, and
    one state seed) instead of ~60 at ~0.5 ms each."""
    code = encode(form, mode, draw)
    return _assemble_case(state or draw, mode, code, form, name or form.name,
                          _LOCATOR.locate(form, mode, code))


_PREFIX_CHOICES = tuple(sorted(LEGACY_PREFIXES)) + SEGMENT_OVERRIDES  # sorted once, not a case


def random_prefixed_bytes(draw: Draw) -> bytes:
    """0-4 legacy prefixes (any order, repeats allowed), then random bytes: up to 15 in
    all, the architectural limit, so over-long encodings are reached too."""
    head = bytes(draw.choice(_PREFIX_CHOICES) for _ in range(draw.integer(0, 4)))
    tail = bytes(draw.integer(0, 255) for _ in range(MAX_INSTRUCTION_LENGTH - len(head)))
    if draw.chance(30):  # favour the two-byte map, where assemblers leave most gaps
        tail = b"\x0f" + tail[:-1]
    return head + tail


def bytes_case(mode: str, draw: Draw, attribute, name: str = "",
               state: Optional[Draw] = None) -> Case:
    """A case from random prefixed bytes; ``attribute(mode, code)`` names its form (or None).
    The code is trimmed to the instruction Capstone decodes, so the case is one instruction.
    ``state`` draws registers and pages, as in ``form_case``."""
    raw = random_prefixed_bytes(draw)
    insn = decode(mode, raw)
    code = raw[:insn.size] if insn is not None else raw
    form = attribute(mode, code)
    label = insn.mnemonic if insn is not None else "(bad)"
    located = from_capstone(insn) if insn is not None else None
    return _assemble_case(state or draw, mode, code, form, name or f"bytes:{label}",
                          located, insn)
