"""Memory accesses in generated code: ``cpu.read``/``cpu.write`` with their common case
written out in the block (issue 14).

Measured on the tiny image's boot (CPython, cProfile, threshold 300): 14.4 M reads and
9.4 M writes for 51 M instructions, each through three or four Python frames
(``Cpu.read`` -> ``read_linear`` -> ``FlatMemory.read_int``; ``Cpu.write`` ->
``write_linear`` -> ``write_physical`` -> ``exchange``): about a third of the run.

A block never holds a segment load, a far transfer, a change of CPL, CR0, CR3 or CR4
(``compiler.BARRIERS`` and the compiled families), so everything an access depends on
apart from its address is the same for the whole block: the segment caches, the
privilege class's fast TLB maps (``reference.system.tlb``), the RAM, and whether paging
is on (which ``set_paging`` never changes under a decoded instruction: it forgets them
all). The block's prologue loads those once (``prologue``), and each access becomes::

    M_a = <offset>
    if <inside the segment> and <a known translation, within one page, within RAM>:
        <the bytes of RAM, read or journaled and stored>
    else:
        cpu.read(seg, M_a, n)       # or cpu.write: every check, fault and side effect

The fast test is the conjunction of the conditions under which ``Cpu.read``/``Cpu.write``
and the paging fast path would themselves take the same plain RAM access, so both
branches do the same thing: a write to a page holding decoded code, an access that
crosses a page, leaves RAM (the PCI hole), misses the fast TLB maps or the segment, all
take the call. The store journals the old bytes exactly as ``Cpu.write_physical`` does,
so a fault later in the block rolls back the same way.

A segment that is flat when the block is made (base 0, no floor, limits of at least
4 GiB - 1 for reads and writes: Linux's DS, ES and SS) gets a shorter test: linear is
the offset, and the page test implies the limit test, so only the translation, the
page and RAM are checked. The block's prologue checks that the segment is still flat;
if it is not, the access takes the call every time (its fast path is given an empty
TLB map, or no RAM), which is slower but the same. Which segments were flat is part of
``mode_of``, so of the cache keys.
"""

from __future__ import annotations

import ast
import re
from struct import Struct
from types import MappingProxyType
from typing import Any, Dict, FrozenSet, List, Mapping, Optional, Set, Tuple

from reference.blocks.optimize import clone
from reference.blocks.trees import Transformer, nodes_of
from reference.memory import FlatMemory

# Every name the lowering introduces starts with "M_": the semantics' locals get an
# instruction suffix (``total_3``) and their globals a "g_" prefix, so none starts so.
_SEGMENT_NAME = re.compile(r"\bM_(base|limit|wlimit|floor)_(\d)\b")
_PURE_CALLS = frozenset({"bool", "abs", "len", "int", "min", "max"})


FLAT_LIMIT = 0xFFFFFFFF


def mode_of(cpu: Any) -> Optional[str]:
    """How this CPU's accesses are lowered: ``"paged"`` (translations from the fast TLB
    maps) or ``"flat"`` (linear = physical), then ``:`` and the segments that are flat
    now (``"paged:023"``: ES, SS and DS); or None (memory that is not one RAM, as the
    sparse test memory: accesses stay calls)."""
    if not isinstance(cpu.mem, FlatMemory):
        return None
    flat = "".join(str(seg) for seg in range(6)
                   if not (cpu.seg_base[seg] or cpu.seg_floor[seg])
                   and cpu.seg_limit[seg] >= FLAT_LIMIT and cpu.seg_wlimit[seg] >= FLAT_LIMIT)
    return ("flat:" if cpu.tlb is None else "paged:") + flat


def _parts(mode: str, seg: int) -> Tuple[str, bool]:
    """(``"flat"`` or ``"paged"``, whether ``seg`` was flat) for a ``mode_of`` string."""
    memory, _, flat = mode.partition(":")
    return memory, str(seg) in flat


def _access(node: ast.AST, method: str, arity: int) -> bool:
    """``cpu.<method>(SEG, offset, NBYTES[, value])`` with a constant segment and size."""
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == method and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "cpu" and len(node.args) == arity
            and not node.keywords and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[2], ast.Constant)
            and node.args[2].value in (1, 2, 4))


def _inside(seg: int, nbytes: int, limit: str) -> str:
    last = "M_a" if nbytes == 1 else f"M_a + {nbytes - 1}"
    return f"M_floor_{seg} <= M_a and {last} <= M_{limit}_{seg}"


def _in_page(name: str, nbytes: int) -> str:
    """`` and`` the access does not cross its page (always true for one byte)."""
    return "" if nbytes == 1 else f" and {name} & 4095 <= {4096 - nbytes}"


def _read_template(mode: str, seg: int, nbytes: int, target: str) -> str:
    memory, flat = _parts(mode, seg)
    inside = _inside(seg, nbytes, "limit")
    if flat and memory == "flat":
        lines = [f"if 0 <= (M_p := M_a) and M_p + {nbytes} <= M_ramlen_{seg}:"]
    elif flat:
        lines = [f"M_f = M_rd_{seg}.get(M_a >> 12)",
                 f"if (M_f is not None{_in_page('M_a', nbytes)}"
                 f" and (M_p := M_f | M_a & 4095) + {nbytes} <= M_ramlen):"]
    elif memory == "flat":
        where = f"(M_p := M_base_{seg} + M_a & 4294967295) + {nbytes} <= M_ramlen"
        lines = [f"if {inside} and {where}:"]
    else:
        lines = [f"M_l = M_base_{seg} + M_a & 4294967295",
                 "M_f = M_rd.get(M_l >> 12)",
                 f"if (M_f is not None and {inside}{_in_page('M_l', nbytes)}"
                 f" and (M_p := M_f | M_l & 4095) + {nbytes} <= M_ramlen):"]
    fetch = "M_ram[M_p]" if nbytes == 1 else f"M_get{nbytes}(M_ram, M_p)[0]"
    lines += [f"    {target} = {fetch}",
              "else:",
              f"    {target} = cpu.read({seg}, M_a, {nbytes})"]
    return "\n".join(lines)


def _write_template(mode: str, seg: int, nbytes: int) -> str:
    memory, flat = _parts(mode, seg)
    inside = _inside(seg, nbytes, "wlimit")
    if flat and memory == "flat":
        lines = ["M_p = M_a",
                 f"if (0 <= M_p{_in_page('M_p', nbytes)} and M_p + {nbytes} <= M_ramlen_{seg}"
                 " and M_p >> 12 not in M_code):"]
    elif flat:
        lines = [f"M_f = M_wr_{seg}.get(M_a >> 12)",
                 f"if (M_f is not None{_in_page('M_a', nbytes)}"
                 f" and (M_p := M_f | M_a & 4095) + {nbytes} <= M_ramlen"
                 " and M_f >> 12 not in M_code):"]
    elif memory == "flat":
        lines = [f"M_p = M_base_{seg} + M_a & 4294967295",
                 f"if ({inside}{_in_page('M_p', nbytes)} and M_p + {nbytes} <= M_ramlen"
                 " and M_p >> 12 not in M_code):"]
    else:
        lines = [f"M_l = M_base_{seg} + M_a & 4294967295",
                 "M_f = M_wr.get(M_l >> 12)",
                 f"if (M_f is not None and {inside}{_in_page('M_l', nbytes)}"
                 f" and (M_p := M_f | M_l & 4095) + {nbytes} <= M_ramlen"
                 " and M_f >> 12 not in M_code):"]
    mask = (1 << (8 * nbytes)) - 1
    store = (f"M_ram[M_p] = M_v & {mask}" if nbytes == 1 else
             f"M_put{nbytes}(M_ram, M_p, M_v & {mask})")
    lines += [f"    M_journal.append((M_p, M_ram[M_p:M_p + {nbytes}]))",
              f"    {store}",
              "else:",
              f"    cpu.write({seg}, M_a, {nbytes}, M_v)"]
    return "\n".join(lines)


_RESULT = "M_result"
_templates: Dict[Tuple[str, str, int, int], List[ast.stmt]] = {}


def _parsed(kind: str, mode: str, seg: int, nbytes: int) -> List[ast.stmt]:
    """The template for a read (its result in ``M_result``) or a write, parsed once."""
    key = (kind, mode, seg, nbytes)
    if key not in _templates:
        text = (_read_template(mode, seg, nbytes, _RESULT) if kind == "read"
                else _write_template(mode, seg, nbytes))
        _templates[key] = ast.parse(text).body
    return _templates[key]


def _assign(name: str, value: ast.expr) -> ast.stmt:
    return ast.Assign([ast.Name(name, ast.Store())], value, lineno=0)


class _Lowering(Transformer):
    """One snippet's lowering: numbers the read results (``M_r1``, ``M_r2``...)."""

    def __init__(self, mode: str) -> None:
        self.mode, self.count = mode, 0
        self.hoisted: List[ast.stmt] = []
        self.ok = True

    def statements(self, body: List[ast.stmt]) -> List[ast.stmt]:
        out: List[ast.stmt] = []
        for statement in body:
            out += self._statement(statement)
        return out

    def _statement(self, statement: ast.stmt) -> List[ast.stmt]:
        if isinstance(statement, ast.If):
            hoisted, statement.test = self._hoist(statement.test)
            statement.body = self.statements(statement.body) or [ast.Pass()]
            statement.orelse = self.statements(statement.orelse)
            return hoisted + [statement]
        if isinstance(statement, ast.Expr) and _access(statement.value, "write", 4):
            call = statement.value
            assert isinstance(call, ast.Call)
            # The offset's reads, then the value's, as the call evaluates them; reads
            # change no register, so what remains of the offset may be computed after.
            before_offset, offset = self._hoist(call.args[1])
            before_value, value = self._hoist(call.args[3])
            template = clone(_parsed("write", self.mode, call.args[0].value,
                                     call.args[2].value))
            return (before_offset + before_value
                    + [_assign("M_a", offset), _assign("M_v", value)] + template)
        if isinstance(statement, (ast.Assign, ast.Expr, ast.AugAssign)):
            hoisted, statement.value = self._hoist(statement.value)
            return hoisted + [statement]
        return [statement]

    def _hoist(self, expression: ast.expr) -> Tuple[List[ast.stmt], ast.expr]:
        """(statements computing the reads in ``expression`` in evaluation order, the
        expression reading their results); nothing hoisted when another call or a part
        evaluated conditionally could make the order matter."""
        if not any(_access(n, "read", 3) for n in nodes_of(expression, ast.Call)):
            return [], expression
        count, self.hoisted, self.ok = self.count, [], True
        result = self.visit(clone(expression))
        if not self.ok:
            self.count = count
            return [], expression
        return self.hoisted, result

    def visit_Call(self, node: ast.Call) -> ast.AST:
        if _access(node, "read", 3):
            node.args[1] = self.visit(node.args[1])  # an address read from memory: first
            self.count += 1
            name = f"M_r{self.count}"
            self.hoisted.append(_assign("M_a", node.args[1]))
            template = _parsed("read", self.mode, node.args[0].value, node.args[2].value)
            self.hoisted += clone(template, lambda n: ast.Name(
                name if n.id == _RESULT else n.id, n.ctx))
            return ast.Name(name, ast.Load())
        if not (isinstance(node.func, ast.Name) and node.func.id in _PURE_CALLS
                or _signed_view(node.func)):
            self.ok = False
        return self.generic_visit(node)

    def generic_visit(self, node: ast.AST) -> ast.AST:
        if isinstance(node, (ast.IfExp, ast.BoolOp, ast.Lambda, ast.ListComp, ast.SetComp,
                             ast.DictComp, ast.GeneratorExp, ast.NamedExpr)):
            self.ok = False  # parts evaluated conditionally or repeatedly
            return node
        return super().generic_visit(node)


def _signed_view(func: ast.expr) -> bool:
    """``opK_J.sign``: an operand's signed view of a value (``Operand.sign``), which
    reads and changes nothing, so a read in its argument may be hoisted before it (MOVSX
    and IDIV with a memory source, whose reads went through ``cpu.read`` before)."""
    return (isinstance(func, ast.Attribute) and func.attr == "sign"
            and isinstance(func.value, ast.Name) and func.value.id.startswith("op"))


def lower(statements: List[ast.stmt], mode: Optional[str]) -> List[ast.stmt]:
    """``statements`` with their memory accesses lowered for ``mode`` (see the module
    docstring); unchanged for mode None. Reads are lowered in the value of an
    assignment or expression statement and in an ``if`` test; writes as statements."""
    if mode is None:
        return statements
    return _Lowering(mode).statements(statements)


_PROLOGUE = {
    "M_ram": "M_ram = cpu.mem.ram",
    "M_ramlen": "M_ramlen = len(M_ram)",
    "M_journal": "M_journal = cpu.journal",
    "M_code": "M_code = cpu.code_pages",
    "M_rd": "M_rd = cpu.tlb.readable[cpu.cpl == 3]",
    "M_wr": "M_wr = cpu.tlb.writable[cpu.cpl == 3]",
}
"""What a lowered access reads that is the same for the whole block, in load order."""
_FIELDS = {"base": "seg_base", "limit": "seg_limit", "wlimit": "seg_wlimit",
           "floor": "seg_floor"}
_NAME = re.compile(r"\bM_(?:ram|ramlen|journal|code|rd|wr|(?:base|limit|wlimit|floor|rd|wr"
                   r"|ramlen)_\d)\b")
_FLAT_NAME = re.compile(r"M_(rd|wr|ramlen)_(\d)")
_FLAT_WAY = {"rd": "M_rd if M_flat_{seg} else g_NOWHERE",
             "wr": "M_wr if M_flat_{seg} else g_NOWHERE",
             "ramlen": "M_ramlen if M_flat_{seg} else 0"}
"""What a flat segment's accesses use: the block's own, or while the segment is not
flat, what makes every fast test fail (an empty TLB map, no RAM)."""


def needed(code: str) -> FrozenSet[str]:
    """The prologue names ``code`` (one instruction's lowered text) reads."""
    names = set(_NAME.findall(code))
    if names:
        names.add("M_ram")
        names.add("M_ramlen")
    for name in list(names):
        found = _FLAT_NAME.fullmatch(name)
        if found and found.group(1) != "ramlen":
            names.add(f"M_{found.group(1)}")
    return frozenset(names)


def prologue(names: Set[str]) -> List[str]:
    """The lines that load ``names`` (what the block's accesses need, ``needed``) once,
    before its first instruction."""
    lines = [line for name, line in _PROLOGUE.items() if name in names]
    flat = sorted({found.group(2) for found in map(_FLAT_NAME.fullmatch, names) if found})
    lines += [f"M_flat_{seg} = (not (cpu.seg_base[{seg}] or cpu.seg_floor[{seg}]) and "
              f"cpu.seg_limit[{seg}] >= {FLAT_LIMIT} and cpu.seg_wlimit[{seg}] >= {FLAT_LIMIT})"
              for seg in flat]
    for name in sorted(names - _PROLOGUE.keys()):
        found = _FLAT_NAME.fullmatch(name)
        if found:
            way, seg = found.groups()
            lines.append(f"{name} = " + _FLAT_WAY[way].format(seg=seg))
            continue
        field, seg = _SEGMENT_NAME.fullmatch(name).groups()  # type: ignore[union-attr]
        lines.append(f"{name} = cpu.{_FIELDS[field]}[{seg}]")
    return lines


_NOWHERE: Mapping[int, int] = MappingProxyType({})
"""The TLB map of a segment that is no longer flat (``_FLAT_WAY``): nothing is found."""
_WORDS = {2: Struct("<H"), 4: Struct("<I")}
"""How a lowered access reads and stores 2 and 4 bytes of RAM: ``struct``'s
``unpack_from``/``pack_into`` work on the bytearray in place. Measured in CPython 3.11
(timeit, a dword in a 256 MiB bytearray): a read 174 ns as ``int.from_bytes`` of a slice,
57 ns unpacked; a store 322 ns as ``to_bytes`` into a slice, 80 ns packed (PyPy: 60 ->
33 and 71 -> 60 ns)."""


def globals_for(namespace: Dict[str, Any]) -> None:
    """The module-level names the lowered accesses use."""
    namespace["g_NOWHERE"] = _NOWHERE
    for nbytes, word in _WORDS.items():
        namespace[f"M_get{nbytes}"] = word.unpack_from
        namespace[f"M_put{nbytes}"] = word.pack_into
