"""The reference engine's determinism proof (issue 13): two boots of the tiny image on
the reference PC, each to the shell prompt, retire the same number of instructions at
every boot stage and print byte-identical consoles.

This holds only if the machine's sole inputs are the image and the command line: time
is the virtual clock's (instructions), and the console input is empty here. Any host time
leaking in (a device reading the wall clock, a batch cut by elapsed time) would move the
counts. Runs under PyPy: under CPython one boot takes over ten minutes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from typing import List, Tuple

import pytest

from harness.engines.reference import PYPY, ReferenceEngine
from harness.stages import MARKS
from reference.pypy_gc import NURSERY_BYTES, VARIABLE

BOOT_BOUND_S = 600.0
"""A tiny boot to the prompt took 29-55 s here under PyPy (up to 100 s on a busy host)."""


def boot_to_prompt(python: str) -> Tuple[bytes, List[dict], float]:
    """One boot with ``--exit-at-stage prompt``: (console bytes, X86LAB records, seconds)."""
    from harness.guest import find_image

    image = find_image("tiny")
    engine = ReferenceEngine(python)
    command = engine.command(image, 128, ["--exit-at-stage", "prompt"])
    started = time.monotonic()
    done = subprocess.run(command, env=engine.environment(),
                          stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=BOOT_BOUND_S)
    seconds = time.monotonic() - started
    stderr = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 0, stderr[-2000:]
    records = [json.loads(line[len("X86LAB "):]) for line in stderr.splitlines()
               if line.startswith("X86LAB ")]
    return done.stdout, records, seconds


@pytest.mark.slow
@pytest.mark.boot
@pytest.mark.skipif(shutil.which(PYPY) is None,
                    reason="pypy3 is not installed: under CPython one boot of the tiny "
                    "image takes over ten minutes")
def test_two_boots_to_the_prompt_retire_the_same_instructions_and_print_the_same_bytes():
    python = shutil.which(PYPY)
    runs = [boot_to_prompt(python) for _ in range(2)]
    stages = []
    for _console, records, seconds in runs:
        reached = {r["name"]: (r["instructions"], r["cycles"])
                   for r in records if r["event"] == "stage"}
        assert list(reached) == [name for name, _ in MARKS], records[-1]
        stop = records[-1]
        assert stop["event"] == "stop" and stop["reason"] == "stopped", stop
        # the engine's environment reached PyPy: its nursery is the one it asked for
        expected = None if VARIABLE in os.environ else NURSERY_BYTES
        assert expected is None or records[0]["interpreter"]["nursery_bytes"] == expected
        stages.append((reached, stop["instructions"], stop["cycles"]))
        print(f"reference tiny: {reached['prompt'][0]:,} instructions to the prompt "
              f"({reached['prompt'][1]:,} cycles), {seconds:.1f} s under {python}")
    assert stages[0] == stages[1]
    assert runs[0][0] == runs[1][0]
    assert runs[0][0].count(b"Linux version") == 1
