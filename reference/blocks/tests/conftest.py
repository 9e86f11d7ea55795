"""The block tests' shared fixture (standard library and pytest only: runs under PyPy)."""

from __future__ import annotations

from typing import List

import pytest

from reference.blocks import compiler


@pytest.fixture
def outcomes(monkeypatch: pytest.MonkeyPatch) -> List[object]:
    """What each block call made by ``run()`` did: its count, or what it raised. Why: a
    block that raises is replayed through ``step()`` and ends in the interpreter's exact
    state, so a test that compares states alone cannot tell a block that ran from one
    that failed every time."""
    seen: List[object] = []
    make = compiler.compile_block

    def watched(*args: object, **kwargs: object) -> compiler.Block:
        block = make(*args, **kwargs)  # type: ignore[arg-type]
        inner = block.run

        def run(cpu: object, eip: int, budget: int) -> int:
            try:
                ran = inner(cpu, eip, budget)
            except BaseException as error:
                seen.append(error)
                raise
            seen.append(ran)
            return ran

        if block.length:
            block.run = run
        return block

    monkeypatch.setattr(compiler, "compile_block", watched)
    return seen
