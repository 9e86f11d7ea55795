"""Vector files on disk: gzip-compressed JSON Lines, a header line first.

Reading is lenient about where a file came from (``.jsonl``, ``.jsonl.gz``, or a ``.json``
/ ``.json.gz`` array as SingleStepTests ship; the header is optional) and strict about
what is in it: any problem is a ``VectorFileError`` naming the file and line.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from differential.case import Case, Outcome
from vectors.format import VectorError, check_header, from_record, is_header, to_record

SUFFIXES = (".jsonl.gz", ".jsonl", ".json.gz", ".json")


class VectorFileError(Exception):
    """A file that cannot be read as vectors; the message says file, line and what to fix."""

    def __init__(self, path: Path, line: int, message: str) -> None:
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {message}")
        self.path, self.line = path, line


@dataclass(frozen=True)
class Entry:
    """One vector read back: where it stood, and what it means."""

    path: Path
    line: int
    case: Case
    expected: Outcome


def is_vector_file(path: Path) -> bool:
    return path.name.endswith(SUFFIXES)


def find_vector_files(paths: Sequence[Path]) -> List[Path]:
    """Expand folders (recursively) into their vector files, sorted; keep files as given."""
    found: List[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and is_vector_file(p)))
        elif path.is_file():
            found.append(path)
        else:
            raise VectorFileError(path, 0, "no such file or folder")
    return found


def _open_text(path: Path) -> IO[str]:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open("r", encoding="utf-8")


def _objects(path: Path) -> Iterator[Tuple[int, Any]]:
    """(line number, parsed object) for each vector or header in the file."""
    number = 0
    try:
        with _open_text(path) as stream:
            if path.name.endswith((".json", ".json.gz")):
                data = json.load(stream)
                if not isinstance(data, list):
                    raise VectorFileError(path, 1, "a .json vector file should hold an array")
                yield from ((0, item) for item in data)
                return
            for number, text in enumerate(stream, start=1):
                if not text.strip():
                    continue
                try:
                    yield number, json.loads(text)
                except json.JSONDecodeError as exc:
                    raise VectorFileError(path, number, f"not JSON ({exc.msg}, column "
                                          f"{exc.colno}); the line may be truncated") from None
    except EOFError:
        raise VectorFileError(path, number + 1, "the file ends early (a truncated download "
                              "or copy?); fetch or regenerate it") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise VectorFileError(path, number, f"cannot read ({exc}); is it a (gzip) JSON "
                              "file?") from None


def _checked_header(path: Path, number: int, obj: Dict[str, Any]) -> Dict[str, Any]:
    try:
        check_header(obj)
    except VectorError as exc:
        raise VectorFileError(path, number, str(exc)) from None
    return obj


def read_header(path: Path) -> Optional[Dict[str, Any]]:
    """The file's header object, or None for a headerless file."""
    for number, obj in _objects(path):
        return _checked_header(path, number, obj) if is_header(obj) else None
    return None


def read_vectors(path: Path) -> Iterator[Entry]:
    """Every vector in the file, in order; the header (if any) is checked and skipped."""
    for number, obj in _objects(path):
        if is_header(obj):
            _checked_header(path, number, obj)
            continue
        try:
            case, expected = from_record(obj)
        except (VectorError, ValueError) as exc:
            raise VectorFileError(path, number, str(exc)) from None
        yield Entry(path, number, case, expected)


def write_vectors(path: Path, header: Dict[str, Any],
                  pairs: Iterable[Tuple[Case, Outcome]]) -> int:
    """Write one gzip JSON Lines file; returns how many vectors it holds.

    ``mtime=0`` and a fixed key order keep the bytes a pure function of the vectors, so a
    regenerated corpus shows up in git only where a vector really changed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0,
                                                filename="") as stream:
        stream.write((json.dumps(header, sort_keys=True) + "\n").encode())
        for case, outcome in pairs:
            line = json.dumps(to_record(case, outcome), separators=(",", ":"))
            stream.write((line + "\n").encode())
            count += 1
    return count
