"""The page's stage tracker (web/site/components/stages.js), run in Node: markers split
across serial chunks, out-of-order text and several marks in one chunk. The markers are
the harness's own (harness.stages.MARKS, from images/contract.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import List

import pytest

from harness.stages import MARKS

STAGES_JS = Path(__file__).resolve().parents[1] / "site" / "components" / "stages.js"
DRIVER = """
const { createStageTracker } = await import(process.argv[1]);
const seen = [];
const tracker = createStageTracker(JSON.parse(process.argv[2]), (mark) => seen.push(mark));
for (const chunk of JSON.parse(process.argv[3])) tracker.feed(chunk);
console.log(JSON.stringify(seen));
"""
MARKERS = [[name, pattern.decode()] for name, pattern in MARKS]
pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node not installed")


def _marks_seen(chunks: List[str], tmp_path: Path) -> List[str]:
    module = tmp_path / "stages.mjs"  # the site's package is not "type": "module"
    module.write_bytes(STAGES_JS.read_bytes())
    done = subprocess.run(
        ["node", "--input-type=module", "-e", DRIVER, module.as_uri(), json.dumps(MARKERS),
         json.dumps(chunks)], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)


def _split_every(text: str, size: int) -> List[str]:
    return [text[i:i + size] for i in range(0, len(text), size)]


@pytest.mark.parametrize("size", [1, 3, 7, 1000], ids=lambda n: f"chunks-of-{n}")
def test_every_mark_is_seen_once_in_order_however_the_bytes_arrive(size: int,
                                                                   tmp_path: Path) -> None:
    console = "SeaBIOS\r\n" + "".join(f"noise {i}\r\n{marker}\r\n"
                                      for i, (_, marker) in enumerate(MARKERS))
    assert _marks_seen(_split_every(console, size), tmp_path) == [n for n, _ in MARKERS]


def test_a_later_marker_before_an_earlier_one_does_not_count(tmp_path: Path) -> None:
    last_marker = MARKERS[-1][1]
    first_marker = MARKERS[0][1]
    assert _marks_seen([last_marker, first_marker], tmp_path) == [MARKERS[0][0]]
