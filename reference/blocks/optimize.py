"""Passes over a block's generated code that make it faster without changing what it
does (issue 14). Each works on the Python AST the inliner produced from the semantics;
none knows what any instruction means.

- ``Expander``: a call to a helper the semantics use (``_set_shift_flags(cpu, ...)``,
  ``branch(cpu, target)``, ``cpu.flags.after_add(...)``) becomes the helper's own body,
  with its parameters bound to the arguments. A body whose only ``return`` statements are
  guards at its top level (``if count == 0: return``) or its last statement can be
  inlined; anything else stays a call.
- ``fold``: locals assigned once from a constant (or from ``cpu.flags``/``cpu.regs``,
  objects that never change) are replaced by it, constant expressions are evaluated and
  an ``if`` on a constant keeps the branch taken.
- ``reuse``: a local assigned a copy of a name, or the value of one assigned before it
  (a helper masking a result its caller masked already), reads that name instead.
- dead flags (``flag_update``, ``reads``; the pass is ``snippets.dead_updates``): a
  status-flag update whose flags the block overwrites before anything reads them is
  removed (dead-flag elimination). Within a block this is
  invisible: the block's state is only observed at its end, and anything raised inside
  replays the block from its entry through ``step()``.
- ``needs_bookkeeping``: whether an instruction's code reads ``cpu.eip`` or ``cpu.insn``
  (or calls something that might), so the block sets them only where they are read.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import operator
import re
import textwrap
import types
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from reference import flags as flag_bits
from reference.blocks.trees import Transformer, nodes_of, walk
from reference.flags import Flags

STATUS = flag_bits.STATUS
_FLAG_BITS = {"cf": flag_bits.CF, "pf": flag_bits.PF, "af": flag_bits.AF,
              "zf": flag_bits.ZF, "sf": flag_bits.SF, "of": flag_bits.OF}
_CONDITION_READS = (flag_bits.OF, flag_bits.CF, flag_bits.ZF, flag_bits.CF | flag_bits.ZF,
                    flag_bits.SF, flag_bits.PF, flag_bits.SF | flag_bits.OF,
                    flag_bits.ZF | flag_bits.SF | flag_bits.OF)
"""Status flags read by ``Flags.condition(cc)`` for ``cc >> 1`` = 0..7 (SDM Table B-1)."""
SAFE_CPU_METHODS = frozenset({"read", "write", "push", "pop", "peek", "adjust_sp"})
"""``cpu`` methods that touch memory and ESP only (or raise): never the flags, EIP or
``cpu.insn``."""
STACK_METHODS = frozenset({"push", "pop", "peek", "adjust_sp"})
"""``cpu`` methods inlined from their own source (``Cpu.push`` and its kin): what is
left of them is ``cpu.read``/``cpu.write``, which ``reference.blocks.access`` lowers."""
MAX_DEPTH = 4
_OPERAND_NAME = re.compile(r"op\d+_\d+$")
"""How the inliner names an operand object passed on as it is (``op3_0``)."""
PURE_OPERAND_ATTRIBUTES = frozenset({"sign", "size", "mask", "is_mem", "is_reg"})
"""What of an operand object reads neither the flags nor ``cpu.eip``/``cpu.insn``: its
size, mask and kind, and ``sign`` (``reference.operands.Operand``, overridden by no
operand class). Any other use of an operand (its ``read``, which for a relative target
reads ``cpu.eip``) counts as reading everything. Why: MOVSX's ``op.sign(value)`` kept
the flags of the setter before it live, and the bookkeeping before it, in every block
that held one (a tenth of a boot's snippets, static count, stop 33)."""
_UNSUPPORTED = (ast.Yield, ast.YieldFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda,
                ast.ClassDef, ast.Global, ast.Nonlocal, ast.Await, ast.Try)
_PURE_BUILTINS: Dict[str, Callable[..., Any]] = {"bool": bool, "abs": abs}
_bodies: Dict[Any, Optional[Tuple[List[str], List[ast.expr], List[ast.stmt]]]] = {}


# -- reading a helper --------------------------------------------------------------------
def _helper_body(fn: Callable[..., Any]) -> Optional[Tuple[List[str], List[ast.expr],
                                                          List[ast.stmt]]]:
    """(parameter names, their defaults, body without docstring and with its returns
    reduced to guards and a last ``return``), or None if ``fn`` cannot be inlined."""
    if fn in _bodies:
        return _bodies[fn]
    found = None
    try:
        node = ast.parse(textwrap.dedent(inspect.getsource(fn))).body[0]
    except (OSError, TypeError, SyntaxError, IndexError):
        node = None
    if (isinstance(node, ast.FunctionDef) and not node.args.vararg and not node.args.kwarg
            and not node.args.kwonlyargs and not node.args.posonlyargs
            and not any(isinstance(n, _UNSUPPORTED) for s in node.body for n in walk(s))):
        body = list(node.body)
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body = body[1:]
        shaped = guards_to_ifs(body)
        if shaped is not None:
            names = [a.arg for a in node.args.args]
            found = (names, list(node.args.defaults), shaped)
    _bodies[fn] = found
    return found


def guards_to_ifs(body: List[ast.stmt]) -> Optional[List[ast.stmt]]:
    """``if c: return`` at the top level becomes ``if not c: <the rest>``; a ``return X``
    may end the body. Any other ``return``: None (not inlinable)."""
    for i, statement in enumerate(body):
        if (isinstance(statement, ast.If) and not statement.orelse
                and len(statement.body) == 1 and isinstance(statement.body[0], ast.Return)
                and statement.body[0].value is None):
            rest = guards_to_ifs(body[i + 1:])
            if rest is None:
                return None
            guard = ast.If(ast.UnaryOp(ast.Not(), statement.test), rest or [ast.Pass()], [])
            return body[:i] + [guard]
        last = i == len(body) - 1 and isinstance(statement, ast.Return)
        if not last and any(isinstance(n, ast.Return) for n in walk(statement)):
            return None
    return body


def clone(node: Any, names: Optional[Callable[[ast.Name], ast.AST]] = None) -> Any:
    """A deep copy of an AST (``copy.deepcopy`` is several times slower: it keeps a memo
    of every object and copies the immutable leaves too); ``names``, if given, makes the
    copy of each ``Name`` (renaming while copying: one walk instead of two)."""
    if node.__class__ is list:
        return [_clone(item, names) if isinstance(item, ast.AST) else item for item in node]
    return _clone(node, names) if isinstance(node, ast.AST) else node


def _clone(node: ast.AST, names: Optional[Callable[[ast.Name], ast.AST]]) -> Any:
    """``clone`` of a node. Its ``__dict__`` (fields and location) is copied whole, then
    the fields holding nodes or lists of them are replaced by their copies: only the
    fields are looked at in Python, not the four location numbers. Nodes with neither
    fields nor location (``Load``, ``Add``, ...) are shared, not copied, since nothing
    changes them. A boot's block making makes ~2 M copies: copying the ``__dict__``
    item by item cost a third more, field by field with ``setattr`` more still."""
    cls = node.__class__
    if names is not None and cls is ast.Name:
        return names(node)  # type: ignore[arg-type]
    fields = cls._fields
    if not fields and not cls._attributes:
        return node
    new = cls.__new__(cls)
    copied = new.__dict__
    copied.update(node.__dict__)
    for name in fields:
        value = copied.get(name)
        if value.__class__ is list:
            copied[name] = [_clone(item, names) if isinstance(item, ast.AST) else item
                            for item in value]
        elif isinstance(value, ast.AST):
            copied[name] = _clone(value, names)
    return new


# -- expanding calls ---------------------------------------------------------------------
class _Renamer:
    """One copy of a helper's body: parameters become the bound expressions, locals get a
    unique suffix, module globals become constants (numbers) or namespace names."""

    def __init__(self, fn: Callable[..., Any], bound: Dict[str, ast.expr], local: List[str],
                 suffix: str, namespace: Dict[str, Any]) -> None:
        self.fn, self.bound, self.local, self.suffix = fn, bound, set(local), suffix
        self.namespace = namespace

    def name(self, node: ast.Name) -> ast.AST:
        name = node.id
        if name in self.bound:
            return clone(self.bound[name])
        if name in self.local:
            return ast.copy_location(ast.Name(name + self.suffix, node.ctx), node)
        return global_name(self.fn, ast.Name(name, node.ctx), self.namespace)

    def copy(self, node: Any) -> Any:
        """A renamed copy of ``node`` (an AST or a list of them)."""
        return clone(node, self.name)


ORIGINS: Dict[str, Tuple[str, str]] = {}
"""Alias of each module-level name generated code uses -> (its module, its name): how a
block read back from the disk cache (``reference.blocks.cache``) finds them again."""


def global_name(fn: Callable[..., Any], node: ast.Name, namespace: Dict[str, Any]) -> ast.AST:
    """A global of ``fn``'s module seen from a block: a number as its constant value,
    anything else under a module-prefixed name put into the block's namespace."""
    name = node.id
    globals_ = getattr(fn, "__globals__", {})
    if name in globals_:
        value = globals_[name]
    elif hasattr(builtins, name):
        return node
    else:  # pragma: no cover - a NameError in the semantics themselves
        raise NameError(f"{fn.__name__}: unknown name {name!r}")
    if isinstance(value, (bool, int)) and isinstance(node.ctx, ast.Load):
        return ast.copy_location(ast.Constant(value), node)
    alias = "g_" + fn.__module__.rsplit(".", 1)[-1] + "_" + name
    namespace[alias] = value
    ORIGINS[alias] = (fn.__module__, name)
    return ast.copy_location(ast.Name(alias, node.ctx), node)


def _is_flags(node: ast.AST) -> bool:
    """``cpu.flags``."""
    return (isinstance(node, ast.Attribute) and node.attr == "flags"
            and isinstance(node.value, ast.Name) and node.value.id == "cpu")


def _callee(call: ast.Call, namespace: Dict[str, Any],
            flag_methods: bool) -> Optional[Tuple[Callable[..., Any], List[ast.expr]]]:
    """The function a call runs and its positional argument list (``self`` first for a
    ``cpu.flags`` method), when it is one the blocks may inline."""
    func = call.func
    if isinstance(func, ast.Name):
        fn = namespace.get(func.id)
        if (isinstance(fn, types.FunctionType) and fn.__module__.startswith("reference.")
                and not fn.__module__.startswith("reference.blocks")):
            return fn, list(call.args)
    elif flag_methods and isinstance(func, ast.Attribute) and _is_flags(func.value):
        fn = getattr(Flags, func.attr, None)
        if isinstance(fn, types.FunctionType):
            return fn, [func.value] + list(call.args)
    elif (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
          and func.value.id == "cpu" and func.attr in STACK_METHODS):
        from reference.cpu import Cpu
        return getattr(Cpu, func.attr), [func.value] + list(call.args)
    return None


def _compared_call(test: ast.expr) -> Optional[ast.Call]:
    """The call in a test ``x OP f(...)`` or ``f(...) OP x``, one comparison whose other
    side is a local or a constant (which ``f`` cannot change, so computing ``f`` first,
    before the ``if``, keeps what the test sees); else None. Why: CALL's ``if destination
    > code_limit(cpu)`` stayed a call given the CPU, which the dead-flag pass must take
    as reading every flag (stop 33)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1):
        return None
    left, right = test.left, test.comparators[0]
    simple = (ast.Name, ast.Constant)
    if isinstance(right, ast.Call) and isinstance(left, simple):
        return right
    if isinstance(left, ast.Call) and isinstance(right, simple):
        return left
    return None


class Expander:
    """Inlines helper calls in statements (``x = f(...)``, ``f(...)``, ``if f(...):``)."""

    def __init__(self, namespace: Dict[str, Any], flag_methods: bool) -> None:
        self.namespace, self.flag_methods, self.count = namespace, flag_methods, 0

    def statements(self, body: List[ast.stmt], depth: int = 0) -> List[ast.stmt]:
        out: List[ast.stmt] = []
        for statement in body:
            out.extend(self._statement(statement, depth))
        return out

    def _statement(self, statement: ast.stmt, depth: int) -> List[ast.stmt]:
        if isinstance(statement, ast.If):
            statement.body = self.statements(statement.body, depth) or [ast.Pass()]
            statement.orelse = self.statements(statement.orelse, depth)
            compared = _compared_call(statement.test)
            call = statement.test if isinstance(statement.test, ast.Call) else compared
            if call is not None and depth < MAX_DEPTH:
                self.count += 1
                temp = f"t_{self.count}"
                expanded = self._call(call, temp, depth)
                if expanded is not None:
                    if call is compared:
                        test = statement.test
                        assert isinstance(test, ast.Compare)
                        if test.left is call:
                            test.left = ast.Name(temp, ast.Load())
                        else:
                            test.comparators = [ast.Name(temp, ast.Load())]
                    else:
                        statement.test = ast.Name(temp, ast.Load())
                    return expanded + [statement]
            return [statement]
        target: Optional[str] = None
        if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call):
            call = statement.value
        elif (isinstance(statement, ast.Assign) and len(statement.targets) == 1
              and isinstance(statement.targets[0], ast.Name)
              and isinstance(statement.value, ast.Call)):
            call, target = statement.value, statement.targets[0].id
        else:
            return [statement]
        expanded = self._call(call, target, depth) if depth < MAX_DEPTH else None
        return [statement] if expanded is None else expanded

    def _call(self, call: ast.Call, target: Optional[str],
              depth: int) -> Optional[List[ast.stmt]]:
        found = _callee(call, self.namespace, self.flag_methods)
        if found is None:
            return None
        fn, args = found
        shape = _helper_body(fn)
        if shape is None:
            return None
        names, defaults, body = shape
        in_callee = _Renamer(fn, {}, [], "", self.namespace)  # defaults: the callee's names
        values: Dict[str, ast.expr] = {
            name: in_callee.copy(default)
            for name, default in zip(names[len(names) - len(defaults):], defaults)}
        if len(args) > len(names):
            return None
        values.update(zip(names, args))
        for keyword in call.keywords:
            if keyword.arg is None or keyword.arg not in names:
                return None
            values[keyword.arg] = keyword.value
        if set(values) != set(names):
            return None
        ends_in_return = bool(body) and isinstance(body[-1], ast.Return)
        if target is not None and not ends_in_return:
            return None
        self.count += 1
        suffix = f"_c{self.count}"
        assigned = _assigned(fn, body)
        prologue: List[ast.stmt] = []
        bound: Dict[str, ast.expr] = {}
        for name in names:
            value = values[name]
            if name not in assigned and _simple(value):
                bound[name] = value
            else:  # evaluated once, in order, as a call would
                prologue.append(ast.Assign([ast.Name(name + suffix, ast.Store())], value))
        local = [n for n in assigned | set(names) if n not in bound]
        renamer = _Renamer(fn, bound, local, suffix, self.namespace)
        copied = renamer.copy(body)
        if ends_in_return:
            result = copied[-1].value  # type: ignore[attr-defined]
            copied = copied[:-1]
            if target is not None:
                copied.append(ast.Assign([ast.Name(target, ast.Store())],
                                         result if result is not None else ast.Constant(None)))
            elif result is not None and not _simple(result):
                copied.append(ast.Expr(result))
        return self.statements(prologue + copied, depth + 1)


_assigned_names: Dict[Any, set] = {}


def _assigned(fn: Callable[..., Any], body: List[ast.stmt]) -> set:
    """The names a helper's body assigns (its locals), found once per helper."""
    if fn not in _assigned_names:
        _assigned_names[fn] = {n.id for s in body for n in walk(s)
                               if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    return _assigned_names[fn]


def _simple(node: ast.expr) -> bool:
    """An argument that can be substituted wherever the parameter is read: a name, a
    constant, or ``cpu.flags``/``cpu.regs`` (no side effect, same value each time)."""
    if isinstance(node, (ast.Name, ast.Constant)):
        return True
    return (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            and node.value.id == "cpu" and node.attr in ("flags", "regs"))


# -- constants ---------------------------------------------------------------------------
_STORING = (ast.Name, ast.AugAssign, ast.For, ast.With, ast.comprehension)
"""What ``store_counts`` counts the stores to a name in."""


def store_counts(body: List[ast.stmt]) -> Dict[str, int]:
    """How often each name is assigned in ``body``: 1 per plain store, 2 per augmented
    assignment, loop or ``with`` target (a name that holds more than one value)."""
    stores: Dict[str, int] = {}
    for node in nodes_of(body, _STORING):
        if isinstance(node, ast.Name):
            if not isinstance(node.ctx, ast.Load):
                stores[node.id] = stores.get(node.id, 0) + 1
        else:
            for name in nodes_of(getattr(node, "target", node), ast.Name):
                stores[name.id] = stores.get(name.id, 0) + 2
    return stores


def fold(body: List[ast.stmt]) -> List[ast.stmt]:
    """Propagate locals assigned once from a constant (or ``cpu.flags``/``cpu.regs``),
    evaluate constant expressions, keep the branch a constant ``if`` takes."""
    body = _split_tuples(body)
    for _ in range(4):
        stores = store_counts(body)
        folder = _Folder(stores)
        body = folder.block(body)
        if not folder.pruned:  # one forward pass found everything a branch did not hide
            return body
    return body


_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.LShift: operator.lshift,
           ast.RShift: operator.rshift, ast.BitAnd: operator.and_, ast.BitOr: operator.or_,
           ast.BitXor: operator.xor}
_UNARY = {ast.Invert: operator.invert, ast.USub: operator.neg, ast.Not: operator.not_,
          ast.UAdd: operator.pos}
_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt,
            ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
            ast.Is: operator.is_, ast.IsNot: operator.is_not}


class _NotConstant(Exception):
    pass


def _value(node: ast.expr) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    raise _NotConstant


def _of_constants(node: ast.expr) -> bool:
    """Whether ``_evaluate`` may find ``node``'s value: its operands are constants (of a
    comparison, the first two: a false one decides before the rest). Tested first
    since most operators are not applied to constants, and ``_evaluate`` raising for
    each (~116,000 times making a cold boot's blocks) cost more than this test."""
    if isinstance(node, ast.BinOp):
        return isinstance(node.left, ast.Constant) and isinstance(node.right, ast.Constant)
    if isinstance(node, ast.UnaryOp):
        return isinstance(node.operand, ast.Constant)
    if isinstance(node, ast.Compare):
        return isinstance(node.left, ast.Constant) and isinstance(node.comparators[0],
                                                                   ast.Constant)
    if isinstance(node, ast.BoolOp):
        return all(isinstance(value, ast.Constant) for value in node.values)
    return False


def _evaluate(node: ast.expr) -> Any:
    """The value of an operator applied to constants (raises if it is not that)."""
    if isinstance(node, ast.BinOp):
        left, right = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.LShift) and right > 4096:
            raise _NotConstant  # keep absurd shifts for run time
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_value(node.operand))
    if isinstance(node, ast.Compare):
        left = _value(node.left)
        for op, comparator in zip(node.ops, node.comparators):
            right = _value(comparator)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.BoolOp):
        values = [_value(v) for v in node.values]
        result = values[0]
        for value in values[1:]:
            result = (result and value) if isinstance(node.op, ast.And) else (result or value)
        return result
    raise _NotConstant


def _split_tuples(body: List[ast.stmt]) -> List[ast.stmt]:
    """``a, b = (x, y)`` as ``a = x; b = y`` when no element reads a target (the same
    values, and each name can then be folded on its own)."""
    out: List[ast.stmt] = []
    for statement in body:
        if isinstance(statement, ast.If):
            statement.body = _split_tuples(statement.body)
            statement.orelse = _split_tuples(statement.orelse)
        if (isinstance(statement, ast.Assign) and len(statement.targets) == 1
                and isinstance(statement.targets[0], ast.Tuple)
                and isinstance(statement.value, ast.Tuple)
                and len(statement.targets[0].elts) == len(statement.value.elts)
                and all(isinstance(t, ast.Name) for t in statement.targets[0].elts)):
            targets = {t.id for t in statement.targets[0].elts}  # type: ignore[attr-defined]
            if not any(isinstance(n, ast.Name) and n.id in targets
                       for v in statement.value.elts for n in walk(v)):
                out += [ast.Assign([ast.Name(t.id, ast.Store())], v)  # type: ignore[attr-defined]
                        for t, v in zip(statement.targets[0].elts, statement.value.elts)]
                continue
        out.append(statement)
    return out


def _is_int(node: ast.expr) -> bool:
    """An integer constant (not a bool: ``x & True`` is a bool when ``x`` is)."""
    return isinstance(node, ast.Constant) and type(node.value) is int


def _is_bool_call(node: ast.expr) -> bool:
    """``bool(x)``: the builtin on one positional argument."""
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "bool" and len(node.args) == 1 and not node.keywords
            and not isinstance(node.args[0], ast.Starred))


def _truth(node: ast.expr) -> ast.expr:
    """``node`` where only its truth is used (an ``if`` test, ``not``'s operand):
    ``bool(x)`` there tests what ``x`` tests."""
    return node.args[0] if _is_bool_call(node) else node  # type: ignore[attr-defined]


class _Folder(Transformer):
    """One forward pass: a name assigned once (``stores``) from a constant is dropped and
    its uses replaced, as the statements come; ``pruned`` says an ``if`` was decided (a
    second pass may then find more)."""

    def __init__(self, stores: Dict[str, int]) -> None:
        self.stores, self.known = stores, {}  # type: Dict[str, int], Dict[str, ast.expr]
        self.changed = self.pruned = False

    def block(self, body: List[ast.stmt]) -> List[ast.stmt]:
        out: List[ast.stmt] = []
        for statement in body:
            result = self.visit(statement)
            if result is None:
                continue
            out.extend(result if isinstance(result, list) else [result])
        return out

    def visit_Assign(self, node: ast.Assign) -> Any:
        node.value = self.visit(node.value)
        target = node.targets[0]
        if (len(node.targets) == 1 and isinstance(target, ast.Name)
                and self.stores.get(target.id) == 1
                and (isinstance(node.value, ast.Constant) or (
                    isinstance(node.value, ast.Attribute) and _simple(node.value)))):
            self.known[target.id] = node.value
            self.changed = True
            return None
        node.targets = [self.visit(t) for t in node.targets]
        return node

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if isinstance(node.ctx, ast.Load) and node.id in self.known:
            self.changed = True
            return ast.copy_location(clone(self.known[node.id]), node)
        return node

    def _constant(self, node: ast.expr) -> ast.expr:
        if not _of_constants(node):
            return node
        try:
            value = _evaluate(node)
        except Exception:  # noqa: BLE001 - not constant, or raises: leave it to run time
            return node
        if value is None or isinstance(value, (bool, int)):
            self.changed = True
            return ast.copy_location(ast.Constant(value), node)
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        """Also ``x & c1 & c2`` as ``x & (c1 & c2)`` (LEA masks an effective address
        that comes masked already): the same value whatever ``x`` is, since both masks
        are integers."""
        folded = self._constant(self.generic_visit(node))  # type: ignore[arg-type]
        if (isinstance(folded, ast.BinOp) and isinstance(folded.op, ast.BitAnd)
                and isinstance(folded.left, ast.BinOp)
                and isinstance(folded.left.op, ast.BitAnd)
                and _is_int(folded.right) and _is_int(folded.left.right)):
            self.changed = True
            mask = folded.left.right.value & folded.right.value  # type: ignore[attr-defined]
            folded.left, folded.right = folded.left.left, ast.Constant(mask)
        return folded

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.AST:
        return self._constant(self.generic_visit(node))  # type: ignore[arg-type]

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        """Also ``bool(x) != False`` (how a condition's semantics end: ``bool(hit) !=
        bool(cc & 1)`` with the condition code known) as ``bool(x)``, and ``bool(x) !=
        True`` as ``not x``."""
        folded = self._constant(self.generic_visit(node))  # type: ignore[arg-type]
        if not (isinstance(folded, ast.Compare) and len(folded.ops) == 1
                and isinstance(folded.ops[0], (ast.Eq, ast.NotEq))
                and _is_bool_call(folded.left)
                and isinstance(folded.comparators[0], ast.Constant)
                and isinstance(folded.comparators[0].value, bool)):
            return folded
        self.changed = True
        if folded.comparators[0].value == isinstance(folded.ops[0], ast.Eq):
            return folded.left  # bool(x) == True, bool(x) != False
        return ast.copy_location(ast.UnaryOp(ast.Not(), folded.left.args[0]), folded)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        """Also ``not bool(x)`` as ``not x``."""
        folded = self._constant(self.generic_visit(node))  # type: ignore[arg-type]
        if isinstance(folded, ast.UnaryOp) and isinstance(folded.op, ast.Not):
            operand = _truth(folded.operand)
            self.changed = self.changed or operand is not folded.operand
            folded.operand = operand
        return folded

    def visit_Call(self, node: ast.Call) -> ast.AST:
        """``bool(1)`` and the like: a pure builtin of constants."""
        node = self.generic_visit(node)  # type: ignore[assignment]
        if (isinstance(node.func, ast.Name) and node.func.id in _PURE_BUILTINS
                and not node.keywords and all(isinstance(a, ast.Constant) for a in node.args)):
            value = _PURE_BUILTINS[node.func.id](*(a.value for a in node.args))  # type: ignore
            self.changed = True
            return ast.copy_location(ast.Constant(value), node)
        return node

    def visit_IfExp(self, node: ast.IfExp) -> ast.AST:
        node = self.generic_visit(node)  # type: ignore[assignment]
        if isinstance(node.test, ast.Constant):
            self.changed = True
            return node.body if node.test.value else node.orelse
        return node

    def visit_If(self, node: ast.If) -> Any:
        node.test = _truth(self.visit(node.test))
        node.body = self.block(node.body) or [ast.Pass()]
        node.orelse = self.block(node.orelse)
        if isinstance(node.test, ast.Constant):
            self.changed = self.pruned = True
            return (node.body if node.test.value else node.orelse) or [ast.Pass()]
        return node


# -- dead flags --------------------------------------------------------------------------
def flag_update(statement: ast.stmt) -> Optional[int]:
    """The status flags a statement that only updates flags always writes
    (``cpu.flags.after_add(...)`` and its siblings, ``cpu.flags.cf = x``); None for
    anything else."""
    if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call):
        call = statement.value
        func = call.func
        if not (isinstance(func, ast.Attribute) and _is_flags(func.value)):
            return None
        keywords = {k.arg: k.value for k in call.keywords}
        keep_cf = keywords.get("keep_cf")
        if func.attr in ("after_add", "after_sub"):
            if keep_cf is None and len(call.args) > 4:
                keep_cf = call.args[4]
            if keep_cf is None or (isinstance(keep_cf, ast.Constant) and not keep_cf.value):
                return STATUS
            if isinstance(keep_cf, ast.Constant):
                return STATUS & ~flag_bits.CF
            return None
        if func.attr == "after_logic":
            return STATUS
        if func.attr == "set_szp":
            return flag_bits.SF | flag_bits.ZF | flag_bits.PF
        if func.attr == "set_status":
            mask = call.args[1] if len(call.args) > 1 else keywords.get("mask")
            if mask is None:
                return STATUS
            if isinstance(mask, ast.Constant) and isinstance(mask.value, int):
                return mask.value & STATUS
        return None
    if (isinstance(statement, ast.Assign) and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Attribute)
            and _is_flags(statement.targets[0].value)
            and statement.targets[0].attr in _FLAG_BITS):
        return _FLAG_BITS[statement.targets[0].attr]
    return None


_READING = (ast.Call, ast.Attribute, ast.Name)
"""The nodes ``reads`` looks at."""


def reads(node: ast.AST) -> int:
    """Status flags an expression or statement may read (all of them when unsure)."""
    read = 0
    methods = set()  # ``cpu.flags.condition`` of a call: judged with its call
    pure = _pure_operand_uses(node)
    for child in nodes_of(node, _READING):  # a call before the attribute it calls
        if isinstance(child, ast.Call):
            func = child.func
            if isinstance(func, ast.Attribute) and _is_flags(func.value):
                methods.add(id(func))
                if (func.attr == "condition" and child.args
                        and isinstance(child.args[0], ast.Constant)):
                    read |= _CONDITION_READS[(child.args[0].value >> 1) & 7]
                else:
                    read |= STATUS
            elif _opaque(child):
                read |= STATUS
        elif (isinstance(child, ast.Attribute) and _is_flags(child.value)
              and id(child) not in methods):
            if child.attr in _FLAG_BITS and isinstance(child.ctx, ast.Load):
                read |= _FLAG_BITS[child.attr]
            elif child.attr not in _FLAG_BITS:
                read |= STATUS
        elif (isinstance(child, ast.Name) and _OPERAND_NAME.match(child.id)
              and id(child) not in pure):
            read |= STATUS  # an operand object passed on: whatever it does is unknown
    return read


def _pure_operand_uses(tree: Any) -> Set[int]:
    """The ``id`` of each operand name under ``tree`` that is only the object of a
    ``PURE_OPERAND_ATTRIBUTES`` access (``op3_1.sign``, ``op0_0.size``)."""
    return {id(node.value) for node in nodes_of(tree, ast.Attribute)
            if node.attr in PURE_OPERAND_ATTRIBUTES and isinstance(node.value, ast.Name)
            and _OPERAND_NAME.match(node.value.id)}


def _opaque(call: ast.Call) -> bool:
    """A call that may do anything with the CPU (it is given ``cpu``, or is a ``cpu``
    method that is not a plain memory or stack access)."""
    func = call.func
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) \
            and func.value.id == "cpu":
        return func.attr not in SAFE_CPU_METHODS
    if isinstance(func, ast.Attribute) and _is_flags(func.value):
        return False
    return any(isinstance(n, ast.Name) and n.id == "cpu" for a in call.args
               for n in walk(a)) or any(
        isinstance(n, ast.Name) and n.id == "cpu" for k in call.keywords
        for n in walk(k.value))


def aliases_flags(body: List[ast.stmt]) -> bool:
    """Whether some name still holds ``cpu.flags`` (then flag accesses can hide behind it
    and no update may be called dead)."""
    return any(_is_flags(node.value) for node in nodes_of(body, ast.Assign))


def reads_arguments(statement: ast.stmt) -> int:
    """Flags read by a flag update's arguments (``cpu.flags.cf`` in ADC's total)."""
    if isinstance(statement, ast.Expr):
        call = statement.value
        assert isinstance(call, ast.Call)
        read = 0
        for arg in list(call.args) + [k.value for k in call.keywords]:
            read |= reads(arg)
        return read
    return reads(statement.value)  # type: ignore[attr-defined]


_MAY_RAISE = (ast.Call, ast.NamedExpr, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)
"""What keeps ``forward`` from dropping a value nothing reads."""


def forward(body: List[ast.stmt]) -> List[ast.stmt]:
    """``t = E`` followed by ``X = t``, where the code reads ``t`` nowhere else and
    assigns it nowhere else, becomes ``X = E``: the semantics bind each value to a
    name before storing it (so it is evaluated before the address, as ``write`` does);
    in ``X = E`` Python evaluates E before X's own parts too, so nothing moves. So does
    ``t = E`` followed by an ``if`` whose test reads ``t`` before anything else (``if
    t:``, a condition's value then the branch on it, or ``if not t & 64:``), with
    ``bool(x)`` tested as ``x`` where it is the whole test. And a
    local that nothing reads is not computed, when computing it can raise nothing: no
    call, no division (the subscripts there index ``regs`` and flag tables in range)."""
    stores: Dict[str, int] = {}
    loads: Dict[str, int] = {}
    for node in nodes_of(body, ast.Name):
        counts = loads if isinstance(node.ctx, ast.Load) else stores
        counts[node.id] = counts.get(node.id, 0) + 1
    return _forward(body, stores, loads)


def _forward(body: List[ast.stmt], stores: Dict[str, int],
             loads: Dict[str, int]) -> List[ast.stmt]:
    out: List[ast.stmt] = []
    for statement in body:
        if isinstance(statement, ast.If):
            statement.body = _forward(statement.body, stores, loads) or [ast.Pass()]
            statement.orelse = _forward(statement.orelse, stores, loads)
        if (isinstance(statement, ast.Assign) and len(statement.targets) == 1
                and isinstance(statement.targets[0], ast.Name)
                and not loads.get(statement.targets[0].id)
                and not nodes_of(statement.value, _MAY_RAISE)):
            continue  # a value nothing reads (a flag's, once its update was dead)
        while isinstance(statement, ast.If) and out:  # t = E; if t: -> if E:
            first = _first_read(statement.test)           # (and if not t & 64:)
            if first is None or not _tested_value(out[-1], first[2], stores, loads):
                break
            value = out.pop().value  # type: ignore[attr-defined]
            if first[0] is None:
                statement.test = _truth(value)
            else:
                setattr(first[0], first[1], value)
        previous = out[-1] if out else None
        if (isinstance(statement, ast.Assign) and len(statement.targets) == 1
                and isinstance(statement.value, ast.Name)
                and isinstance(previous, ast.Assign) and len(previous.targets) == 1
                and isinstance(previous.targets[0], ast.Name)
                and previous.targets[0].id == statement.value.id
                and stores.get(statement.value.id) == 1
                and loads.get(statement.value.id) == 1):
            out[-1] = ast.copy_location(ast.Assign(statement.targets, previous.value),
                                        previous)
            continue
        out.append(statement)
    return out


# -- values computed twice -------------------------------------------------------------
_PURE = (ast.Name, ast.Constant, ast.BinOp, ast.UnaryOp, ast.Compare, ast.BoolOp,
         ast.operator, ast.unaryop, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE,
         ast.boolop, ast.expr_context)
"""What a value made of locals may hold to be computed again with the same result:
operators on names and constants (no call, subscript, attribute or walrus, and no
``in`` or ``is``: a name may hold a dict that changes, ``M_code``)."""


def reuse(body: List[ast.stmt]) -> List[ast.stmt]:
    """A local assigned once from a name (``bits_c2 = bits_c3``), or from the same
    operators on the same locals as one assigned before it (``result_c2 = total_0 &
    4294967295`` after ``result_c1 = total_0 & 4294967295``: a helper masks a result its
    caller masked already), is not computed again: its uses read the earlier name.
    Only names that nothing assigns a second time take part, each read after its one
    assignment (in the same statement list, or one around it) or never assigned here
    (``eip``, a global), so each has one value wherever it is read."""
    return _Reuser(store_counts(body)).block(body, {})


class _Reuser(Transformer):
    """``reuse``'s one forward pass: ``same`` maps a dropped local to the one it reads."""

    def __init__(self, stores: Dict[str, int]) -> None:
        self.stores = stores
        self.same: Dict[str, str] = {}

    def block(self, body: List[ast.stmt], known: Dict[str, str]) -> List[ast.stmt]:
        """``body`` with the values in ``known`` reused (the dump of a value, or a name
        already assigned, -> the local holding it); what it assigns is known only
        inside it."""
        known = dict(known)
        out: List[ast.stmt] = []
        for statement in body:
            if isinstance(statement, ast.If):
                statement.test = self.visit(statement.test)
                statement.body = self.block(statement.body, known) or [ast.Pass()]
                statement.orelse = self.block(statement.orelse, known)
                out.append(statement)
                continue
            statement = self.visit(statement)
            target = statement.targets[0] if isinstance(statement, ast.Assign) else None
            if (isinstance(target, ast.Name) and len(statement.targets) == 1
                    and self.stores.get(target.id) == 1):
                value = statement.value
                if self._pure(value, known):
                    key = value.id if isinstance(value, ast.Name) else ast.dump(value)
                    if isinstance(value, ast.Name) or key in known:
                        self.same[target.id] = known.get(key, key)
                        continue
                    known[key] = target.id
                known[target.id] = target.id  # assigned: may be read from here on
            out.append(statement)
        return out

    def _pure(self, value: ast.expr, known: Dict[str, str]) -> bool:
        for node in walk(value):
            if not isinstance(node, _PURE):
                return False
            if isinstance(node, ast.Name) and self.stores.get(node.id, 0) and (
                    self.stores[node.id] > 1 or node.id not in known):
                return False
        return True

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if isinstance(node.ctx, ast.Load) and node.id in self.same:
            return ast.copy_location(ast.Name(self.same[node.id], ast.Load()), node)
        return node


def _first_read(test: ast.expr) -> Optional[Tuple[Optional[ast.expr], str, ast.expr]]:
    """The local an ``if`` test reads before anything else it evaluates, as (the node
    holding it or None for the test itself, its field, the name): the leftmost operand
    down through ``not``, binary operators and comparisons (``not v & 64`` reads ``v``
    first), so a value computed just before may take its place without moving."""
    holder: Optional[ast.expr] = None
    field = ""
    node = test
    while not isinstance(node, ast.Name):
        if isinstance(node, ast.UnaryOp):
            holder, field, node = node, "operand", node.operand
        elif isinstance(node, (ast.BinOp, ast.Compare)):
            holder, field, node = node, "left", node.left
        else:
            return None
    return holder, field, node


def _tested_value(previous: ast.stmt, test: ast.expr, stores: Dict[str, int],
                  loads: Dict[str, int]) -> bool:
    """Whether ``previous`` is ``t = E`` and ``test`` is ``t``, read and assigned nowhere
    else (``forward``; ``test`` is what ``_first_read`` found)."""
    return (isinstance(test, ast.Name) and isinstance(previous, ast.Assign)
            and len(previous.targets) == 1 and isinstance(previous.targets[0], ast.Name)
            and previous.targets[0].id == test.id
            and stores.get(test.id) == 1 and loads.get(test.id) == 1)


class _FlagProperties(Transformer):
    """``cpu.flags.cf`` and ``cpu.flags.cf = v`` as the bodies of the ``Flags``
    property's own getter and setter (``reference.flags._flag_property``), their bit
    a constant: a property access is a Python call."""

    def visit_Assign(self, node: ast.Assign) -> ast.AST:
        node.value = self.visit(node.value)
        prop = _flag_property(node.targets[0]) if len(node.targets) == 1 else None
        body = _accessor(prop.fset, node.value) if prop is not None else None
        if body is None or len(body) != 1:
            return node
        return ast.copy_location(body[0], node)

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        prop = _flag_property(node) if isinstance(node.ctx, ast.Load) else None
        body = _accessor(prop.fget, None) if prop is not None else None
        if body is None or len(body) != 1 or not isinstance(body[0], ast.Return):
            return self.generic_visit(node)
        return ast.copy_location(body[0].value, node)  # type: ignore[arg-type]


def _flag_property(node: ast.AST) -> Optional[property]:
    """The ``Flags`` property ``node`` (``cpu.flags.<name>``) names, if it is one."""
    if isinstance(node, ast.Attribute) and _is_flags(node.value):
        found = getattr(Flags, node.attr, None)
        if isinstance(found, property):
            return found
    return None


def _accessor(fn: Any, value: Optional[ast.expr]) -> Optional[List[ast.stmt]]:
    """The body of a property's getter (``value`` None) or setter (its parameter bound
    to ``value``, which it reads once), ``self`` as ``cpu.flags`` and the closure's
    numbers as constants; None if it has any other name."""
    shape = _helper_body(fn)
    if shape is None:
        return None
    names, _, body = shape
    cells = dict(zip(fn.__code__.co_freevars, [c.cell_contents for c in fn.__closure__ or ()]))
    bound: Dict[str, ast.expr] = {names[0]: ast.parse("cpu.flags", mode="eval").body}
    if value is not None:
        uses = sum(isinstance(n, ast.Name) and n.id == names[1]
                   for s in body for n in walk(s))
        if len(names) != 2 or (uses != 1 and not _simple(value)):
            return None
        bound[names[1]] = value
    for name, content in cells.items():
        if not isinstance(content, int):
            return None
        bound[name] = ast.Constant(content)
    unknown = [False]

    def rename(node: ast.Name) -> ast.AST:
        if node.id in bound:
            return clone(bound[node.id])
        unknown[0] = True
        return node

    copied = clone(body, rename)
    return None if unknown[0] else copied


def inline_flag_properties(statements: List[ast.stmt]) -> List[ast.stmt]:
    """Every ``cpu.flags.<bit>`` read and assignment written out (``_FlagProperties``)."""
    transformer = _FlagProperties()
    return [transformer.visit(statement) for statement in statements]


class _LocalRegs(Transformer):
    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        if (node.attr == "regs" and isinstance(node.value, ast.Name)
                and node.value.id == "cpu" and isinstance(node.ctx, ast.Load)):
            return ast.copy_location(ast.Name("regs", ast.Load()), node)
        return self.generic_visit(node)


class _StackSize(Transformer):
    def __init__(self, size: int) -> None:
        self.size, self.used = size, False

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        if (node.attr == "stack_size" and isinstance(node.value, ast.Name)
                and node.value.id == "cpu" and isinstance(node.ctx, ast.Load)):
            self.used = True
            return ast.copy_location(ast.Constant(self.size), node)
        return self.generic_visit(node)


def with_stack_size(statements: List[ast.stmt], size: int) -> Tuple[List[ast.stmt], bool]:
    """``cpu.stack_size`` (SS.B: 16 or 32) as the constant ``size``, so ``fold`` keeps
    one width of each push and pop; and whether it was read (a block that assumes it
    checks it on entry: SS is only loaded outside blocks)."""
    transformer = _StackSize(size)
    return [transformer.visit(statement) for statement in statements], transformer.used


def local_regs(statements: List[ast.stmt]) -> List[ast.stmt]:
    """``cpu.regs`` read as the block's local ``regs`` (the same list: the CPU never
    rebinds it, a rollback assigns into it)."""
    transformer = _LocalRegs()
    return [transformer.visit(statement) for statement in statements]


# -- EIP and cpu.insn --------------------------------------------------------------------
def needs_bookkeeping(statements: List[ast.stmt]) -> bool:
    """Whether an instruction's code may read ``cpu.eip`` or ``cpu.insn`` (directly, or
    through a call that is given the CPU or an operand object, but for
    ``PURE_OPERAND_ATTRIBUTES``)."""
    return any(bookkeeping_read(statements))


def bookkeeping_read(statements: List[ast.stmt]) -> Tuple[bool, bool]:
    """(whether the code may read ``cpu.eip``, whether it may read ``cpu.insn``): a call
    given the CPU or an operand object (but for ``PURE_OPERAND_ATTRIBUTES``) may read
    either."""
    pure = _pure_operand_uses(statements)
    eip = insn = False
    for node in nodes_of(statements, _READING):
        if (isinstance(node, ast.Attribute) and node.attr in ("eip", "insn")
                and isinstance(node.value, ast.Name) and node.value.id == "cpu"
                and isinstance(node.ctx, ast.Load)):
            if node.attr == "eip":
                eip = True
            else:
                insn = True
        elif ((isinstance(node, ast.Call) and _opaque(node))
              or (isinstance(node, ast.Name) and _OPERAND_NAME.match(node.id)
                  and id(node) not in pure)):
            return True, True
    return eip, insn


def stores_eip_last(statements: List[ast.stmt]) -> bool:
    """Whether the code ends by storing ``cpu.eip`` whatever happened before (its last
    top-level statement but ``pass`` is ``cpu.eip = ...``): a JMP, CALL or RET (RET's
    ``if release is not None`` folds to a ``pass`` after it)."""
    kept = [statement for statement in statements if not isinstance(statement, ast.Pass)]
    last = kept[-1] if kept else None
    return (isinstance(last, ast.Assign) and len(last.targets) == 1
            and isinstance(last.targets[0], ast.Attribute) and last.targets[0].attr == "eip"
            and isinstance(last.targets[0].value, ast.Name)
            and last.targets[0].value.id == "cpu")
