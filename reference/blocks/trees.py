"""``ast.walk``, ``ast.NodeTransformer`` and ``ast.unparse`` as the block compiler uses
them, made cheaper.

Why: making a block is mostly walking and rewriting small ASTs, and the standard
library's versions are written for generality: ``ast.walk`` goes through two generator
layers per node (``iter_child_nodes`` over ``iter_fields``), and ``NodeTransformer``
builds a method name and looks it up for every node it visits. On the tiny boot with an
empty block cache (CPython), making blocks took ~22 s of ~57 s, and about half of that
was spent inside those two (cProfile of the making alone: ``walk`` and
``iter_child_nodes`` 12 s, ``generic_visit`` and ``visit`` 17 s, of 48 s).

They behave exactly as the standard library's: ``walk`` yields the same nodes in the
same (breadth-first) order, ``Transformer`` calls the same ``visit_<Class>`` methods
and applies their results as ``NodeTransformer`` does (None removes the node, a list
replaces it by several in a list field), ``unparse`` gives the same text. ``tests/test_trees.py``
checks them against the standard library on the reference's own source.
"""

from __future__ import annotations

import ast
from contextlib import nullcontext
from typing import Any, Callable, Dict, FrozenSet, Iterator, List

AST = ast.AST


def walk(node: AST) -> Iterator[AST]:
    """Every node of the tree under ``node`` (itself included), in ``ast.walk``'s order."""
    todo: List[AST] = [node]
    append = todo.append
    index = 0
    while index < len(todo):
        node = todo[index]
        index += 1
        for name in node._fields:
            value = getattr(node, name, None)
            if value.__class__ is list:
                for item in value:
                    if isinstance(item, AST):
                        append(item)
            elif isinstance(value, AST):
                append(value)
        yield node


def nodes_of(tree: Any, classes: Any) -> List[Any]:
    """The nodes of the given class(es) under ``tree`` (a node, itself included, or a
    list of them), each before the nodes below it but otherwise in no set order: what
    ``[n for n in walk(tree) if isinstance(n, classes)]`` holds, without resuming a
    generator and testing in the caller for every node, and without going to the
    bare leaves (``_BARE``: constants, contexts, operators) unless they are asked for.
    Why: counting names, looking for calls and flag reads walked every tree several
    times (cProfile of remaking a cold boot's blocks: ``walk`` 12 s of 58)."""
    bare = _unwanted.get(classes)
    if bare is None:
        bare = _unwanted[classes] = frozenset(
            leaf for leaf in _BARE if not issubclass(leaf, classes))
    found: List[Any] = []
    todo: List[Any] = list(tree) if tree.__class__ is list else [tree]
    pop, push = todo.pop, todo.append
    while todo:
        node = pop()
        if isinstance(node, classes):
            found.append(node)
        for name in node._fields:
            value = getattr(node, name, None)
            if value.__class__ is list:
                for item in value:
                    if item.__class__ not in bare and isinstance(item, AST):
                        push(item)
            elif value.__class__ not in bare and isinstance(value, AST):
                push(value)
    return found


_BARE = frozenset({ast.Constant}.union(*(
    _kind.__subclasses__() for _kind in (ast.expr_context, ast.boolop, ast.operator,
                                         ast.unaryop, ast.cmpop))))
"""Node classes with no node below them (a ``Constant``'s value is never one)."""
_unwanted: Dict[Any, FrozenSet[type]] = {}
"""``nodes_of``'s classes -> the bare leaves it need not go to."""


_DEPRECATED_CONSTANTS = ("visit_Num", "visit_Str", "visit_Bytes", "visit_NameConstant",
                         "visit_Ellipsis")


def _method(cls: type, node_class: type) -> Callable[[Any, AST], Any]:
    """What ``NodeVisitor.visit`` would call for a ``node_class`` node: ``visit_<Class>``,
    else ``generic_visit``. (The standard library's own ``visit_Constant`` only looks
    for the deprecated per-constant methods, then does ``generic_visit``.)"""
    method = getattr(cls, "visit_" + node_class.__name__, cls.generic_visit)
    if (method is getattr(ast.NodeVisitor, "visit_Constant", None)
            and not any(hasattr(cls, name) for name in _DEPRECATED_CONSTANTS)):
        method = cls.generic_visit
    return method  # type: ignore[no-any-return]


_LEAVES = (ast.Constant, ast.Name, ast.expr_context, ast.boolop, ast.operator, ast.unaryop,
           ast.cmpop)
"""Node classes with no node below them but field-less ones (a ``Name``'s ``Load``): half
the nodes of the compiler's trees."""


def _passed_over(cls: type, node_class: type) -> bool:
    """Whether a ``cls`` transformer may leave a ``node_class`` child as it is, unvisited:
    it is a leaf (``_LEAVES``) that ``generic_visit`` would only give back, since ``cls``
    has no method of its own for it (nor, for a ``Name``, for its context)."""
    if not issubclass(node_class, _LEAVES) or _method(cls, node_class) is not cls.generic_visit:
        return False
    return node_class is not ast.Name or all(
        _passed_over(cls, context) for context in (ast.Load, ast.Store, ast.Del))


class Transformer(ast.NodeTransformer):
    """``ast.NodeTransformer`` with its dispatch looked up once per node class (per
    transformer class) instead of once per node, and the leaves it has nothing to do
    with (``_passed_over``) not visited at all: the same result, one Python call fewer
    for each of them."""

    _dispatch: Dict[type, Callable[[Any, AST], Any]] = {}  # each subclass gets its own
    _leaves: Dict[type, bool] = {}  # node class -> _passed_over (each subclass its own)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._dispatch = {}
        cls._leaves = {}

    def visit(self, node: AST) -> Any:
        method = self._dispatch.get(node.__class__)
        if method is None:
            method = self._dispatch[node.__class__] = _method(type(self), node.__class__)
        return method(self, node)

    def _skips(self, node_class: type) -> bool:
        skip = self._leaves.get(node_class)
        if skip is None:
            skip = self._leaves[node_class] = _passed_over(type(self), node_class)
        return skip

    def generic_visit(self, node: AST) -> AST:
        self._visit_fields(node.__dict__, node._fields, copying=False)
        return node

    def _visit_fields(self, fields: Dict[str, Any], names: Any, copying: bool) -> None:
        """Visit the nodes in ``fields`` (a node's ``__dict__``, or its copy's) under
        ``names`` and put what the visits give in their place: a list field's items in
        the same list (as ``NodeTransformer`` does), or with ``copying`` in a new one,
        the leaves passed over then copied."""
        leaves = self._leaves
        for name in names:
            old = fields.get(name)
            if old.__class__ is list:
                new: List[Any] = []
                for value in old:
                    if isinstance(value, AST):
                        skip = leaves.get(value.__class__)
                        if skip or (skip is None and self._skips(value.__class__)):
                            new.append(_leaf_copy(value) if copying else value)
                            continue
                        value = self.visit(value)
                        if value is None:
                            continue
                        if not isinstance(value, AST):
                            new.extend(value)
                            continue
                    new.append(value)
                if copying:
                    fields[name] = new
                else:
                    old[:] = new
            elif isinstance(old, AST):
                skip = leaves.get(old.__class__)
                if skip or (skip is None and self._skips(old.__class__)):
                    if copying:
                        fields[name] = _leaf_copy(old)
                    continue
                replaced = self.visit(old)
                if replaced is None:
                    del fields[name]
                else:
                    fields[name] = replaced


class Copier(Transformer):
    """A ``Transformer`` that leaves the tree it is given as it was and returns the
    rewritten copy: ``generic_visit`` copies the node (its ``__dict__``, as
    ``optimize.clone`` does) with its visited children, and the leaves it passes over
    are copied too (field-less ones shared). Its own ``visit_<Class>`` methods get the
    original node and must not change it. Why: inlining copied a semantics function's
    whole body, then rewrote the copy: one walk instead of two."""

    def generic_visit(self, node: AST) -> AST:
        cls = node.__class__
        if not cls._fields and not cls._attributes:
            return node
        new = cls.__new__(cls)
        copied = new.__dict__
        copied.update(node.__dict__)
        self._visit_fields(copied, cls._fields, copying=True)
        return new


def _leaf_copy(node: AST) -> AST:
    """A copy of a leaf (``_LEAVES``: its only node below is a shared context)."""
    cls = node.__class__
    if not cls._fields and not cls._attributes:
        return node
    new = cls.__new__(cls)
    new.__dict__.update(node.__dict__)
    return new


class _Written:
    """What ``ast._Unparser.delimit`` does (``start``, the body, ``end``) as a plain
    context manager: the standard library's is a generator (``contextlib``), made for
    every parenthesised expression, call and subscript."""

    __slots__ = ("unparser", "end")

    def __init__(self, unparser: Any, start: str, end: str) -> None:
        unparser.write(start)
        self.unparser, self.end = unparser, end

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exception: Any) -> None:
        self.unparser.write(self.end)


_NOTHING = nullcontext()
_Unparser: Any = getattr(ast, "_Unparser", None)


if _Unparser is not None:
    class _Unparsing(_Unparser):  # type: ignore[misc, valid-type]
        """``ast.unparse``'s own writer (every ``visit_<Class>`` method is the standard
        library's) with its dispatch looked up once per node class and its delimiters
        written without a generator: a snippet's text in half the time (0.19 -> 0.10 ms
        on a cold boot's texts; ``ast.unparse`` was a tenth of the time spent making
        them)."""

        _dispatch: Dict[type, Callable[[Any, AST], Any]] = {}

        def traverse(self, node: Any) -> None:
            if node.__class__ is list:
                for item in node:
                    self.traverse(item)
                return
            method = self._dispatch.get(node.__class__)
            if method is None:
                method = self._dispatch[node.__class__] = getattr(
                    type(self), "visit_" + node.__class__.__name__, type(self).generic_visit)
            method(self, node)

        def delimit(self, start: str, end: str) -> Any:
            return _Written(self, start, end)

        def delimit_if(self, start: str, end: str, condition: bool) -> Any:
            return _Written(self, start, end) if condition else _NOTHING

        def require_parens(self, precedence: Any, node: AST) -> Any:
            return _Written(self, "(", ")") if self.get_precedence(node) > precedence \
                else _NOTHING


def unparse(tree: AST) -> str:
    """``ast.unparse(tree)`` (itself, where the standard library has no ``_Unparser``)."""
    if _Unparser is None:  # pragma: no cover - every CPython and PyPy from 3.9 has it
        return ast.unparse(tree)
    return _Unparsing().visit(tree)  # type: ignore[no-any-return]
