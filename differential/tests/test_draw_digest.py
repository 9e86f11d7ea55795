"""A seed draws the same cases in every process: workers on other machines draw a batch's
cases from (plan, batch, index) alone, so nothing in drawing may depend on the process
(string hashing, set order, ids). Two interpreters with different hash seeds must give the
same ``draw_digest``, and it must see a change of any drawn byte."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from differential import draw_digest as digest_module
from differential.draw_digest import draw_digest

ROOT = Path(__file__).resolve().parents[2]


def test_two_processes_with_other_hash_seeds_draw_the_same_cases() -> None:
    digests = set()
    for hash_seed in ("1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        digests.add(subprocess.run(
            [sys.executable, "-m", "differential.draw_digest", "--seeds", "4"], cwd=ROOT,
            env=env, capture_output=True, text=True, check=True).stdout.strip())
    assert len(digests) == 1 and len(digests.pop()) == 64


def test_the_digest_sees_the_cases(monkeypatch: pytest.MonkeyPatch) -> None:
    before = draw_digest(seeds=2)
    assert draw_digest(seeds=2) == before
    assert draw_digest(seeds=3) != before
    monkeypatch.setattr(digest_module, "ROWS", digest_module.ROWS[:-1])
    assert draw_digest(seeds=2) != before
