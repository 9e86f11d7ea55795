"""A small campaign folder with one file of each kind, for tests that damage them."""

from __future__ import annotations

import json
from pathlib import Path

from differential.campaign import Plan, prepare
from differential.suite import keep
from differential.tests.broken_runner import make_checkers

PLAN = Plan(seed=3, jobs=1, forms="ADD_*")
RESUME = ["--resume", "--minutes", "0.001", "--jobs", "1", "--seed", "3", "--forms", "ADD_*"]


def campaign_with_files(directory: Path) -> None:
    """A campaign folder holding a plan, a worker state and one saved divergence."""
    from differential.draw import RandomDraw
    from differential.generator import form_case
    from reference import BY_NAME

    prepare(directory, PLAN, resume=False)
    (directory / "workers" / "0.json").write_text(json.dumps(
        {"worker": 0, "next_batch": 1, "cases": 200, "busy": 1.5,
         "forms": {"ADD_Ev_Gv": {"agree": 200}}, "known": {}}) + "\n")
    checker = make_checkers()[0]
    verdict = checker.check(form_case(BY_NAME["ADD_Ev_Gv"], "prot32", RandomDraw(4)))
    assert keep(checker, verdict, directory / "divergences") is not None
