"""Divergent cases kept on disk as JSON, one file each, durable the moment they are found.

A file is written to a temporary name, flushed and fsync'ed, renamed into place and the
directory fsync'ed: a worker killed at any instant leaves either no file or a whole one.
Its name is the hash of the case, so finding the same divergence again rewrites the same
file instead of piling up copies. ``python -m differential.replay FILE`` reruns one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

from ground.case import PAGE_SIZE, SEGMENTS, Case, register_names

MAX_LENGTH = 15  # bytes of one x86 instruction


class CorpusError(ValueError):
    """A corpus file that cannot be read back as a case."""


def _page_to_json(data: bytes) -> Any:
    """A page of one repeated byte is stored as that byte; others as hex."""
    if data == bytes([data[0]]) * PAGE_SIZE:
        return data[0]
    return data.hex()


def _page_from_json(value: Any) -> bytes:
    if isinstance(value, int):
        return bytes([value]) * PAGE_SIZE
    return bytes.fromhex(value)


def case_to_json(case: Case) -> Dict[str, Any]:
    return {"name": case.name, "mode": case.mode, "code": case.code.hex(),
            "form": case.form, "undefined_flags": case.undefined_flags,
            "undefined_dest": case.undefined_dest,
            "regs": {name: value for name, value in sorted(case.regs.items())},
            "memory": {f"{base:#x}": _page_to_json(data)
                       for base, data in sorted(case.memory.items())}}


def case_from_json(obj: Dict[str, Any], where: str = "case") -> Case:
    """The case a record describes, checked so that every runner can run it: a file
    edited by hand or cut short is a ``CorpusError`` here, not a crash in a runner."""
    try:
        case = Case(name=obj["name"], mode=obj["mode"], code=bytes.fromhex(obj["code"]),
                    regs={k: _exact_int(v) for k, v in obj["regs"].items()},
                    memory={int(k, 16): _page_from_json(v) for k, v in obj["memory"].items()},
                    form=obj.get("form", ""), undefined_flags=obj.get("undefined_flags", 0),
                    undefined_dest=obj.get("undefined_dest", ""))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CorpusError(f"{where}: not a case record ({exc})") from exc
    problem = _case_problem(case)
    if problem:
        raise CorpusError(f"{where}: not a case record ({problem})")
    return case


def _exact_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"register value {value!r} is not an integer")
    return value


# "" or what generator.py writes: reg:eax:0xffff, mem:0x2ffe:4
DEST_SPEC = re.compile(r"(?:reg:[a-z]{2,3}:0x[0-9a-f]{1,8}|mem:0x[0-9a-f]{1,8}:(?:[1-9]|1[0-6]))?")


def _case_problem(case: Case) -> str:
    """What makes ``case`` unrunnable, or ""."""
    names = register_names(case.mode)
    if sorted(case.regs) != sorted(names):
        return f"registers must be exactly {', '.join(names)}"
    for name, value in case.regs.items():
        top = 0xFFFF if name in SEGMENTS else 0xFFFFFFFF
        if not 0 <= value <= top:
            return f"{name}={value:#x} is out of range"
    if not 1 <= len(case.code) <= MAX_LENGTH:
        return f"code must be 1 to {MAX_LENGTH} bytes"
    if any(not 0 <= base <= 0x100000000 - PAGE_SIZE for base in case.memory):
        return "a page lies outside the 4 GiB address space"
    if not isinstance(case.name, str) or not isinstance(case.form, str):
        return "name and form must be strings"
    if not isinstance(case.undefined_flags, int) or not 0 <= case.undefined_flags <= 0xFFFFFFFF:
        return "undefined_flags must be a 32-bit mask"
    if not isinstance(case.undefined_dest, str) or not DEST_SPEC.fullmatch(case.undefined_dest):
        return f"undefined_dest {case.undefined_dest!r} is not 'reg:NAME:MASK' or 'mem:ADDR:SIZE'"
    return ""


def case_key(case: Case) -> str:
    """A stable name for a case: the hash of its JSON form."""
    text = json.dumps(case_to_json(case), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a crash, of the process or of the machine,
    leaves the old file or the new one, whole (written and synced under another name,
    then renamed over it). Which of the two a power loss leaves is open until the file
    system syncs the directory: ``write_durably`` when it must be the new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def write_durably(path: Path, text: str) -> None:
    """``write_atomically``, and the new file is the one a crash leaves, once this
    returns (its directory synced too)."""
    write_atomically(path, text)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save(directory: Path, record: Dict[str, Any]) -> Path:
    """Store a divergence record (``{"case": case_to_json(...), ...}``) durably."""
    directory.mkdir(parents=True, exist_ok=True)
    case = case_from_json(record["case"])
    path = directory / f"{case.form or 'bytes'}-{case.mode}-{case_key(case)}.json"
    write_durably(path, json.dumps(record, indent=1, sort_keys=True) + "\n")
    return path


def load(path: Path) -> Tuple[Case, Dict[str, Any]]:
    """(case, whole record) from one corpus file; a bare case record is accepted too."""
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise CorpusError(f"{path}: cannot read as a JSON divergence record "
                          f"({type(exc).__name__}: {exc})") from None
    if not isinstance(record, dict):
        raise CorpusError(f"{path}: expected a JSON object")
    body = record.get("case", record)
    if not isinstance(body, dict):
        raise CorpusError(f"{path}: its 'case' is not a JSON object")
    return case_from_json(body, str(path)), record


def records(directory: Path) -> Iterator[Tuple[Path, Case, Dict[str, Any]]]:
    """Every readable record in ``directory``, in name order (for replay-first)."""
    if not directory.is_dir():
        return
    for path in sorted(directory.glob("*.json")):
        case, record = load(path)
        yield path, case, record


def paths(directory: Path) -> List[Path]:
    return sorted(directory.glob("*.json")) if directory.is_dir() else []
