"""Property-based tests of two input surfaces (issue 16): divergence files given to
``fuzz --replay`` and the files of a campaign folder given to ``fuzz --resume``.

Random bytes, truncations of a real file and real files with one value replaced are
thrown at the CLI's ``main`` in-process; every one must end with 0, 1 or 2, no traceback,
within a time limit, and say 2 exactly when the input is not usable (checked against an
independent reading of the file, not the code under test). Each test prints how many
inputs it threw (``pytest -s``). ``X86LAB_HOSTILE_EXAMPLES=N`` throws N per test instead
of the Hypothesis profile's count (the campaign profile's 5000 take an hour on --resume,
where every usable folder starts a real campaign)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterator, Tuple

from hypothesis import given, settings
from hypothesis import strategies as st

from differential.corpus import CorpusError, load
from differential.tests.campaign_folder import RESUME, campaign_with_files
from x86lab.cli import main

LIMIT_SECONDS = 120
EXAMPLES = int(os.environ.get("X86LAB_HOSTILE_EXAMPLES", "0"))
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=10)


@contextlib.contextmanager
def _time_limit(seconds: int) -> Iterator[None]:
    def expire(*_args: object) -> None:
        raise TimeoutError(f"no answer within {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _run(argv: list) -> Tuple[int, str]:
    err = io.StringIO()
    with _time_limit(LIMIT_SECONDS), contextlib.redirect_stderr(err), \
            contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    return code, err.getvalue()


def _paths(value: Any, prefix: Tuple = ()) -> list:
    """Every place in a JSON document (as key paths) a value could be swapped in."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value[:3]):
            found += _paths(item, prefix + (index,))
    return found


def _replaced(document: Any, where: Tuple, value: Any) -> Any:
    if not where:
        return value
    copy = json.loads(json.dumps(document))
    target = copy
    for step in where[:-1]:
        target = target[step]
    target[where[-1]] = value
    return copy


def hostile_content(valid: bytes) -> st.SearchStrategy:
    """(kind, bytes): random bytes, a truncation of ``valid``, or ``valid`` with one value
    (anywhere in the document) replaced by random JSON."""
    document = json.loads(valid)
    places = _paths(document)
    return st.one_of(
        st.tuples(st.just("random bytes"), st.binary(max_size=600)),
        st.tuples(st.just("truncated"),
                  st.integers(0, len(valid) - 1).map(lambda n: valid[:n])),
        st.tuples(st.just("one value replaced"),
                  st.tuples(st.sampled_from(places), JSON_VALUES).map(
                      lambda pv: json.dumps(_replaced(document, *pv)).encode())))


def _is_json(data: bytes) -> bool:
    try:
        json.loads(data.decode("utf-8"))
        return True
    except ValueError:
        return False


def _template() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="x86lab-hostile-")) / "campaign"
    campaign_with_files(folder)
    return folder


def _examples(test: Callable) -> Callable:
    return settings(max_examples=EXAMPLES)(test) if EXAMPLES else test


def _throw(strategy: st.SearchStrategy, check: Callable[[str, bytes], None]) -> Counter:
    thrown: Counter = Counter()

    @_examples
    @given(strategy)
    def one(kind_and_content: Tuple[str, bytes]) -> None:
        kind, content = kind_and_content
        check(kind, content)
        thrown[kind] += 1

    one()
    return thrown


def test_replay_survives_hostile_divergence_files():
    template = _template()
    saved = next((template / "divergences").glob("*.json"))
    scratch = template.parent / "thrown.json"

    def check(kind: str, content: bytes) -> None:
        scratch.write_bytes(content)
        code, err = _run(["fuzz", "--replay", str(scratch)])
        assert code in (0, 1, 2) and "Traceback" not in err, (kind, content[:200], err)
        exits[code] += 1
        try:
            load(scratch)
            usable = True
        except CorpusError:
            usable = False
        assert (code == 2) == (not usable), (kind, code, err)
        if not _is_json(content):
            assert code == 2

    exits: Counter = Counter()
    thrown = _throw(hostile_content(saved.read_bytes()), check)
    print(f"\nfuzz --replay: {sum(thrown.values())} hostile divergence files {dict(thrown)}; "
          f"exit codes {dict(exits)}")
    shutil.rmtree(template.parent)
    assert sum(thrown.values()) > 0


def test_resume_survives_hostile_campaign_files():
    template = _template()
    targets = ["campaign.json", "workers/0.json",
               str(next((template / "divergences").glob("*.json")).relative_to(template))]
    cases = st.sampled_from(targets).flatmap(
        lambda name: st.tuples(st.just(name), hostile_content((template / name).read_bytes())))

    def check(name: str, kind_and_content: Tuple[str, bytes]) -> None:
        kind, content = kind_and_content
        folder = template.parent / "thrown"
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(template, folder)
        (folder / name).write_bytes(content)
        code, err = _run(["fuzz", "--out", str(folder), *RESUME])
        assert code in (0, 1, 2) and "Traceback" not in err, (name, kind, content[:200], err)
        exits[code] += 1
        if not _is_json(content):
            assert code == 2 and name in err, (name, kind, err)
        assert (folder / name).read_bytes() == content or code != 2  # reported, not erased

    thrown: Counter = Counter()
    exits: Counter = Counter()

    @_examples
    @given(cases)
    def one(name_and_case: Tuple[str, Tuple[str, bytes]]) -> None:
        name, kind_and_content = name_and_case
        check(name, kind_and_content)
        thrown[f"{name.split('/')[0]}: {kind_and_content[0]}"] += 1

    one()
    print(f"\nfuzz --resume: {sum(thrown.values())} hostile campaign files {dict(thrown)}; "
          f"exit codes {dict(exits)}")
    shutil.rmtree(template.parent)
    assert sum(thrown.values()) > 0
