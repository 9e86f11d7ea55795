"""Divergences already explained, where the peer (not the reference) is wrong.

``known_divergences.toml`` lists them: which forms (glob on the form name), optionally
which modes and which instruction bytes (regex on the hex), the fields that may differ
(globs such as ``eflags.AF`` or ``mem[*]``), optionally a note the peer's outcome must
carry (``peer_note``: the peer flagged its own result as unreliable), the reason and
the evidence (SDM text, and a run of the same bytes on the real CPU). A divergence
matches an entry only when *every* differing field is covered, so an unexplained
difference beside a known one still counts.
Matches are counted and listed in reports, never dropped.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Mapping, Optional, Sequence, Tuple

import tomllib

from ground.case import Case
from ground.compare import Difference

DEFAULT_PATH = Path(__file__).with_name("known_divergences.toml")


class KnownListError(ValueError):
    """The known-divergences file is malformed."""


@dataclass(frozen=True)
class KnownDivergence:
    id: str
    forms: Tuple[str, ...]
    fields: Tuple[str, ...]
    reason: str
    evidence: str
    wrong: str = "unicorn"
    modes: Tuple[str, ...] = ()
    code: str = ""
    peer_note: str = ""  # matches only when the peer's outcome carries this note
    # (peer, subject) exception labels (globs, e.g. ("none", "#GP*")): the entry then
    # needs an exception difference of exactly that shape
    exception: Tuple[str, ...] = ()
    peer: str = ""  # only for this peer runner (e.g. "unicorn+memhooks")
    code_wraps: bool = False  # only when the instruction's bytes cross linear 0xFFFFFFFF

    def matches(self, case: Case, differences: Sequence[Difference],
                peer_notes: Mapping[str, str], peer_name: str = "") -> bool:
        if not differences:
            return False
        if self.peer and self.peer != peer_name:
            return False
        if self.code_wraps and not _code_wraps(case):
            return False
        if self.peer_note and self.peer_note not in peer_notes:
            return False
        if self.exception and not any(
                d.field == "exception" and fnmatch.fnmatchcase(str(d.left), self.exception[0])
                and fnmatch.fnmatchcase(str(d.right), self.exception[1]) for d in differences):
            return False
        if not any(fnmatch.fnmatchcase(case.form, pattern) for pattern in self.forms):
            return False
        if self.modes and case.mode not in self.modes:
            return False
        if self.code and not re.search(self.code, case.code.hex()):
            return False
        return all(any(fnmatch.fnmatchcase(d.field, pattern) for pattern in self.fields)
                   for d in differences)


def _code_wraps(case: Case) -> bool:
    start = case.regs["eip"] + ((case.regs.get("cs", 0) << 4) if case.mode == "real16" else 0)
    return start + len(case.code) - 1 > 0xFFFFFFFF


def load_known(path: Path = DEFAULT_PATH) -> List[KnownDivergence]:
    """Every entry of the file, checked for the required keys."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise KnownListError(f"{path}: {exc}") from exc
    entries = []
    for index, raw in enumerate(data.get("divergence", [])):
        where = f"{path}: [[divergence]] #{index + 1}"
        missing = [k for k in ("id", "forms", "fields", "reason", "evidence") if k not in raw]
        if missing:
            raise KnownListError(f"{where}: missing {', '.join(missing)}")
        entries.append(KnownDivergence(
            id=raw["id"], forms=tuple(raw["forms"]), fields=tuple(raw["fields"]),
            reason=raw["reason"], evidence=raw["evidence"], wrong=raw.get("wrong", "unicorn"),
            modes=tuple(raw.get("modes", ())), code=raw.get("code", ""),
            peer_note=raw.get("peer_note", ""), exception=tuple(raw.get("exception", ())),
            peer=raw.get("peer", ""), code_wraps=bool(raw.get("code_wraps", False))))
    return entries


def find_known(known: Sequence[KnownDivergence], case: Case,
               differences: Sequence[Difference],
               peer_notes: Mapping[str, str], peer_name: str = "") -> Optional[KnownDivergence]:
    for entry in known:
        if entry.matches(case, differences, peer_notes, peer_name):
            return entry
    return None
