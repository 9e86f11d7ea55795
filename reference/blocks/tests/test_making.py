"""The shortcuts that make blocks cheaper to make (issue 14) give what the longer way
gave: placing a text, an instruction's locals."""

import ast

import pytest

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


def test_what_fold_does_not_evaluate_it_could_not_have_evaluated() -> None:
    from reference.blocks.optimize import _evaluate, _NotConstant, _of_constants, fold

    tree = ast.parse("a = (1 + 2, x + 1, 1 < 0 < x, 1 < 2 < x, not 1, -x, 1 and 2, 1 and x,"
                     " 2 ** 3, x < 1, 1 << 5000, 3 // 0)")
    skipped = 0
    for node in walk(tree):
        if isinstance(node, (ast.BinOp, ast.UnaryOp, ast.Compare, ast.BoolOp)) and \
                not _of_constants(node):
            skipped += 1
            with pytest.raises(_NotConstant):
                _evaluate(node)
    assert skipped == 4
    folded = ast.unparse(ast.Module(fold(tree.body), []))
    assert folded == ("a = (3, x + 1, False, 1 < 2 < x, False, -x, 2, 1 and x, 2 ** 3, x < 1,"
                      " 1 << 5000, 3 // 0)")


def _decoded(code: str) -> object:
    from reference.isa.decoder import decode_bytes
    from reference.step import _form_facts

    insn = decode_bytes(bytes.fromhex(code))
    insn.fn, insn.stepped, insn.conditional_undefined, insn.fixed_undefined = _form_facts(
        insn.form)
    return insn


def test_a_snippets_globals_follow_the_names_its_texts_add() -> None:
    piece = snippets.snippet(_decoded("0118"), 32)  # add [eax], ebx
    snippets.text(piece, frozenset())  # its flag updates written out: the parity table
    first: dict = {}
    snippets.globals_of(piece, first)
    assert first and not any(snippets._OWN_OBJECT.fullmatch(name) for name in first)
    assert all(first[name] is piece.namespace[name] for name in first)
    piece.namespace["g_test_added"] = added = object()  # as making a text may
    second: dict = {}
    snippets.globals_of(piece, second)
    assert second == {**first, "g_test_added": added}
    del piece.namespace["g_test_added"]


def _updates(flow: tuple) -> list:
    """The positions of the flag updates in a snippet's ``Flow``."""
    found = []
    for entry in flow:
        if entry[0] == snippets._UPDATE:
            found.append(entry[1])
        elif entry[0] == snippets._IF:
            found += _updates(entry[2]) + _updates(entry[3])
    return found


def _counted(body: list) -> tuple:
    """(statements, flag updates) in ``body``, inside ``if``s too."""
    from reference.blocks.optimize import flag_update

    found = _flat(body)
    return len(found), sum(flag_update(s) is not None for s in found)


def _flat(body: list) -> list:
    return [n for s in body for n in [s] + (_flat(s.body) + _flat(s.orelse)
                                            if isinstance(s, ast.If) else [])]


@pytest.mark.parametrize("code", ["d3e0", "11d8", "0fa5d0"])  # shl eax, cl; adc; shld
def test_a_dead_update_is_found_at_its_position_in_every_copy(code: str) -> None:
    piece = snippets.snippet(_decoded(code), 32)
    positions = _updates(piece.flow)
    whole = _counted(snippets.statements_of(piece))
    assert positions and whole[1] == len(positions)
    if code == "d3e0":  # its updates sit inside ``if count:``
        assert any(entry[0] == snippets._IF and _updates(entry[2]) for entry in piece.flow)
    for position in positions:
        kept = snippets._without(snippets.statements_of(piece), frozenset({position}), [0])
        assert _counted(kept) == (whole[0] - 1, whole[1] - 1)
    assert snippets.statements_of(piece) is not snippets.statements_of(piece)


NESTED = """
cpu.flags.cf = a
if x:
    cpu.flags.zf = b
    if y:
        cpu.flags.sf = c
    else:
        cpu.flags.of = d
    cpu.flags.pf = e
else:
    cpu.flags.af = f
cpu.flags.cf = g
"""


def _removed(body: list, position: int) -> list:
    """``body`` without its statement number ``position`` in pre-order (an ``if``, then
    its body, then its ``else``), an emptied ``if`` body holding ``pass``."""
    target = _flat(body)[position]

    def drop(statements: list) -> list:
        kept = []
        for statement in statements:
            if statement is target:
                continue
            if isinstance(statement, ast.If):
                statement.body = drop(statement.body) or [ast.Pass()]
                statement.orelse = drop(statement.orelse)
            kept.append(statement)
        return kept

    return drop(body)


def test_updates_are_numbered_alike_for_the_dead_flag_pass_and_for_the_text() -> None:
    from reference.flags import CF, STATUS

    piece = snippets.Snippet(ast.parse(NESTED).body, {}, 0, False, False, "")
    positions = _updates(piece.flow)
    assert positions == [0, 2, 4, 5, 6, 7, 8]
    for position in positions:
        ours = snippets._without(snippets.statements_of(piece), frozenset({position}), [0])
        assert ast.dump(ast.Module(ours, [])) == ast.dump(
            ast.Module(_removed(ast.parse(NESTED).body, position), []))
    assert snippets.dead_updates(piece, STATUS) == (frozenset({0}), STATUS & ~CF)


def test_a_block_ends_with_its_first_page() -> None:
    """Code that runs off the end of its page goes on at the next linear page, which
    paging may map to any frame (here: not the next one). A block holds only its first
    page's instructions (the CPU's code cache keys them by physical address, and a
    write to another page would not reach the block); it once went on at the physical
    address after the page, caching the next linear page's instructions under it."""
    from reference.blocks import compiler
    from reference.blocks.tests.machines import CODE, DATA, FRAMES, machine

    cpu = machine(b"", 0, "paged")
    cpu.mem.write_bytes(FRAMES[CODE] + 0xFFC, bytes.fromhex("90909090"))  # 4 NOPs
    cpu.mem.write_bytes(FRAMES[DATA], bytes.fromhex("90909090f4"))  # the next linear page
    assert FRAMES[DATA] != FRAMES[CODE] + 0x1000
    insns = compiler.gather(cpu, CODE + 0xFFC, FRAMES[CODE] + 0xFFC)
    assert [insn.raw for insn in insns] == [b"\x90"] * 4
    assert FRAMES[CODE] + 0x1000 not in cpu.icache
