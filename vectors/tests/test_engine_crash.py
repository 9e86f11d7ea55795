"""``vectors run --engine unicorn`` on a vector Unicorn aborts on (issue 16, item 1): the
vector fails with kind engine-crashed, the others still run, exit 1. Before, the whole
command died with status 134 and printed nothing."""

from __future__ import annotations

import json
import subprocess
import sys

from differential.runners.reference_runner import ReferenceRunner
from differential.runners.unicorn_runner import UnicornRunner
from differential.tests.crash_cases import LOCK_BTC, crashing, ordinary
from ground.cache import REPO_ROOT
from vectors.files import write_vectors
from vectors.format import make_header


def test_crashing_vector_fails_alone_and_the_run_goes_on(tmp_path):
    good = [ordinary("prot32", seed) for seed in (1, 2)]
    bad = crashing("prot32", LOCK_BTC)
    pairs = [(good[0], UnicornRunner().run(good[0])), (bad, ReferenceRunner().run(bad)),
             (good[1], UnicornRunner().run(good[1]))]
    path = tmp_path / "lock.jsonl.gz"
    write_vectors(path, make_header(form="mixed", mode="prot32"), pairs)
    run = subprocess.run([sys.executable, "-m", "x86lab.cli", "vectors", "run", "--engine",
                          "unicorn", str(path), "--json"], cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 1, run.stderr
    report = json.loads(run.stdout)
    assert (report["passed"], report["failed"]) == (2, 1)
    failure = report["files"][0]["failures"][0]
    assert failure["name"] == bad.name
    assert failure["problems"][0].startswith("engine-crashed: unicorn crashed (SIGABRT)")
    assert "Traceback" not in run.stderr
