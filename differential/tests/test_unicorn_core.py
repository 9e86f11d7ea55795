"""The C core of the Unicorn runner is built on first use and kept in the cache; a
machine that cannot build it gets a clear error naming the command."""

from __future__ import annotations

import pytest

from differential.runners import unicorn_core


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("X86LAB_CACHE", str(tmp_path))
    return tmp_path


def test_the_build_is_kept_and_reused_without_a_compiler(empty_cache, monkeypatch):
    first = unicorn_core.built()
    assert first.is_file() and empty_cache in first.parents
    monkeypatch.setattr(unicorn_core, "COMPILER", "false")  # would fail if asked again
    assert unicorn_core.built() == first


@pytest.mark.parametrize("compiler, says", [("false", "failed"),
                                            ("/nonexistent/cc", "No such file")])
def test_a_compiler_that_fails_or_is_missing_is_a_clear_error(empty_cache, monkeypatch,
                                                               compiler, says):
    monkeypatch.setattr(unicorn_core, "COMPILER", compiler)
    with pytest.raises(unicorn_core.CoreBuildError, match=says) as raised:
        unicorn_core.built()
    assert "unicorn_core.c" in str(raised.value)
    assert not list(empty_cache.rglob("*.so"))  # nothing half-built is left as the build


def test_an_engine_frees_its_core_when_collected_and_others_go_on():
    import gc

    from differential.runners.unicorn_runner import UnicornRunner, _Engine
    from differential.tests.handmade import make_case

    kept = UnicornRunner()
    case = make_case(bytes.fromhex("01d8"), "prot32", eax=2, ebx=3)  # add eax, ebx
    assert kept.run(case).regs["eax"] == 5
    dropped = _Engine("prot32", memory_hooks=False)
    freed = dropped.freed
    assert freed.alive
    del dropped
    gc.collect()  # the engine and its ctypes callback form a cycle
    assert not freed.alive
    assert kept.run(case).regs["eax"] == 5
