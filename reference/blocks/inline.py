"""Inline one semantics function into a block: its body, rewritten for one decoded
instruction.

The body is the ``@implements`` function's own AST (its source is the single source of
truth; nothing here knows what any instruction does). For one decoded instruction:
- ``op.read()``, ``op.write(v)``, ``op.offset()`` become the operand's own source
  (``Operand.source_read`` and friends: ``regs[3]``, ``cpu.read(3, (regs[6] + 8) &
  4294967295, 4)``; or with ``n3_1`` for the 8, made once per shape), and
  ``op.size``/``op.mask``/``op.seg`` constants; a written value is bound to a name
  first, so it is evaluated before the address, as ``write`` does;
- ``cpu.insn.opsize`` and the instruction's other plain fields become constants;
- ``if`` tests that fold to a constant keep only the branch taken;
- local names get a per-instruction suffix, global names a per-module prefix (their
  values go into the block's namespace; numbers become constants), the docstring goes.
A guard ``if c: return`` at the top level becomes ``if not c:`` around the rest. What
cannot be inlined this way (any other ``return``, a starred parameter, a nested function,
a class or a ``try``) is called instead: ``f3(cpu, op3_0, op3_1)``. Either way the
compiled code does exactly what ``insn.execute()`` does.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from typing import Any, Callable, Dict, FrozenSet, List, Optional

from reference.blocks.optimize import clone, global_name, guards_to_ifs
from reference.blocks.trees import Copier, walk

INSN_FIELDS = ("opsize", "adsize", "seg", "rep", "lock", "cond", "reg", "length")
"""``cpu.insn`` fields that are fixed for a decoded instruction (folded to constants)."""
_UNSUPPORTED = (ast.Yield, ast.YieldFrom, ast.FunctionDef, ast.AsyncFunctionDef,
                ast.Lambda, ast.ClassDef, ast.Global, ast.Nonlocal, ast.Await, ast.Try)
"""What a body may not hold to be inlined (``try``: its handler's name is no ``Name``
the renaming sees; ENTER's semantics have one, found by the reference-blocks vectors)."""
_parsed: Dict[Callable[..., Any], Optional[ast.FunctionDef]] = {}


def function_ast(fn: Callable[..., Any]) -> Optional[ast.FunctionDef]:
    """The parsed definition of ``fn``, or None if it cannot be inlined."""
    if fn not in _parsed:
        tree: Optional[ast.FunctionDef] = None
        try:
            module = ast.parse(textwrap.dedent(inspect.getsource(fn)))
            node = module.body[0]
            if (isinstance(node, ast.FunctionDef) and not node.args.vararg
                    and not node.args.kwarg and not node.args.kwonlyargs
                    and not any(isinstance(n, _UNSUPPORTED) for body in node.body
                                for n in walk(body))):
                body = guards_to_ifs(node.body)
                if body is not None and not (body and isinstance(body[-1], ast.Return)):
                    node.body = body
                    tree = node
        except (OSError, TypeError, SyntaxError):
            tree = None
        _parsed[fn] = tree
    return _parsed[fn]


def local_names(fn: Callable[..., Any]) -> FrozenSet[str]:
    """The names ``fn``'s body assigns (its locals), found once per semantics function:
    walking the whole definition for every instruction inlined was a tenth of the
    time spent making a snippet."""
    found = _locals.get(fn)
    if found is None:
        found = _locals[fn] = frozenset(
            n.id for n in walk(function_ast(fn))  # type: ignore[arg-type]
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store))
    return found


_locals: Dict[Callable[..., Any], FrozenSet[str]] = {}


class Inliner(Copier):
    """Rewrites a semantics body for instruction number ``k`` into a copy (the parsed
    definition stays as it is)."""

    def __init__(self, k: int, fn: Callable[..., Any], params: List[str], operands: list,
                 insn: Any, namespace: Dict[str, Any]) -> None:
        self.k = k
        self.fn = fn
        self.operands = dict(zip(params[1:], operands))
        self.names = {name: f"op{k}_{i}" for i, name in enumerate(params[1:])}
        self.cpu_name = params[0]
        self.insn = insn
        self.namespace = namespace
        self.locals = local_names(fn)
        self.temps = 0
        self.absent: Dict[str, ast.expr] = {}  # optional operands the form lacks: defaults
        self.constants: Dict[str, str] = {}  # operand -> the name its constant is written as

    # -- names ----------------------------------------------------------------------
    def visit_Name(self, node: ast.Name) -> ast.AST:
        name = node.id
        if name == self.cpu_name:
            return ast.copy_location(ast.Name("cpu", node.ctx), node)
        if name in self.absent:
            return ast.copy_location(clone(self.absent[name]), node)
        if name in self.names:  # an operand used as an object: the bound one
            self.namespace[self.names[name]] = self.operands[name]
            return ast.copy_location(ast.Name(self.names[name], node.ctx), node)
        if name in self.locals:
            return ast.copy_location(ast.Name(f"{name}_{self.k}", node.ctx), node)
        found = global_name(self.fn, node, self.namespace)
        return self.generic_visit(node) if found is node else found  # a builtin's name

    # -- operand and instruction fields -----------------------------------------------
    def _operand(self, node: ast.AST) -> Optional[Any]:
        if isinstance(node, ast.Name) and node.id in self.operands:
            return self.operands[node.id]
        return None

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        operand = self._operand(node.value)
        if operand is not None and node.attr in ("size", "mask") and isinstance(node.ctx,
                                                                               ast.Load):
            return ast.copy_location(ast.Constant(getattr(operand, node.attr)), node)
        if (operand is not None and node.attr == "seg" and operand.source_offset()
                is not None):
            return ast.copy_location(ast.Constant(operand.seg), node)
        if (node.attr in INSN_FIELDS and isinstance(node.value, ast.Attribute)
                and node.value.attr == "insn" and isinstance(node.value.value, ast.Name)
                and node.value.value.id == self.cpu_name):
            value = getattr(self.insn, node.attr)
            if value is None or isinstance(value, (int, str)):
                return ast.copy_location(ast.Constant(value), node)
        return self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> ast.AST:
        func = node.func
        if isinstance(func, ast.Attribute):
            operand = self._operand(func.value)
            if operand is not None:
                source = None
                constant = self.constants.get(func.value.id)  # type: ignore[attr-defined]
                if func.attr == "read" and not node.args:
                    source = operand.source_read(constant)
                elif func.attr == "offset" and not node.args:
                    source = operand.source_offset(constant)
                if source is not None:
                    return ast.copy_location(_expression(source), node)
        return self.generic_visit(node)

    def visit_Expr(self, node: ast.Expr) -> Any:
        """``op.write(value)`` as a statement: bind the value, then store it."""
        call = node.value
        if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                and call.func.attr == "write" and len(call.args) == 1):
            operand = self._operand(call.func.value)
            if operand is not None and operand.source_write("_") is not None:
                self.temps += 1
                temp = f"w{self.k}_{self.temps}"
                value = self.visit(call.args[0])
                bind = ast.Assign([ast.Name(temp, ast.Store())], value)
                constant = self.constants.get(call.func.value.id)  # type: ignore[attr-defined]
                store = ast.parse(operand.source_write(temp, constant)).body[0]
                return [ast.copy_location(bind, node), ast.copy_location(store, node)]
        return self.generic_visit(node)

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        """``operand is None`` / ``is not None`` of a present operand: a constant."""
        if (self._operand(node.left) is not None and len(node.ops) == 1
                and isinstance(node.ops[0], (ast.Is, ast.IsNot))
                and isinstance(node.comparators[0], ast.Constant)
                and node.comparators[0].value is None):
            return ast.copy_location(ast.Constant(isinstance(node.ops[0], ast.IsNot)), node)
        return self.generic_visit(node)

    def visit_If(self, node: ast.If) -> Any:
        """Keep only the branch a constant test takes (``if dst.size == 8:``)."""
        node = self.generic_visit(node)  # type: ignore[assignment]
        try:
            verdict = ast.literal_eval(_fold(node.test))
        except (ValueError, TypeError, SyntaxError):
            return node
        chosen = node.body if verdict else node.orelse
        return chosen or [ast.copy_location(ast.Pass(), node)]


def _expression(source: str) -> ast.expr:
    return ast.parse(source, mode="eval").body


def _fold(test: ast.expr) -> ast.expr:
    """A comparison or boolean of constants as one constant (else unchanged)."""
    try:
        code = compile(ast.Expression(test), "<fold>", "eval")
    except (TypeError, ValueError):
        return test
    if any(isinstance(n, (ast.Name, ast.Call, ast.Attribute, ast.Subscript))
           for n in walk(test)):
        return test
    return ast.Constant(eval(code, {"__builtins__": {}}))  # noqa: S307 - constants only


def inline(k: int, fn: Callable[..., Any], insn: Any, namespace: Dict[str, Any],
           symbolic: bool = False) -> Optional[List[ast.stmt]]:
    """The statements that do what ``fn(cpu, *insn.operands)`` does, or None when
    ``fn`` cannot be inlined (the caller then emits a call). ``symbolic``: each
    operand's ``constant()`` (an immediate, a displacement) is written as the name
    ``n<k>_<j>`` (``j``: the operand's position), for code made once per shape of
    instruction (``reference.blocks.snippets``)."""
    tree = function_ast(fn)
    if tree is None:
        return None
    params = [a.arg for a in tree.args.args]
    missing = len(params) - 1 - len(insn.operands)  # optional operands this form lacks
    if missing < 0 or missing > len(tree.args.defaults):
        return None
    body = tree.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    inliner = Inliner(k, fn, params[:len(params) - missing], list(insn.operands), insn,
                      namespace)
    if symbolic:
        inliner.constants = {name: f"n{k}_{j}" for j, (name, operand)
                             in enumerate(zip(params[1:], insn.operands))
                             if operand.constant() is not None}
    absent = params[len(params) - missing:]
    inliner.absent = dict(zip(absent, tree.args.defaults[len(tree.args.defaults) - missing:]))
    out: List[ast.stmt] = []
    for statement in body:
        result = inliner.visit(statement)
        out.extend(result if isinstance(result, list) else [result])
    return out or [ast.Pass()]
