"""Compiling into the cache: a build appears whole or not at all, and is made once."""

from __future__ import annotations

from pathlib import Path

import pytest

from ground.cache import BuildFailed, compile_into


def shell(script: str):
    """A stand-in compiler: ``sh -c SCRIPT`` with the output path as ``$0``."""
    return lambda out: ["sh", "-c", script, out]


def test_a_build_is_made_once_and_then_found(tmp_path: Path):
    target = tmp_path / "bin" / "tool"  # a folder the cache does not have yet
    assert compile_into(target, shell('echo built > "$0"')) == target
    assert target.read_text() == "built\n"
    # A second call must not run the command: this one would fail.
    assert compile_into(target, shell("exit 1")) == target
    assert target.read_text() == "built\n"


def test_a_failed_build_leaves_nothing_and_says_what_the_compiler_said(tmp_path: Path):
    target = tmp_path / "tool"
    # The compiler wrote part of its output and then failed.
    with pytest.raises(BuildFailed) as raised:
        compile_into(target, shell('echo half > "$0"; echo "tool.c:3: error: no" >&2; exit 1'))
    assert raised.value.started
    assert "tool.c:3: error: no" in raised.value.output
    assert "sh" in raised.value.command
    assert list(tmp_path.iterdir()) == []  # no target, no scratch folder


def test_a_status_of_zero_without_the_file_is_a_failure(tmp_path: Path):
    with pytest.raises(BuildFailed, match="status 0"):
        compile_into(tmp_path / "tool", shell("true"))
    assert list(tmp_path.iterdir()) == []


def test_a_missing_compiler_is_told_apart(tmp_path: Path):
    with pytest.raises(BuildFailed) as raised:
        compile_into(tmp_path / "tool", lambda out: ["/nonexistent/cc", "-o", out])
    assert not raised.value.started
    assert "No such file" in raised.value.output


def test_a_compiler_that_hangs_is_stopped(tmp_path: Path):
    with pytest.raises(BuildFailed, match="no result after"):
        compile_into(tmp_path / "tool", shell("sleep 30"), timeout=0.5)
    assert list(tmp_path.iterdir()) == []
