"""A block's registers and EFLAGS in Python locals (issue 14): the last step of
``compiler.assemble``, on the block's text.

Why: the inlined semantics read and write ``cpu.regs[k]`` and ``cpu.flags.value`` where
the SDM says DEST and SRC, so an ADD in a block indexed the register list three times
and went through ``cpu.flags`` twice. Here ``regs[0]`` becomes the local ``EAX`` and
``cpu.flags.value`` the local ``EFLAGS``, loaded once on entry, and the CPU's copies are
brought up to date only where something else can see them:

- every exit (``return``, and a loop block's ``continue`` to its next pass, whose entry
  snapshot reads ``cpu.regs``) stores the registers and EFLAGS written before it;
- around a statement that calls out (``cpu.read`` on the slow path of an access, an
  instruction the block runs through its own ``execute``, an operand's ``read``...),
  the written values are stored before it and every local loaded again after it, since
  the callee may read or change any register or flag.

An exception needs neither: whatever a block raises, ``run()`` (or a loop block's own
handler) restores the registers and EFLAGS from its entry snapshot and replays the
instructions through ``step()``, so the values in locals are simply dropped.

Calls that cannot see ``cpu.regs`` or ``cpu.flags`` (``PURE``: RAM reads and stores,
the fast TLB maps, the write journal, building an exception, the CS limit) are not
calls out. Anything in a text this module does not recognise (another use of
``regs``, a call out in an ``if`` test, a name it would shadow) leaves the text as it
was: only slower, never different.
"""

from __future__ import annotations

import re
from typing import Dict, FrozenSet, List, NamedTuple, Set

NAMES = ("EAX", "ECX", "EDX", "EBX", "ESP", "EBP", "ESI", "EDI")
"""The locals for ``regs[0]`` .. ``regs[7]`` (the SDM's order of the register numbers).
No other name in a block is written so: the semantics' locals get an instruction suffix
(``total_3``), their globals a ``g_`` prefix, the lowered accesses an ``M_`` prefix."""
FLAGS = "EFLAGS"

PURE = frozenset({
    "M_get1", "M_get2", "M_get4", "M_put2", "M_put4",  # RAM as bytes (struct)
    "M_journal.append",                                 # the write journal
    "len", "bool", "divmod", "abs", "min", "max", "int",
    "g_control_code_limit",                             # reads cpu.seg_limit[CS] only
    "g_stack__gpr_mask",                                # a mask for a size
    "g_restore", "journal.clear",                       # a loop block's own scaffolding
})
"""Callees that read no register and no flag and change none."""
_PURE_PATTERN = re.compile(r"M_(rd|wr)_\d+\.get|g_\w+_Fault|g_StackSizeChanged|g_BlockStopped"
                           r"|op\d+_\d+\.sign")
"""Also pure: the fast TLB maps' ``get``, exception classes (raising is an exit that
drops the locals, see the module docstring), an operand's ``sign`` (arithmetic on its
argument and the operand's size)."""
_READS_ONLY = re.compile(r"(?:[\w.]*\.)?read|cpu\.get_reg|g_muldiv__(?:low|high)")
"""Calls out that may read registers and flags but change none (a memory or operand
read, the accumulator operands of MUL and DIV)."""

_REGISTER_STORE = re.compile(r"\bregs\[([0-7])\]\s*(?=[,)]|(?:[-+*/%&|^@]|<<|>>|//|\*\*)?=)")
"""A register as a target, in what ``_targets`` returns."""
_FLAGS_STORE = re.compile(r"\bcpu\.flags\.value\s*(?:[-+*/%&|^@]|<<|>>|//|\*\*)?=(?!=)")
_CALLEE = re.compile(r"([A-Za-z_][\w.]*)\(")
_ENTRY = "    regs = cpu.regs"
"""The line of ``layout.function`` after which the locals are loaded."""
_SNAPSHOT = "entry_regs = regs[:]"
"""A loop block's snapshot of the registers at the start of each pass (``layout``)."""
_LOCAL = {f"regs[{k}]": name for k, name in enumerate(NAMES)}


class Line(NamedTuple):
    """What ``in_locals`` needs to know of one line of a block's text."""

    new: str             # the line reading and writing the locals
    kind: str            # "plain", "exit", "continue", "snapshot", "call out", "raise",
                         # "refused" (a call out where nothing can follow it), "other"
    stores: FrozenSet[int]  # registers it may assign
    stores_flags: bool   # whether it assigns EFLAGS


def in_locals(text: str) -> str:
    """``text`` (a block function from ``layout.function``) with its registers and
    EFLAGS in locals, or ``text`` itself where it holds something not recognised."""
    lines = text.split("\n")
    if len(lines) < 2 or lines[1] != _ENTRY:
        return text
    counts = [text.count(old) for old in _LOCAL]
    others = (text.count("regs") - sum(counts) - text.count("regs[:]")  # (the snapshot)
              - text.count("entry_regs") - 2)                         # (the entry line)
    if others or text.count("cpu.flags") != text.count("cpu.flags."):
        return text  # the register list or the flags used some other way (an alias)
    used = [k for k, count in enumerate(counts) if count]
    flags = "cpu.flags.value" in text
    if not used and not flags:
        return text
    facts = [_line(line) for line in lines[2:]]
    loop = "\n        while True:\n" in text
    # A loop block's exits store what any pass may have written, and its passes'
    # entry snapshots are taken from the locals; so all eight registers are locals.
    live = list(range(8)) if len(used) >= 3 or loop else used
    out = lines[:2] + _loads("    ", live, flags)
    written: Set[int] = set().union(*(fact.stores for fact in facts)) if loop else set()
    flags_written = loop and any(fact.stores_flags for fact in facts)
    for line, fact in zip(lines[2:], facts):
        kind = fact.kind
        if kind == "plain":
            out.append(fact.new)
        elif kind == "refused":
            return text  # a call out where nothing can be placed after it
        elif kind == "snapshot" and loop:
            out.append(fact.new.replace("regs[:]", f"[{', '.join(NAMES)}]"))
        elif kind == "continue" and loop:
            out.append(fact.new)  # the next pass's snapshot is taken from the locals
        elif kind in ("exit", "continue"):
            out += _stores(_pad(line), sorted(written), flags_written)
            out.append(fact.new)
        elif kind == "call out":
            pad = _pad(line)
            out += _stores(pad, live if len(live) == 8 else sorted(written), flags_written)
            out.append(fact.new)
            out += _loads(pad, [k for k in live if k not in fact.stores],  # (its result)
                          flags and not fact.stores_flags)
        else:
            out.append(fact.new)
        written |= fact.stores
        flags_written = flags_written or fact.stores_flags
    return "\n".join(out)


_SEEN: Dict[str, Line] = {}
"""``_line``'s answers: a cold boot's ~2,800 texts have ~685,000 lines but only ~8,400
distinct lines of code (2.5 ms -> 0.4 ms a text)."""


def _line(line: str) -> Line:
    """What ``line`` does (remembered: see ``_SEEN``)."""
    fact = _SEEN.get(line)
    if fact is None:
        if len(_SEEN) > 200_000:
            _SEEN.clear()
        fact = _SEEN[line] = _look_at(line)
    return fact


_NOTHING: FrozenSet[int] = frozenset()


def _look_at(line: str) -> Line:
    code = _code(line)
    statement = code.strip()
    if not statement:
        return Line(line, "other", _NOTHING, False)
    stores = frozenset(_stores_to(code)) if "regs[" in code else _NOTHING
    stores_flags = "cpu.flags.value" in code and bool(_FLAGS_STORE.search(_targets(code)))
    new = _renamed(line)
    calls_out = "(" in code and _calls_out(code) or "cpu.flags." in code.replace(
        "cpu.flags.value", "")
    exits = statement in ("continue", "return") or statement.startswith("return ")
    if exits and calls_out or calls_out and statement.endswith(":") or (
            calls_out and _reads_after_a_change(code)):
        kind = "refused"
    elif statement == _SNAPSHOT:
        kind = "snapshot"
    elif statement == "continue":
        kind = "continue"
    elif exits:
        kind = "exit"
    elif statement.startswith("raise "):
        kind = "raise"  # an exit that drops the locals (the module docstring)
    elif calls_out:
        kind = "call out"
    else:
        kind = "plain"
    return Line(new, kind, stores, stores_flags)


def _pad(line: str) -> str:
    return line[:len(line) - len(line.lstrip())]


def _renamed(line: str) -> str:
    """The line reading and writing the locals."""
    if "regs[" in line:
        for old, name in _LOCAL.items():
            line = line.replace(old, name)
    return line.replace("cpu.flags.value", FLAGS)


def _calls_out(code: str) -> bool:
    """Whether the statement calls something not known to be ``PURE``."""
    return any(_is_call_out(callee) for callee in _CALLEE.findall(code))


def _is_call_out(callee: str) -> bool:
    return callee not in PURE and not _PURE_PATTERN.fullmatch(callee)


def _code(line: str) -> str:
    """The line without its comment: up to the first ``#`` outside a string literal
    (generated code has short literals such as ``'eflags'``, without escapes)."""
    if "#" not in line:
        return line
    if line.lstrip().startswith("#"):
        return ""
    quote = ""
    for n, char in enumerate(line):
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "#":
            return line[:n]
    return line


def _targets(code: str) -> str:
    """A statement up to and including its last assignment operator at the top level
    (not inside brackets, not ``==``, ``<=``, ``:=``...): where its targets are
    (``regs[0] = cpu.read(...)``, ``(regs[0], regs[2]) = (...)``, ``regs[1] += 1``), or
    "" for a statement that assigns nothing (``cpu.write(2, regs[4], 4, x)``)."""
    depth, quote, last = 0, "", -1
    for n, char in enumerate(code):
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "=" and depth == 0:
            before = code[n - 1:n]
            if code[n + 1:n + 2] == "=" or before in ("=", "!", ":"):
                continue  # == != :=
            if before in ("<", ">") and code[n - 2:n - 1] != before:
                continue  # <= >= (but <<= and >>= assign)
            last = n
    return code[:last + 1]


def _stores_to(code: str) -> Set[int]:
    """The registers a statement assigns (among its targets, not as an index there)."""
    return {int(k) for k in _REGISTER_STORE.findall(_targets(code))}


def _reads_after_a_change(code: str) -> bool:
    """Whether the statement may read a register after a call that may change one
    returned: that read would see the local, not what the callee left (``f(cpu) +
    regs[0]``). A call's own arguments are read before it; calls that only read are
    harmless (``g_muldiv__low(cpu, 32).read() * regs[3]``)."""
    for found in _CALLEE.finditer(code):
        callee = found.group(1)
        if _is_call_out(callee) and not _READS_ONLY.fullmatch(callee):
            depth = 0
            for n in range(found.end() - 1, len(code)):  # from its "(" to its ")"
                depth += {"(": 1, ")": -1}.get(code[n], 0)
                if depth == 0:
                    break
            if "regs[" in code[n:]:
                return True
    return False


def _loads(pad: str, live: List[int], flags: bool) -> List[str]:
    """Lines loading the locals from the CPU: all eight registers in one unpacking
    (cheaper than three subscripts), or each of a few."""
    lines = [f"{pad}{FLAGS} = cpu.flags.value"] if flags else []
    if len(live) == 8:
        return lines + [f"{pad}{', '.join(NAMES)} = regs"]
    return lines + [f"{pad}{NAMES[k]} = regs[{k}]" for k in live]


def _stores(pad: str, registers: List[int], flags: bool) -> List[str]:
    """Lines storing locals back into the CPU: all eight in one slice assignment, or
    each of a few."""
    lines = [f"{pad}cpu.flags.value = {FLAGS}"] if flags else []
    if len(registers) == 8:
        return lines + [f"{pad}regs[:] = {', '.join(NAMES)}"]
    return lines + [f"{pad}regs[{k}] = {NAMES[k]}" for k in registers]
