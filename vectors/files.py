"""Vector files on disk: gzip-compressed JSON Lines, a header line first.

Reading is lenient about where a file came from (``.jsonl``, ``.jsonl.gz`` with their
header line, or a ``.json`` / ``.json.gz`` array without one, as SingleStepTests ship) and
strict about what is in it: any problem is a ``VectorFileError`` naming the file and line.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from ground.case import Case, Outcome
from vectors.format import (
    FORMAT_NAME,
    SYSTEM_VERSION,
    VectorError,
    check_header,
    from_record_v2,
    is_header,
    to_record,
)
from vectors.system_state import SystemVector

SUFFIXES = (".jsonl.gz", ".jsonl", ".json.gz", ".json")


class VectorFileError(Exception):
    """A file that cannot be read as vectors; the message says file, line and what to fix."""

    def __init__(self, path: Path, line: int, message: str) -> None:
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {message}")
        self.path, self.line, self.problem = path, line, message


@dataclass(frozen=True)
class Entry:
    """One vector read back: where it stood, and what it means."""

    path: Path
    line: int
    case: Case
    expected: Outcome
    system: Optional[SystemVector] = None  # the version-2 part, when the vector has one


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


def _parse_line(path: Path, number: int, text: str) -> Any:
    """The line's JSON value, or the ``VectorFileError`` saying why it has none."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        return VectorFileError(path, number, f"not JSON ({exc.msg}, column {exc.colno}); "
                               "the line may be truncated")
    except (ValueError, RecursionError) as exc:  # an integer too long, arrays nested too deep
        return VectorFileError(path, number, f"not usable JSON ({type(exc).__name__}: "
                               f"{str(exc)[:80]})")


def _objects(path: Path) -> Iterator[Tuple[int, Any]]:
    """(line number, parsed object) for each line of the file; a line that is not JSON
    comes as its ``VectorFileError`` (the next lines can still be read). A file that cannot
    be read on raises ``VectorFileError``."""
    number = 0
    try:
        with _open_text(path) as stream:
            if is_array_file(path):
                data = json.load(stream)
                if not isinstance(data, list):
                    raise VectorFileError(path, 1, "a .json vector file should hold an array")
                yield from ((0, item) for item in data)
                return
            for number, text in enumerate(stream, start=1):
                if text.strip():
                    yield number, _parse_line(path, number, text)
    except EOFError:
        raise VectorFileError(path, number + 1, "the file ends early (a truncated download "
                              "or copy?); fetch or regenerate it") from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise VectorFileError(path, number, f"cannot read ({str(exc)[:120]}); is it a (gzip) "
                              "JSON file?") from None


def is_array_file(path: Path) -> bool:
    """``.json`` / ``.json.gz``: one JSON array of vectors, no header (as SingleStepTests)."""
    return path.name.endswith((".json", ".json.gz"))


def _header_problem(path: Path, number: int, obj: Any) -> Optional[VectorFileError]:
    """Why ``obj`` (the first line of a JSON Lines file) is not a usable header, or None."""
    if not is_header(obj):
        return VectorFileError(path, number, f"no header line; a JSON Lines vector file starts "
                               f'with {{"format": "{FORMAT_NAME}", "version": 1}}')
    try:
        check_header(obj)
    except VectorError as exc:
        return VectorFileError(path, number, str(exc))
    return None


def scan_vectors(path: Path) -> Iterator[Union[Entry, VectorFileError]]:
    """Every vector in the file, in order, and in its place a ``VectorFileError`` for each
    line that is not a well-formed vector, so a caller can run the good ones and list the
    bad. A JSON Lines file must start with a valid header; when it does not, or the file
    cannot be read on, that error is the last item (nothing after it can be trusted)."""
    needs_header = not is_array_file(path)
    version = SYSTEM_VERSION  # a headerless array file: whatever its vectors hold
    try:
        for number, obj in _objects(path):
            if isinstance(obj, VectorFileError):
                yield obj
                if needs_header:
                    return  # the header line itself is unreadable
                continue
            if needs_header or is_header(obj):
                problem = _header_problem(path, number, obj)
                if problem is not None:
                    yield problem
                    return
                needs_header = False
                version = obj["version"]
                continue
            try:
                case, expected, system = from_record_v2(obj)
            except (VectorError, ValueError) as exc:
                yield VectorFileError(path, number, str(exc))
                continue
            if system is not None and version < SYSTEM_VERSION:
                yield VectorFileError(path, number, f"a vector with a system part in a "
                                      f"version-{version} file (the header must say version "
                                      f"{SYSTEM_VERSION}: a version-1 reader would drop it)")
                continue
            yield Entry(path, number, case, expected, system)
    except VectorFileError as exc:
        yield exc
        return
    if needs_header:
        yield VectorFileError(path, 0, "no header line (the file is empty)")


def read_header(path: Path) -> Optional[Dict[str, Any]]:
    """The file's header object, or None for a headerless (``.json`` array) file."""
    for number, obj in _objects(path):
        if isinstance(obj, VectorFileError):
            raise obj
        if not is_header(obj):
            return None
        problem = _header_problem(path, number, obj)
        if problem is not None:
            raise problem
        return obj
    return None


def read_vectors(path: Path) -> Iterator[Entry]:
    """Every vector in the file, in order; the first problem raises its ``VectorFileError``."""
    for item in scan_vectors(path):
        if isinstance(item, VectorFileError):
            raise item
        yield item


def write_vectors(path: Path, header: Dict[str, Any],
                  pairs: Iterable[Tuple[Case, Outcome]],
                  systems: Optional[Sequence[Optional[SystemVector]]] = None) -> int:
    """Write one gzip JSON Lines file; returns how many vectors it holds.

    ``mtime=0`` and a fixed key order keep the bytes a pure function of the vectors, so a
    regenerated corpus shows up in git only where a vector really changed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0,
                                                filename="") as stream:
        stream.write((json.dumps(header, sort_keys=True) + "\n").encode())
        for index, (case, outcome) in enumerate(pairs):
            system = systems[index] if systems is not None else None
            line = json.dumps(to_record(case, outcome, system), separators=(",", ":"))
            stream.write((line + "\n").encode())
            count += 1
    return count
