"""``reference.blocks.trees`` against the standard library it stands in for, on real code:
the reference's own modules (the semantics and helpers the block compiler reads), and
the copy made by ``optimize.clone``."""

import ast
from pathlib import Path
from typing import Any, List

import pytest

from reference.blocks.optimize import clone
from reference.blocks.trees import Copier, Transformer, nodes_of, unparse, walk

REFERENCE = Path(__file__).resolve().parents[2]
SOURCES = sorted(str(p.relative_to(REFERENCE)) for p in
                 [*REFERENCE.glob("semantics/*.py"), REFERENCE / "flags.py",
                  REFERENCE / "cpu.py", REFERENCE / "blocks" / "optimize.py"])


def _tree(name: str) -> ast.Module:
    return ast.parse((REFERENCE / name).read_text())


@pytest.mark.parametrize("name", SOURCES)
def test_walk_yields_what_ast_walk_yields_in_its_order(name: str) -> None:
    tree = _tree(name)
    assert [id(node) for node in walk(tree)] == [id(node) for node in ast.walk(tree)]


def _renaming(base: type) -> Any:
    """The same small rewrite on either base: names renamed, ``pass`` removed, every
    ``x += y`` split into two statements, a ``Constant`` seen (the standard library's
    ``visit_Constant`` path)."""

    class Rewrite(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            self.constants = 0

        def visit_Name(self, node: ast.Name) -> ast.AST:
            return ast.Name("renamed_" + node.id, node.ctx)

        def visit_Pass(self, node: ast.Pass) -> None:
            return None

        def visit_AugAssign(self, node: ast.AugAssign) -> List[ast.stmt]:
            self.generic_visit(node)
            return [node, ast.Expr(ast.Constant(0))]

        def visit_Constant(self, node: ast.Constant) -> ast.AST:
            self.constants += 1
            return node

    return Rewrite()


@pytest.mark.parametrize("name", SOURCES)
def test_transformer_rewrites_as_node_transformer_does(name: str) -> None:
    ours, theirs = _renaming(Transformer), _renaming(ast.NodeTransformer)
    mine, standard = ours.visit(_tree(name)), theirs.visit(_tree(name))
    assert ast.dump(mine) == ast.dump(standard)
    assert ours.constants == theirs.constants > 0


def test_a_transformer_without_visit_constant_still_visits_inside_everything() -> None:
    class Count(Transformer):
        seen = 0

        def visit_Name(self, node: ast.Name) -> ast.AST:
            Count.seen += 1
            return node

    tree = _tree("flags.py")
    Count().visit(tree)
    assert Count.seen == sum(isinstance(node, ast.Name) for node in ast.walk(tree))


@pytest.mark.parametrize("name", SOURCES)
def test_clone_is_an_equal_tree_of_new_nodes(name: str) -> None:
    tree = _tree(name)
    copy = clone(tree.body)
    assert ast.dump(ast.Module(copy, []), include_attributes=True) == ast.dump(
        tree, include_attributes=True)
    originals = {id(node) for node in ast.walk(tree) if node._fields or node._attributes}
    assert not originals & {id(node) for node in walk(ast.Module(copy, []))}


def test_clone_renames_through_names() -> None:
    tree = ast.parse("x = y + f(z)")
    copy = clone(tree.body, lambda name: ast.Name(name.id.upper(), name.ctx))
    assert ast.unparse(ast.Module(copy, [])) == "X = Y + F(Z)"
    assert ast.unparse(tree) == "x = y + f(z)"


def test_none_for_a_single_node_removes_it_as_node_transformer_does() -> None:
    def drop_sums(base: type) -> ast.Module:
        class Drop(base):  # type: ignore[misc, valid-type]
            def visit_BinOp(self, node: ast.BinOp) -> None:
                return None

        return Drop().visit(ast.parse("def f():\n    return a + b"))

    ours, standard = drop_sums(Transformer), drop_sums(ast.NodeTransformer)
    assert ast.dump(ours) == ast.dump(standard) != ast.dump(ast.parse("def f():\n    return a + b"))
    returned = [n for n in ast.walk(ours) if isinstance(n, ast.Return)]
    assert [getattr(n, "value", "absent") for n in returned] == [None]


def _swapping(base: type, contexts: bool) -> Any:
    """A rewrite with no method for names or constants (the leaves ``Transformer`` passes
    over), and, with ``contexts``, one for a ``Name``'s ``Load``/``Store``."""

    class Swap(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            self.contexts = 0

        def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
            self.generic_visit(node)
            node.left, node.right = node.right, node.left
            return node

    class SwapCountingContexts(Swap):
        def visit_Load(self, node: ast.Load) -> ast.AST:
            self.contexts += 1
            return node

        visit_Store = visit_Load

    return SwapCountingContexts() if contexts else Swap()


@pytest.mark.parametrize("contexts", [False, True])
@pytest.mark.parametrize("name", SOURCES)
def test_leaves_passed_over_give_what_visiting_them_gives(name: str, contexts: bool) -> None:
    ours, theirs = _swapping(Transformer, contexts), _swapping(ast.NodeTransformer, contexts)
    mine, standard = ours.visit(_tree(name)), theirs.visit(_tree(name))
    assert ast.dump(mine) == ast.dump(standard)
    assert ours.contexts == theirs.contexts


@pytest.mark.parametrize("classes", [ast.Name, (ast.Call, ast.Attribute, ast.Name),
                                     (ast.Load, ast.Constant),
                                     (ast.Assign, ast.Add, ast.comprehension)])
@pytest.mark.parametrize("name", SOURCES)
def test_nodes_of_finds_what_walk_yields_of_those_classes(name: str, classes: Any) -> None:
    tree = _tree(name)
    wanted = [id(node) for node in walk(tree) if isinstance(node, classes)]
    found = nodes_of(tree, classes)
    assert sorted(id(node) for node in found) == sorted(wanted)
    assert sorted(id(node) for node in nodes_of(tree.body, classes)) == sorted(
        id(node) for node in found if node is not tree)
    position = {id(node): n for n, node in enumerate(found)}
    for node in found:  # each before the nodes below it
        assert all(position[id(below)] > position[id(node)] for below in walk(node)
                   if below is not node and id(below) in position)


@pytest.mark.parametrize("name", SOURCES + ["blocks/trees.py", "blocks/access.py"])
def test_unparse_writes_what_ast_unparse_writes(name: str) -> None:
    tree = _tree(name)
    assert unparse(tree) == ast.unparse(tree)
    expressions = [node for node in walk(tree) if isinstance(node, ast.expr)]
    assert [unparse(node) for node in expressions] == [ast.unparse(node) for node in expressions]


def _all_nodes(tree: ast.AST) -> set:
    return {id(node) for node in walk(tree) if node._fields or node._attributes}


@pytest.mark.parametrize("name", SOURCES)
def test_a_copier_rewrites_a_copy_as_a_transformer_rewrites_the_tree(name: str) -> None:
    class Rewrite(Copier):  # names, constants and sums: no method changes what it gets
        def visit_Name(self, node: ast.Name) -> ast.AST:
            return ast.Name("renamed_" + node.id, node.ctx)

        def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
            copy = self.generic_visit(node)
            copy.left, copy.right = copy.right, copy.left  # type: ignore[attr-defined]
            return copy

        def visit_Pass(self, node: ast.Pass) -> None:
            return None

        def visit_AugAssign(self, node: ast.AugAssign) -> List[ast.stmt]:
            return [self.generic_visit(node), ast.Expr(ast.Constant(0))]

    class InPlace(Transformer):
        visit_Name = Rewrite.visit_Name
        visit_BinOp = Rewrite.visit_BinOp
        visit_Pass = Rewrite.visit_Pass
        visit_AugAssign = Rewrite.visit_AugAssign

    tree, before = _tree(name), ast.dump(_tree(name), include_attributes=True)
    copy = Rewrite().visit(tree)
    assert ast.dump(tree, include_attributes=True) == before
    assert ast.dump(copy, include_attributes=True) == ast.dump(
        InPlace().visit(_tree(name)), include_attributes=True)
    assert not _all_nodes(tree) & _all_nodes(copy)
