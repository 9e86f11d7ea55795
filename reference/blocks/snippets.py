"""The optimised code of one decoded instruction, made once per shape of instruction and
reused by every block that holds one of that shape (issue 14).

Measured on the tiny image's boot (CPython, threshold 300): blocks held 90,110
instructions but only 4,535 distinct byte strings, and compiling a block from scratch
(inline, expand, fold: ~12 ms) cost more than the blocks saved. So the work that does
not depend on the block is cached per (shape, CS.D):

- ``Snippet``: the semantics inlined for the instruction, helpers expanded and constants
  folded, with names that do not depend on where it sits in a block (``i0``, ``op0_1``,
  ``f0`` stand for the instruction's own objects and are renamed per block);
- per set of dead flag updates the block's liveness pass found (``dead_updates``), the
  final text: flag methods inlined, folded, unparsed.

A block is then its snippets' texts joined under the bookkeeping lines, and one
``compile()``. Locals may repeat between instructions of a block: each instruction
assigns its locals before reading them, as the semantics function did.

The shape of an instruction is everything its code depends on but its immediates and
displacements (``Operand.constant``): its form, prefixes, length, registers, addressing.
Its code is made with those numbers as names (``n0_1``: operand 1's), and each block
fills in its instruction's own (``placed``). Why: a cold boot's blocks held 11,448
distinct instruction byte strings but only 2,328 shapes, and making a snippet and its
texts (~2.4 ms) was most of the time the block maker spent (~14 s of ~22 s). A shape
whose code the numbers would have simplified (a test or comparison of a shift count,
``_would_fold``) is not shared: its instructions get code of their own, per bytes, with
the numbers written in, as before. The cold boot's 6,170 requests replayed through the
maker's ``make`` in one process: 22.6-29.1 s of CPU before, 13.4-15.6 s after, with
3,540 snippets for 11,447 byte strings (131 shapes not shared).
"""

from __future__ import annotations

import ast
import pickle
import re
from typing import (
    TYPE_CHECKING,
    Any,
    Dict,
    FrozenSet,
    List,
    NamedTuple,
    Optional,
    Sequence,
    Set,
    Tuple,
)

from reference.blocks import access, lazy_flags
from reference.blocks.access import lower
from reference.blocks.inline import inline
from reference.blocks.optimize import (
    STATUS,
    Expander,
    aliases_flags,
    bookkeeping_read,
    flag_update,
    fold,
    forward,
    inline_flag_properties,
    local_regs,
    needs_bookkeeping,
    reads,
    reads_arguments,
    reuse,
    stores_eip_last,
    with_stack_size,
)
from reference.blocks.trees import unparse, walk

if TYPE_CHECKING:  # pragma: no cover
    from reference.isa.decoder import Insn

_OWN_OBJECT = re.compile(r"\b(?:(i0|f0)|op0_(\d+)|n0_(\d+))\b")
_NUMBER = re.compile(r"n0_\d+")  # the name an operand's number is written as (``inline``)


class Snippet:
    """Pass 1 of one instruction (see the module docstring) and its finished texts.

    Its statements are kept pickled, not as a tree: a cold boot keeps ~5,000 snippets,
    ~760,000 objects as trees, and every full garbage collection of the boot went
    through them all (9-11 of them, 0.2-0.4 s each). What the dead-flag pass reads of
    them (``flow``) is kept as small tuples, and each text starts from a fresh copy
    (``pickle.loads`` costs about what copying the tree did). A statement is named by
    its position (``_flow``'s numbering), so a set of dead updates means the same in
    every copy."""

    __slots__ = ("pickled", "flow", "namespace", "count", "aliases", "texts",
                 "assumes_stack", "symbolic", "deads", "globals", "sorted_at", "fusions")

    def __init__(self, statements: List[ast.stmt], namespace: Dict[str, Any], count: int,
                 aliases: bool, assumes_stack: bool, symbolic: bool) -> None:
        self.pickled = pickle.dumps(statements, pickle.HIGHEST_PROTOCOL)
        self.flow = _flow(statements, [0]) if not aliases else ()
        self.namespace = namespace  # the globals its code names (g_*), as first made
        self.count = count          # the expander's counter: pass 2 goes on from here
        self.aliases = aliases      # a name holds cpu.flags: no update may be called dead
        self.assumes_stack = assumes_stack  # made for one SS.B: the block checks it
        self.symbolic = symbolic    # made per shape: its numbers are names (``placed``)
        self.texts: Dict[FrozenSet[int], Text] = {}
        self.deads: Dict[int, Tuple[FrozenSet[int], int]] = {}  # dead_updates by live
        self.globals: Dict[str, Any] = {}  # globals_of's names, sorted out of
        self.sorted_at = 0                 # the namespace when it held this many
        self.fusions: Dict[Tuple[FrozenSet[int], str, str],
                           Optional[Tuple[str, str, str]]] = {}  # fused, by dead and branch


_snippets: Dict[Tuple[bytes, int, Optional[str], Optional[int]], Snippet] = {}
"""Snippets by instruction bytes (and modes), whether made for them or for their shape."""
_shaped: Dict[Tuple[Any, ...], Optional[Snippet]] = {}
"""Snippets by shape (and modes); None for a shape that is not shared (``_would_fold``)."""


def snippet(insn: Insn, default_size: int, access: Optional[str] = None,
            stack_size: Optional[int] = None) -> Snippet:
    """The cached pass 1 of ``insn`` (decoded with CS.D = ``default_size``): with its
    memory accesses lowered for ``access`` (``reference.blocks.access.mode_of``) and,
    if ``stack_size`` is given, its pushes and pops made for that SS.B. Made for its
    shape when it has numbers (see the module docstring): ``constants`` gives them."""
    key = (insn.raw, default_size, access, stack_size)
    found = _snippets.get(key)
    if found is None:
        if any(operand.constant() is not None for operand in insn.operands):
            shape = (shape_of(insn), default_size, access, stack_size)
            if shape not in _shaped:
                made = _made(insn, default_size, access, stack_size, symbolic=True)
                _shaped[shape] = None if _would_fold(made) else made
            found = _shaped[shape]
        if found is None:
            found = _made(insn, default_size, access, stack_size, symbolic=False)
        _snippets[key] = found
    return found


def shape_of(insn: Insn) -> Tuple[Any, ...]:
    """What an instruction's code depends on but its numbers: the semantics, the fixed
    fields ``inline`` writes in as constants, and each operand's ``shape()``."""
    return (id(insn.form), insn.fn, insn.opcode, insn.length, insn.opsize, insn.adsize,
            insn.seg, insn.rep, insn.lock, insn.cond, insn.reg,
            tuple(operand.shape() for operand in insn.operands))


def _made(insn: Insn, default_size: int, access: Optional[str], stack_size: Optional[int],
          symbolic: bool) -> Snippet:
    """Pass 1 of ``insn`` (see ``snippet``); ``symbolic``: its numbers written as names."""
    namespace: Dict[str, Any] = {}
    statements = inline(0, insn.fn, insn, namespace, symbolic)
    if statements is None:
        namespace["f0"] = insn.fn
        args = ", ".join(["cpu"] + [f"op0_{j}" for j in range(len(insn.operands))])
        statements = ast.parse(f"f0({args})").body
    expander = Expander(namespace, flag_methods=False)
    statements = expander.statements(statements)
    assumed = False
    if stack_size is not None:
        statements, assumed = with_stack_size(statements, stack_size)
    statements = lower(local_regs(fold(statements)), access)
    return Snippet(statements, namespace, expander.count, aliases_flags(statements),
                   assumed, symbolic)


def constants(insn: Insn) -> List[str]:
    """The numbers ``placed`` fills in for ``insn``'s ``n0_<j>``, by operand position. A
    negative one is written as it is: it parses as the name did wherever an integer
    may stand but as the base of ``**`` (``_would_fold`` does not share that shape)."""
    found = []
    for operand in insn.operands:
        value = operand.constant()
        found.append("" if value is None else str(value))
    return found


def _would_fold(piece: Snippet) -> bool:
    """Whether ``piece``'s code, made with its numbers as names, holds a test,
    comparison or boolean of those numbers alone (or of locals computed from them
    alone) once its flag methods are written out: with the numbers written in, ``fold``
    would have decided it and perhaps dropped a branch (a shift's ``if count:``, a
    constant address's page test). Then its shape is not shared. The text for no dead
    updates, made for this test, is kept."""
    statements = finished(piece, frozenset())
    scan = _Scan()
    for statement in statements:
        scan.names(statement)
    if scan.power:
        return True  # ``-1 ** x`` would not be ``(-1) ** x`` (``constants``)
    known = {name for name in scan.seen if _NUMBER.fullmatch(name)}
    grown = True
    while grown:  # any assignment counts (a local assigned twice): a guess too many
        grown = False  # only shares less
        for targets, names in scan.assigned:
            if names <= known and not known.issuperset(targets):
                known.update(targets)
                grown = True
    if any(names <= known for names in scan.tested):
        return True
    piece.texts[frozenset()] = _text(statements)
    return False


_FOLDABLE = (ast.Constant, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp,
             ast.Name, ast.operator, ast.unaryop, ast.boolop, ast.cmpop, ast.expr_context)
_TESTS = (ast.If, ast.While, ast.IfExp)


class _Scan:
    """One walk over finished code for ``_would_fold``: the names it holds, each
    assignment of a foldable value (targets, the value's names), the names of each
    foldable test, comparison or boolean, and whether a number is the base of ``**``."""

    def __init__(self) -> None:
        self.seen: Set[str] = set()
        self.assigned: List[Tuple[List[str], Set[str]]] = []
        self.tested: List[Set[str]] = []
        self.power = False

    def names(self, node: ast.AST) -> Optional[Set[str]]:
        """The names in ``node`` if it is made of names, constants and operators only
        (it would fold if they were constants), else None; recording as it goes."""
        found: Optional[Set[str]] = set() if isinstance(node, _FOLDABLE) else None
        parts: Dict[int, Optional[Set[str]]] = {}
        for child in ast.iter_child_nodes(node):
            names = parts[id(child)] = self.names(child)
            if names is None:
                found = None
            elif found is not None:
                found |= names
        if isinstance(node, ast.Name):
            self.seen.add(node.id)
            return {node.id}
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.NamedExpr)):
            value = parts[id(node.value)]
            if value:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                self.assigned.append(([name.id for target in targets for name in walk(target)
                                       if isinstance(name, ast.Name)], value))
        elif isinstance(node, _TESTS):
            test = parts[id(node.test)]
            if test:
                self.tested.append(test)
        elif isinstance(node, (ast.Compare, ast.BoolOp)) and found:
            self.tested.append(found)
        elif (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow)
              and isinstance(node.left, ast.Name) and _NUMBER.fullmatch(node.left.id)):
            self.power = True
        return found


def describe(insn: Insn) -> str:
    """The comment line's text for ``insn``: its bytes, form and the semantics' first
    docstring line."""
    doc = (insn.fn.__doc__ or "").strip().splitlines()
    return f"{insn.raw.hex(' ')}  {insn.form.name}" + (f"  -- {doc[0]}" if doc else "")


def statements_of(piece: Snippet) -> List[ast.stmt]:
    """A fresh copy of ``piece``'s statements."""
    return pickle.loads(piece.pickled)  # type: ignore[no-any-return]


def dead_updates(piece: Snippet, live: int) -> Tuple[FrozenSet[int], int]:
    """(positions of the flag updates in ``piece`` nothing reads before they are overwritten,
    given the status flags ``live`` after it; the flags live before it). Kept per
    ``live`` (a boot asks 81,221 times for about 5,000 snippets: a tenth of the time
    spent making blocks went into this pass)."""
    found = piece.deads.get(live)
    if found is None:
        if piece.aliases:
            found = frozenset(), STATUS
        else:
            dead: Set[int] = set()
            before = _dead(piece.flow, live, dead)
            found = frozenset(dead), before
        piece.deads[live] = found
    return found


Flow = Tuple[Any, ...]
"""What the dead-flag pass needs of a body's statements, in order, one tuple each:
``(_UPDATE, position, flags written, flags its arguments read)`` for a flag update,
``(_IF, flags the test reads, body's Flow, else's Flow)``, ``(_OTHER, flags read)``."""
_UPDATE, _IF, _OTHER = range(3)


def _flow(body: List[ast.stmt], counter: List[int]) -> Flow:
    """The ``Flow`` of ``body``, its statements numbered from ``counter[0]`` on: each
    statement, then (an ``if``'s) those of its body, then of its ``else``."""
    entries: List[Tuple[Any, ...]] = []
    for statement in body:
        position = counter[0]
        counter[0] += 1
        written = flag_update(statement)
        if written is not None:
            entries.append((_UPDATE, position, written, reads_arguments(statement)))
        elif isinstance(statement, ast.If):
            entries.append((_IF, reads(statement.test), _flow(statement.body, counter),
                            _flow(statement.orelse, counter)))
        else:
            entries.append((_OTHER, reads(statement)))
    return tuple(entries)


def _dead(flow: Flow, live: int, dead: Set[int]) -> int:
    for entry in reversed(flow):
        kind = entry[0]
        if kind == _UPDATE:
            _, position, written, read = entry
            if not written & live:
                dead.add(position)
                continue
            live = (live & ~written) | read
        elif kind == _IF:
            _, read, body, orelse = entry
            live = _dead(body, live, dead) | _dead(orelse, live, dead) | read
        else:
            live |= entry[1]
    return live


class Text(NamedTuple):
    """One snippet's finished code for one set of dead flag updates (``text``)."""

    code: str              # at indentation 0
    reads_eip: bool        # it may read ``cpu.eip`` (``bookkeeping_read``)
    reads_insn: bool       # it may read ``cpu.insn``
    sets_eip: bool         # it ends storing ``cpu.eip`` (``stores_eip_last``)
    names: FrozenSet[str]  # what its lowered accesses need from the prologue
    branch: Optional[Tuple[str, str, str]]  # (before, test, taken): see ``branch_parts``


def text(piece: Snippet, dead: FrozenSet[int]) -> Text:
    """The finished code of ``piece`` without the ``dead`` updates, and what the block
    needs to know about it."""
    found = piece.texts.get(dead)
    if found is None:
        found = piece.texts[dead] = _text(finished(piece, dead))
    return found


def _text(statements: List[ast.stmt]) -> Text:
    """The ``Text`` of finished ``statements``."""
    code = _unparsed(statements)
    return Text(code, *bookkeeping_read(statements), stores_eip_last(statements),
                access.needed(code), branch_parts(statements))


def finished(piece: Snippet, dead: FrozenSet[int]) -> List[ast.stmt]:
    """A fresh copy of ``piece``'s statements without the ``dead`` updates, its flag
    methods inlined and folded: what ``text`` unparses."""
    statements = _without(statements_of(piece), dead, [0])
    expander = Expander(piece.namespace, flag_methods=True)
    expander.count = piece.count
    statements = inline_flag_properties(expander.statements(statements))
    return forward(reuse(fold(statements))) or [ast.Pass()]


def fused(piece: Snippet, dead: FrozenSet[int], branch: Tuple[str, str, str],
          fall_through: int) -> Optional[Tuple[str, str, str]]:
    """For ``piece`` (without the ``dead`` updates) just before a conditional branch
    that leaves the block (``branch``: its ``Text.branch``), where the status flags
    ``fall_through`` are read after the branch when it is not taken: (the piece's code
    that stays, its code that only computes and stores EFLAGS, the branch's test without
    EFLAGS), the parts of ``reference.blocks.lazy_flags``; None when the flags it writes
    are read on the fall-through or the shapes do not allow it. Kept per (dead, branch)."""
    if piece.aliases or _written(piece.flow, dead) & fall_through:
        return None
    key = (dead, branch[0], branch[1])
    if key in piece.fusions:
        return piece.fusions[key]
    found = None
    if not _OWN_OBJECT.search(branch[0] + "\n" + branch[1]):  # the branch's own objects
        before = ast.parse(branch[0]).body
        test = ast.parse(branch[1], mode="eval").body
        made = lazy_flags.fuse(finished(piece, dead), before, test, piece.namespace)
        if made is not None:
            kept, sunk, condition = made
            found = (_unparsed(kept) if kept else "", _unparsed(sunk), unparse(condition))
    piece.fusions[key] = found
    return found


def _written(flow: Flow, dead: FrozenSet[int]) -> int:
    """The status flags the updates of ``flow`` (but the ``dead`` ones) may write."""
    written = 0
    for entry in flow:
        if entry[0] == _UPDATE and entry[1] not in dead:
            written |= entry[2]
        elif entry[0] == _IF:
            written |= _written(entry[2], dead) | _written(entry[3], dead)
    return written


def branch_parts(statements: List[ast.stmt]) -> Optional[Tuple[str, str, str]]:
    """For a branch whose code is ``<before>; if <test>: <taken>``, where ``taken`` ends
    by storing ``cpu.eip`` and is the only code that reads ``cpu.eip`` or ``cpu.insn``
    or stores ``cpu.eip`` (Jcc: the flags read, the condition, then the jump), those three
    texts; else None. A block then sets ``cpu.eip`` and ``cpu.insn`` and leaves only
    inside the ``if`` (``compiler.assemble``): on the path not taken nothing reads them
    before the next instruction that sets them, and a fault restores both anyway."""
    if not statements or not isinstance(statements[-1], ast.If):
        return None
    *before, branch = statements
    last = branch.body[-1]
    if (branch.orelse or needs_bookkeeping(before) or needs_bookkeeping([ast.Expr(branch.test)])
            or any(_is_cpu_eip(node) for s in before for node in walk(s))
            or not (isinstance(last, ast.Assign) and len(last.targets) == 1
                    and _is_cpu_eip(last.targets[0]))):
        return None
    return (_unparsed(before) if before else "", unparse(branch.test),
            _unparsed(branch.body))


def _is_cpu_eip(node: ast.expr) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "eip"
            and isinstance(node.value, ast.Name) and node.value.id == "cpu")


def _unparsed(statements: List[ast.stmt]) -> str:
    """The source of ``statements``. ``ast.unparse`` reads a statement's line number
    (for its type comment) and nothing else of the locations, so only the statements
    are numbered: locating every node (``ast.fix_missing_locations``) was a tenth of
    the time spent making a snippet's text. The text is compiled later, in its block."""
    _numbered(statements)
    return unparse(ast.Module(body=statements, type_ignores=[]))


def _numbered(statements: List[Any]) -> None:
    """Give each statement in ``statements`` (nested ones too) a line number if it has
    none."""
    for statement in statements:
        if not hasattr(statement, "lineno"):
            statement.lineno = 1
        for name in ("body", "orelse", "finalbody", "handlers"):
            inner = getattr(statement, name, None)
            if inner:
                _numbered(inner)


def _without(body: List[ast.stmt], dead: FrozenSet[int],
             counter: List[int]) -> List[ast.stmt]:
    """``body`` (a fresh copy, changed in place) without the statements at the ``dead``
    positions (numbered from ``counter[0]`` on as ``_flow`` numbers them)."""
    kept: List[ast.stmt] = []
    for statement in body:
        position = counter[0]
        counter[0] += 1
        if position in dead:
            continue
        if isinstance(statement, ast.If):
            statement.body = _without(statement.body, dead, counter) or [ast.Pass()]
            statement.orelse = _without(statement.orelse, dead, counter)
        kept.append(statement)
    return kept


def placed(code: str, k: int, numbers: Sequence[str] = ()) -> str:
    """``code`` with the instruction's own objects named for position ``k`` in a block
    and its numbers (``constants``, for a snippet made per shape) filled in. Each text
    is placed at many positions (a cold boot: ~88,000 placements of ~5,200 texts), so
    it is turned once into a ``str.format`` template (``_template``) and each placement
    only fills it in: a substitution calling back into Python for every name cost ~10 %
    of making the boot's blocks."""
    if not k and not numbers:
        return code
    template = _templates.get(code)
    if template is None:
        template = _templates[code] = _template(code)
    return template.format(k, numbers)


_templates: Dict[str, str] = {}
"""A text (or branch part) -> its ``_template`` (texts are kept for the run anyway)."""


def _template(code: str) -> str:
    """``code`` as a ``str.format`` template of two arguments, the position and the
    numbers: its braces doubled, ``i0``/``f0``/``op0_j`` as ``i{0}``/``f{0}``/``op{0}_j``,
    ``n0_j`` as ``{1[j]}``."""
    escaped = code.replace("{", "{{").replace("}", "}}")
    return _OWN_OBJECT.sub(_field, escaped)


def _field(match: Any) -> str:
    own, operand, number = match.groups()
    if own:
        return f"{own[0]}{{0}}"
    return f"op{{0}}_{operand}" if operand else f"{{1[{number}]}}"


def own_objects(insn: Insn, k: int, namespace: Dict[str, Any]) -> None:
    """Bind position ``k``'s names to ``insn``'s objects in a block's namespace."""
    namespace[f"i{k}"] = insn
    namespace[f"f{k}"] = insn.fn
    for j, operand in enumerate(insn.operands):
        namespace[f"op{k}_{j}"] = operand


def globals_of(piece: Snippet, namespace: Dict[str, Any]) -> None:
    """The module-level names ``piece``'s code uses (everything but its own objects).
    Sorted out again only when making a text added names to ``piece.namespace`` (which
    only grows): a cold boot asks ~88,000 times for ~5,000 snippets."""
    if piece.sorted_at != len(piece.namespace):
        piece.globals = {name: value for name, value in piece.namespace.items()
                         if not _OWN_OBJECT.fullmatch(name)}
        piece.sorted_at = len(piece.namespace)
    namespace.update(piece.globals)
