"""``optimize.reuse``: a value computed again, or a copy of a name, is read from the
local that holds it already; only where that is the same value on every path.
Standard library only, so it runs under PyPy too."""

from __future__ import annotations

import ast
import textwrap

import pytest

from reference.blocks.optimize import reuse


def reused(source: str) -> str:
    return ast.unparse(ast.Module(reuse(ast.parse(textwrap.dedent(source)).body), []))


def same(source: str) -> str:
    return ast.unparse(ast.parse(textwrap.dedent(source)))


def test_a_value_computed_again_is_read_from_the_first_local() -> None:
    assert reused("""
        total = a + b
        result = total & 255
        again = total & 255
        flags = parity[again] | result >> 7
    """) == same("""
        total = a + b
        result = total & 255
        flags = parity[result] | result >> 7
    """)


def test_a_copy_is_read_as_what_it_copies() -> None:
    assert reused("""
        value = regs[0]
        copy = value
        regs[1] = copy + eip
        alias = eip
        regs[2] = alias
    """) == same("""
        value = regs[0]
        regs[1] = value + eip
        regs[2] = eip
    """)


def test_an_earlier_value_is_reused_inside_an_if_but_not_after_one() -> None:
    assert reused("""
        early = x & 1
        if c:
            inner = x & 1
            late = x & 3
            y = inner + late
        after = x & 3
        z = after + 1
    """) == same("""
        early = x & 1
        if c:
            late = x & 3
            y = early + late
        after = x & 3
        z = after + 1
    """)


@pytest.mark.parametrize("source", [
    # a name assigned twice has two values
    """
    x = a
    t = x & 1
    x = b
    u = x & 1
    """,
    """
    t = x & 1
    t = t | 2
    u = x & 1
    """,
    # a name read before its assignment holds what it held before
    """
    y = t
    t = 5
    """,
    # calls, subscripts and attributes may give another value each time
    """
    t = f(x)
    u = f(x)
    """,
    """
    t = regs[0] & 1
    regs[0] = 7
    u = regs[0] & 1
    """,
    """
    t = cpu.eip + 1
    u = cpu.eip + 1
    """,
    # a name may hold a container that changes in between
    """
    t = page in code
    forget(code)
    u = page in code
    """,
    # augmented assignment: two values under one name
    """
    bits = table[x]
    copy = bits
    bits |= 64
    """,
])
def test_nothing_is_reused_where_the_value_may_differ(source: str) -> None:
    assert reused(source) == same(source)
