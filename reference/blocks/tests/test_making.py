"""The shortcuts that make blocks cheaper to make (issue 14) give what the longer way
gave: placing a text, an instruction's locals."""

import ast

from reference.blocks import snippets
from reference.blocks.inline import function_ast, local_names
from reference.blocks.trees import walk
from reference.semantics import arith


def _substituted(code: str, k: int) -> str:
    """The plain substitution ``placed`` stands in for."""
    return snippets._OWN_OBJECT.sub(
        lambda m: f"{m.group(1)[0]}{k}" if m.group(1) else f"op{k}_{m.group(2)}", code)


def test_placing_a_text_renames_its_own_objects_and_nothing_else() -> None:
    code = ("w0_1 = f0(cpu, op0_0, op0_12)\nif i0.x {0}:\n    d = {'i0': op0_1}\n"
            "xop0_1 = i00 + f0x + {op0_2}")
    for k in (0, 1, 7, 63):
        assert snippets.placed(code, k) == _substituted(code, k)
    assert snippets.placed(code, 7) == ("w0_1 = f7(cpu, op7_0, op7_12)\nif i7.x {0}:\n"
                                       "    d = {'i7': op7_1}\nxop0_1 = i00 + f0x + {op7_2}")


def test_the_locals_of_a_semantics_function_are_the_names_it_assigns() -> None:
    fn = arith.add
    tree = function_ast(fn)
    assert tree is not None
    assigned = {n.id for n in walk(tree)
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    assert local_names(fn) == assigned != set()
    assert local_names(fn) is local_names(fn)
