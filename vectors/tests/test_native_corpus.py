"""The corpus the real CPU decided (``vectors/corpus-native``): where Unicorn and the
reference disagreed, the CPU's outcome is the expected one. Each file names its oracle and
the CPU; the reference passes every vector; Unicorn fails each one only as one of its
listed bugs (``differential/known_divergences.toml``), never for an unexplained reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from differential.known import find_known, load_known
from differential.native_vectors import ORACLE, with_lock
from ground.compare import compare
from vectors.engines import make_runner
from vectors.files import find_vector_files, read_header, read_vectors

CORPUS = Path(__file__).resolve().parent.parent / "corpus-native"
FILES = find_vector_files([CORPUS]) if CORPUS.is_dir() else []


def test_every_file_names_its_oracle_and_the_cpu() -> None:
    assert len(FILES) > 100
    for path in FILES:
        header = read_header(path)
        assert header["oracle"] == ORACLE and header["mode"] == "prot32"
        assert header["cpu"]["vendor"] and header["cpu"]["family"] > 0
        assert path.name == f"{header['form']}.jsonl.gz"


def test_the_reference_passes_every_vector() -> None:
    runner = make_runner("reference")
    failed = [f"{entry.case.name}: {problems[0].render('cpu', 'reference')}"
              for path in FILES for entry in read_vectors(path)
              for problems in [compare(entry.case, entry.expected, runner.run(entry.case))]
              if problems]
    assert failed == []


@pytest.mark.slow
def test_unicorn_fails_them_only_by_its_listed_bugs() -> None:
    from ground.case import EngineCrashed
    from ground.compare import Difference

    known = load_known()
    runner = make_runner("unicorn")
    unexplained = []
    for path in FILES:
        entries = list(read_vectors(path))
        for entry, answer in zip(entries, runner.run_many([e.case for e in entries])):
            if isinstance(answer, EngineCrashed):
                differences, notes = [Difference("engine", "crashed", "")], {}
            else:
                differences = compare(entry.case, answer, entry.expected)
                notes = answer.notes
            if differences and find_known(known, entry.case, differences, notes,
                                          "unicorn") is None:
                unexplained.append(f"{entry.case.name}: {differences[0]}")
    assert unexplained == []


def test_a_lock_prefix_goes_in_front_of_the_instruction() -> None:
    from differential.tests.handmade import CODE_PAGE, make_case

    assert with_lock(make_case(bytes.fromhex("f7d8"))) is None  # no page before it
    case = make_case(bytes.fromhex("f7d8"), eip=CODE_PAGE + 0x10)  # neg eax
    locked = with_lock(case)
    assert locked is not None and locked.code == bytes.fromhex("f0f7d8")
    eip = locked.regs["eip"]
    page = locked.memory[CODE_PAGE]
    assert page[eip - CODE_PAGE:eip - CODE_PAGE + 3] == locked.code
    assert with_lock(locked) is None  # already locked
