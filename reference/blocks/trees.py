"""``ast.walk`` and ``ast.NodeTransformer`` as the block compiler uses them, made cheaper.

Why: making a block is mostly walking and rewriting small ASTs, and the standard
library's versions are written for generality: ``ast.walk`` goes through two generator
layers per node (``iter_child_nodes`` over ``iter_fields``), and ``NodeTransformer``
builds a method name and looks it up for every node it visits. On the tiny boot with an
empty block cache (CPython), making blocks took ~22 s of ~57 s, and about half of that
was spent inside those two (cProfile of the making alone: ``walk`` and
``iter_child_nodes`` 12 s, ``generic_visit`` and ``visit`` 17 s, of 48 s).

Both behave exactly as the standard library's: ``walk`` yields the same nodes in the
same (breadth-first) order, ``Transformer`` calls the same ``visit_<Class>`` methods
and applies their results as ``NodeTransformer`` does (None removes the node, a list
replaces it by several in a list field). ``tests/test_trees.py`` checks both against
the standard library on the reference's own source.
"""

from __future__ import annotations

import ast
from typing import Any, Callable, Dict, Iterator, List

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


class Transformer(ast.NodeTransformer):
    """``ast.NodeTransformer`` with its dispatch looked up once per node class (per
    transformer class) instead of once per node."""

    _dispatch: Dict[type, Callable[[Any, AST], Any]] = {}  # each subclass gets its own

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._dispatch = {}

    def visit(self, node: AST) -> Any:
        method = self._dispatch.get(node.__class__)
        if method is None:
            method = self._dispatch[node.__class__] = _method(type(self), node.__class__)
        return method(self, node)

    def generic_visit(self, node: AST) -> AST:
        for name in node._fields:
            old = getattr(node, name, None)
            if old.__class__ is list:
                new: List[Any] = []
                for value in old:
                    if isinstance(value, AST):
                        value = self.visit(value)
                        if value is None:
                            continue
                        if not isinstance(value, AST):
                            new.extend(value)
                            continue
                    new.append(value)
                old[:] = new
            elif isinstance(old, AST):
                replaced = self.visit(old)
                if replaced is None:
                    delattr(node, name)
                else:
                    setattr(node, name, replaced)
        return node
