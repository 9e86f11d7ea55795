"""Status flags computed only on the path that reads them (issue 14): an instruction that
sets the flags followed by a conditional branch that leaves the block (``CMP; JZ``),
where the code after the branch overwrites those flags before reading them.

Then the flags matter only if the branch is taken (every exit leaves the interpreter's
EFLAGS) and to decide it. So the branch's condition is worked out from the setter's own
values (``result == 0`` for ZF, the parity table's entry for PF...), and the statements
that only compute and store EFLAGS move into the taken side, after the test::

    total = a - b                       total = a - b
    result = total & 4294967295         result = total & 4294967295
    bits = PARITY[result & 255]         if result == 0:
    if result == 0: bits |= 64              bits = PARITY[result & 255]
    ...                         ->          if result == 0: bits |= 64
    cpu.flags.value = ... | bits            ...
    if cpu.flags.value & 64:                cpu.flags.value = ... | bits
        <leave>                             <leave>

On the path not taken those statements are simply not run: their flags are dead there
(the dead-flag pass, ``snippets.dead_updates``, says which flags the rest of the block
reads before writing). Nothing here knows what an instruction means: the condition is
derived from how the setter's code builds the value it stores in ``cpu.flags.value``
(``bits = <table>[...]``, ``if c: bits |= K``, ``... & K``), and anything it cannot
follow leaves the two instructions as they were.

Why: in the tiny boot's warm blocks, flag code is about a sixth of the executed lines
(probe: block sources weighted by how often each ran), much of it feeding a compare
and branch whose flags the next instructions overwrite. Measured: of the exits with a
setter before them in a cold boot's blocks, 5,884 fused and 3,863 not (2,349 with the
flags read on the fall-through, most others with an instruction between setter and
branch); host instructions per guest instruction with blocks 6,209 -> 6,099 (-1.8 %,
``x86lab bench --ir``, stop 29).
"""

from __future__ import annotations

import ast
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from reference.blocks.optimize import clone, store_counts
from reference.blocks.trees import nodes_of, walk

Statements = List[ast.stmt]


def is_flags_value(node: ast.AST) -> bool:
    """``cpu.flags.value``."""
    return (isinstance(node, ast.Attribute) and node.attr == "value"
            and isinstance(node.value, ast.Attribute) and node.value.attr == "flags"
            and isinstance(node.value.value, ast.Name) and node.value.value.id == "cpu")


def store_index(statements: Statements) -> Optional[int]:
    """The index of the setter's one store to EFLAGS when it is its last top-level
    statement (``cpu.flags.value = cpu.flags.value & KEEP | NEW``) and nothing else in it
    assigns EFLAGS; else None."""
    if not statements:
        return None
    last = statements[-1]
    if not (isinstance(last, ast.Assign) and len(last.targets) == 1
            and is_flags_value(last.targets[0])):
        return None
    stores = [node for node in nodes_of(statements, ast.Attribute)
              if is_flags_value(node) and isinstance(node.ctx, ast.Store)]
    return len(statements) - 1 if len(stores) == 1 else None


def bit_test(statements: Statements, store: int, bit: int,
             namespace: Dict[str, Any]) -> Optional[ast.expr]:
    """An expression over the setter's locals that is true exactly when its store sets
    EFLAGS bit ``bit`` (None if that cannot be followed, or the store keeps the old bit)."""
    value = statements[store].value  # type: ignore[attr-defined]
    if not (isinstance(value, ast.BinOp) and isinstance(value.op, ast.BitOr)):
        return None
    kept = value.left
    if not (isinstance(kept, ast.BinOp) and isinstance(kept.op, ast.BitAnd)
            and is_flags_value(kept.left) and isinstance(kept.right, ast.Constant)
            and isinstance(kept.right.value, int) and not kept.right.value & bit):
        return None
    terms = _terms(value.right, bit, statements[:store], namespace)
    if terms is None:
        return None
    if not terms:
        return ast.Constant(False)
    return terms[0] if len(terms) == 1 else ast.BoolOp(ast.Or(), terms)


def _terms(node: ast.expr, bit: int, earlier: Statements,
           namespace: Dict[str, Any]) -> Optional[List[ast.expr]]:
    """Expressions, any of them true exactly when ``node``'s value has ``bit`` set (its
    value where ``earlier`` ends); None when ``node`` is beyond this."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return [ast.Constant(True)] if node.value & bit else []
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitAnd):
        for mask, other in ((node.right, node.left), (node.left, node.right)):
            if isinstance(mask, ast.Constant) and isinstance(mask.value, int):
                return _terms(other, bit, earlier, namespace) if mask.value & bit else []
        return None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        left = _terms(node.left, bit, earlier, namespace)
        right = _terms(node.right, bit, earlier, namespace)
        return None if left is None or right is None else left + right
    if isinstance(node, ast.Name):
        return _name_terms(node.id, bit, earlier, namespace)
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
        table = namespace.get(node.value.id)  # a module-level table (the parity table)
        if isinstance(table, tuple) and all(isinstance(v, int) for v in table):
            found = {v & bit for v in table}
            if found == {0}:
                return []
            if found <= {0, bit} and _pure(node.slice):
                return [clone(node)]  # each entry is 0 or just the bit: true when set
    return None


def _name_terms(name: str, bit: int, earlier: Statements,
                namespace: Dict[str, Any]) -> Optional[List[ast.expr]]:
    """``name``'s terms: its last top-level assignment in ``earlier``, then the top-level
    ``if c: name |= K`` after it (the only other way it may be assigned there)."""
    base = None
    for index, statement in enumerate(earlier):
        if (isinstance(statement, ast.Assign) and len(statement.targets) == 1
                and isinstance(statement.targets[0], ast.Name)
                and statement.targets[0].id == name):
            base = index
    if base is None:
        return None
    terms = _terms(earlier[base].value, bit, earlier[:base], namespace)  # type: ignore
    if terms is None:
        return None
    for statement in earlier[base + 1:]:
        if name not in _assigned(statement):
            continue
        constant = _or_constant(statement, name)
        if constant is None or not _pure(statement.test):  # type: ignore[attr-defined]
            return None
        if constant & bit:
            terms.append(clone(statement.test))  # type: ignore[attr-defined]
    return terms


def _or_constant(statement: ast.stmt, name: str) -> Optional[int]:
    """K for ``if <test>: name |= K`` (no else), else None."""
    if not (isinstance(statement, ast.If) and not statement.orelse
            and len(statement.body) == 1):
        return None
    inner = statement.body[0]
    if (isinstance(inner, ast.AugAssign) and isinstance(inner.op, ast.BitOr)
            and isinstance(inner.target, ast.Name) and inner.target.id == name
            and isinstance(inner.value, ast.Constant) and isinstance(inner.value.value, int)):
        return inner.value.value
    return None


_PURE = (ast.Name, ast.Constant, ast.BinOp, ast.UnaryOp, ast.Compare, ast.BoolOp,
         ast.IfExp, ast.Subscript, ast.operator, ast.unaryop, ast.cmpop, ast.boolop,
         ast.expr_context)
"""What an expression moved across statements may hold: no call, attribute or walrus."""


def _pure(node: ast.AST) -> bool:
    return all(isinstance(child, _PURE) for child in walk(node))


def _assigned(statement: ast.stmt) -> Set[str]:
    """The local names ``statement`` assigns (anywhere in it)."""
    return {node.id for node in nodes_of(statement, ast.Name)
            if not isinstance(node.ctx, ast.Load)}


def split(statements: Statements, store: int, pinned: Set[str]
          ) -> Optional[Tuple[Statements, Statements]]:
    """(the statements that stay, those that only feed the store: the store and, going
    back, each side-effect-free statement whose locals only those read), in order. A
    statement assigning a ``pinned`` local (one the branch's new test reads) stays.
    None if a statement that stays assigns a local that one moved after it reads (the
    moved one would read the later value)."""
    loads: List[Dict[str, int]] = []
    total: Dict[str, int] = {}
    for statement in statements:
        counts: Dict[str, int] = {}
        for node in nodes_of(statement, ast.Name):
            if isinstance(node.ctx, ast.Load):
                counts[node.id] = counts.get(node.id, 0) + 1
                total[node.id] = total.get(node.id, 0) + 1
        loads.append(counts)
    sunk = {store}
    for index in reversed(range(store)):
        statement = statements[index]
        names = _assigned(statement)
        if (not names or names & pinned or not _only_locals(statement)
                or any(total.get(name, 0) != sum(loads[j].get(name, 0) for j in sunk)
                       for name in names)):
            continue
        sunk.add(index)
    read: Set[str] = set()  # what the statements moved so far (going forward) read
    for index in range(store):
        if index in sunk:
            read.update(loads[index])
        elif _assigned(statements[index]) & read:
            return None
    return ([s for i, s in enumerate(statements) if i not in sunk],
            [s for i, s in enumerate(statements) if i in sunk])


def _only_locals(statement: ast.stmt) -> bool:
    """An assignment to local names, or an ``if`` of such, from pure expressions."""
    if isinstance(statement, (ast.Assign, ast.AugAssign)):
        targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
        return all(isinstance(t, ast.Name) for t in targets) and _pure(statement.value)
    if isinstance(statement, ast.If):
        return _pure(statement.test) and all(
            _only_locals(s) for s in statement.body + statement.orelse)
    return False


def branch_test(before: Statements, test: ast.expr,
                bit: Callable[[int], Optional[ast.expr]]) -> Optional[Tuple[ast.expr, int]]:
    """A branch's condition (its code ``before`` the test, then ``test``) rewritten with
    ``bit(b)`` for each ``<EFLAGS> & K`` it reads, and the bits read; None unless
    ``before`` is nothing or ``v = cpu.flags.value`` and every read of EFLAGS in the test
    is ``& K`` taken for its truth (``if``, ``not``, ``and``/``or``, ``bool()``, and
    ``bool(..) != bool(..)``)."""
    alias = None
    if before:
        first = before[0]
        if not (len(before) == 1 and isinstance(first, ast.Assign)
                and len(first.targets) == 1 and isinstance(first.targets[0], ast.Name)
                and is_flags_value(first.value)):
            return None
        alias = first.targets[0].id
    read = [0]

    def flags(node: ast.AST) -> bool:
        return is_flags_value(node) or (isinstance(node, ast.Name) and node.id == alias)

    def truth(node: ast.expr) -> Optional[ast.expr]:
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            inner = truth(node.operand)
            return None if inner is None else ast.UnaryOp(ast.Not(), inner)
        if isinstance(node, ast.BoolOp):
            values = [truth(value) for value in node.values]
            return None if None in values else ast.BoolOp(node.op, values)  # type: ignore
        if _is_bool_call(node):
            inner = truth(node.args[0])  # type: ignore[attr-defined]
            return None if inner is None else ast.Call(ast.Name("bool", ast.Load()),
                                                       [inner], [])
        if (isinstance(node, ast.Compare) and len(node.ops) == 1
                and isinstance(node.ops[0], (ast.Eq, ast.NotEq))
                and _is_bool_call(node.left) and _is_bool_call(node.comparators[0])):
            left, right = truth(node.left), truth(node.comparators[0])
            return None if left is None or right is None else ast.Compare(
                left, node.ops, [right])
        if (isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitAnd)
                and flags(node.left) and isinstance(node.right, ast.Constant)
                and isinstance(node.right.value, int) and node.right.value > 0):
            terms = []
            mask = node.right.value
            for b in (1 << n for n in range(mask.bit_length()) if mask >> n & 1):
                found = bit(b)
                if found is None:
                    return None
                terms.append(found)
                read[0] |= b
            return terms[0] if len(terms) == 1 else ast.BoolOp(ast.Or(), terms)
        return None

    rewritten = truth(test)
    return None if rewritten is None else (rewritten, read[0])


def _is_bool_call(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "bool" and len(node.args) == 1 and not node.keywords)


def fuse(statements: Statements, branch_before: Statements, test: ast.expr,
         namespace: Dict[str, Any]) -> Optional[Tuple[Statements, Statements, ast.expr]]:
    """For a setter's finished statements and the branch after it (its code before the
    test, and the test): (the setter's statements that stay, those sunk into the taken
    side, the branch's new test), or None where this does not apply (module docstring)."""
    store = store_index(statements)
    if store is None:
        return None
    tests: Dict[int, Optional[ast.expr]] = {}

    def bit(b: int) -> Optional[ast.expr]:
        if b not in tests:
            tests[b] = bit_test(statements, store, b, namespace)  # type: ignore[arg-type]
        found = tests[b]
        return None if found is None else clone(found)

    found = branch_test(branch_before, test, bit)
    if found is None:
        return None
    rewritten, _read = found
    pinned = {node.id for node in nodes_of(rewritten, ast.Name)
              if isinstance(node.ctx, ast.Load)} - {"bool"}
    counts = store_counts(statements)
    if any(counts.get(name, 0) > 1 for name in pinned):
        return None  # a local the new test reads must hold one value in the setter
    parts = split(statements, store, pinned)
    return None if parts is None else (*parts, rewritten)
