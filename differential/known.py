"""Known differences: the one schema and the one reader of every known-differences file.

Two kinds of file use it: ``differential/known_divergences.toml`` (where Unicorn is wrong
and the reference right; read by the differential campaign, replay, coverage and the
conformance matrix's Unicorn column) and ``conformance/known/ENGINE.toml`` (what an
engine does differently from this machine's CPU or the vectors; ``undefined.toml``: what
the SDM leaves undefined, for every engine). Each is a list of ``[[difference]]`` tables:

Required
  ``suite``     the suite whose results it covers: ``vectors`` (single-instruction cases:
                vector files, the differential campaign), ``reference-system`` (the
                reference's system-level programs against Unicorn,
                ``reference/tests/unicorn_known.py`` reads them: ``condition`` is one of
                its facts there), ``test-i386``, ``busybox``, ``selftests``, ``shell``...
  ``group``     a glob, or a list of globs, on the group: the instruction form (FORMS name)
                for cases and vectors, the test name for programs
  ``evidence``  why it is accepted: the SDM's text, a run on a real CPU, a reproducer

Optional, anywhere
  ``id``        a name tests and reports can cite
  ``reason``    the behaviour in one or two sentences (the evidence says why it is right)
  ``bytes``     a regular expression matched at the start of the instruction's bytes in
                spaced hex (``"66 0f cd"``)
  ``fields``    globs on the differing fields (``eax``, ``eflags.AF``, ``mem[*]``,
                ``exception``, ``engine``); every difference must be covered by one
  ``cpu``       a regular expression searched in this machine's CPU identity
                (``CpuIdentity.describe()``): an entry resting on one vendor's behaviour
  ``wrong``     ``environment`` when the test set-up, not the engine, is at fault

Optional, conformance findings only (they match a finding's one-line summary)
  ``field``     a text the summary must contain (``"fpus=1e00"``)
  ``condition`` program suites: a named condition (``conformance.undefined.CONDITIONS``)
                checked on each expected line before lines are grouped

Optional, single-instruction cases only (they match a case and its differences)
  ``modes``       the case's modes (``prot32``, ``real16``)
  ``exception``   [peer's, subject's] exception labels (globs): an exception difference
                  of exactly that shape is required
  ``peer_note``   a note the peer's outcome must carry (it flagged its result unreliable)
  ``peer``        only for this peer runner (``unicorn+memhooks``)
  ``code_wraps``  only when the instruction's bytes cross linear 0xFFFFFFFF
  ``popa_runs_off`` only when the eight slots POPA pops (operand-size words or dwords at
                  SS:eSP, eSP wrapping at the stack's width) reach a page the case
                  does not map: the instruction faults part way through its pops
  ``code_runs_off`` only when the instruction's bytes run into a page the case does not
                  map (fetching the rest of the instruction faults)
  ``pushes_run_off`` N: only when N pushes of the operand size below SS:eSP (eSP
                  wrapping at the stack's width) reach a page the case does not map: the
                  instruction faults part way through its pushes (PUSHA 8, far CALL 2)
  ``sp_wraps``    only when the instruction's first push wraps the stack pointer below 0:
                  eSP at the stack's width (SP in real16, ESP in prot32, whose stack the
                  cases keep 32-bit) is below the operand size in bytes
  ``pops_wrap``   only when the instruction's first two pops (each of the operand size)
                  carry eSP past the top of the stack's width: a far return's CS slot
                  lies past the wrap
  ``pops_cross_page`` only when those two pops' bytes lie in two pages
  ``requires``    differences the case must show, each a field glob, or ``FIELD=VALUE``
                  with a glob on the subject's value in hex (``"x87.fsw.SF=0x1"``: the
                  subject set SF and the peer did not): the event the entry is about
                  happened, so its broader ``fields`` are its consequences

A difference matches an entry only when every key it gives agrees, so an unexplained
difference beside a known one still counts. Matches are counted and listed in reports,
never dropped.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path
from typing import (
    Any,
    Callable,
    Collection,
    Dict,
    List,
    Mapping,
    Optional,
    Protocol,
    Sequence,
    Tuple,
)

import tomllib

from ground.case import Case
from ground.compare import Difference

DEFAULT_PATH = Path(__file__).with_name("known_divergences.toml")
REQUIRED = ("suite", "group", "evidence")
TEXT_KEYS = ("id", "reason", "bytes", "cpu", "wrong", "field", "condition", "peer_note",
             "peer")
LIST_KEYS = ("fields", "modes", "exception", "requires")
BOOL_KEYS = ("code_wraps", "code_runs_off", "popa_runs_off", "sp_wraps", "pops_wrap",
             "pops_cross_page")
INT_KEYS = ("pushes_run_off",)
KEYS = (*REQUIRED, *TEXT_KEYS, *LIST_KEYS, *BOOL_KEYS, *INT_KEYS)
VECTORS = "vectors"  # the suite of single-instruction cases


class KnownListError(ValueError):
    """A known-differences file is malformed; the message names the file and entry."""


class FindingLike(Protocol):
    """What an entry reads of a conformance finding (``conformance.findings.Finding``)."""

    suite: str
    group: str
    summary: str
    reproducer: Dict[str, object]


def spaced_hex(code: bytes) -> str:
    """Instruction bytes as ``bytes`` patterns and reproducers write them: "66 0f cd"."""
    return code.hex(" ")


@dataclass(frozen=True)
class KnownDifference:
    """One accepted difference (the keys are the module docstring's)."""

    suite: str
    groups: Tuple[str, ...]
    evidence: str
    id: str = ""
    reason: str = ""
    bytes: str = ""
    cpu: str = ""
    wrong: str = ""
    field: str = ""
    condition: str = ""
    peer_note: str = ""
    peer: str = ""
    fields: Tuple[str, ...] = ()
    modes: Tuple[str, ...] = ()
    exception: Tuple[str, ...] = ()
    requires: Tuple[str, ...] = ()
    code_wraps: bool = False
    code_runs_off: bool = False
    popa_runs_off: bool = False
    sp_wraps: bool = False
    pops_wrap: bool = False
    pops_cross_page: bool = False
    pushes_run_off: int = 0

    def applies_here(self, cpu: str) -> bool:
        return not self.cpu or re.search(self.cpu, cpu) is not None

    def _group_and_bytes(self, group: str, code: str) -> bool:
        return any(fnmatch.fnmatchcase(group, pattern) for pattern in self.groups) and \
            (not self.bytes or re.match(self.bytes, code) is not None)

    def _covers(self, fields: Sequence[str]) -> bool:
        return not self.fields or all(
            any(fnmatch.fnmatchcase(name, pattern) for pattern in self.fields)
            for name in fields)

    def matches_finding(self, finding: FindingLike) -> bool:
        """A conformance finding: its summary lists its differences, "; "-separated."""
        return self.suite == finding.suite and \
            self._group_and_bytes(finding.group, str(finding.reproducer.get("bytes", ""))) \
            and (not self.field or self.field in finding.summary) and \
            self._covers(finding.summary.split("; "))

    def matches_case(self, case: Case, differences: Sequence[Difference],
                     peer_notes: Mapping[str, str], peer_name: str = "") -> bool:
        """A single-instruction case on which the peer and the subject differ so."""
        if not differences or self.suite != VECTORS:
            return False
        if self.peer and self.peer != peer_name:
            return False
        for key, holds in _CASE_EVENTS.items():  # the case's own events (BOOL and INT keys)
            given = getattr(self, key)
            if given and not holds(case, given):
                return False
        if self.peer_note and self.peer_note not in peer_notes:
            return False
        if self.exception and not any(
                d.field == "exception" and fnmatch.fnmatchcase(str(d.left), self.exception[0])
                and fnmatch.fnmatchcase(str(d.right), self.exception[1]) for d in differences):
            return False
        if self.modes and case.mode not in self.modes:
            return False
        if not all(any(_shows(requirement, d) for d in differences)
                   for requirement in self.requires):
            return False
        return self._group_and_bytes(case.form or "", spaced_hex(case.code)) and \
            self._covers([d.field for d in differences])


def _shows(requirement: str, difference: Difference) -> bool:
    """``FIELD`` or ``FIELD=VALUE`` (globs; VALUE against the subject's value in hex)."""
    field, _, value = requirement.partition("=")
    if not fnmatch.fnmatchcase(difference.field, field):
        return False
    right = difference.right
    shown = f"{right:#x}" if isinstance(right, int) else str(right)
    return not value or fnmatch.fnmatchcase(shown, value)


def _code_start(case: Case) -> int:
    return case.regs["eip"] + ((case.regs.get("cs", 0) << 4) if case.mode == "real16" else 0)


def _code_wraps(case: Case) -> bool:
    return _code_start(case) + len(case.code) - 1 > 0xFFFFFFFF


def _operand_bytes(case: Case) -> int:
    """The case's operand size in bytes: 2 in real16 and 4 in prot32, the other with 66."""
    from differential.encoding import split_prefixes

    prefixes, _body = split_prefixes(case.code)
    real = case.mode == "real16"
    return (2 if real else 4) if 0x66 not in prefixes else (4 if real else 2)


def _stack_pointer(case: Case) -> Tuple[int, int]:
    """The case's eSP at the stack's width (16 bits in real16, 32 in prot32, whose stack
    the cases keep 32-bit), and that width's top."""
    top = 0xFFFF if case.mode == "real16" else 0xFFFFFFFF
    return case.regs["esp"] & top, top


def _sp_wraps(case: Case) -> bool:
    """A push of the operand size from the case's eSP wraps it below 0."""
    return _stack_pointer(case)[0] < _operand_bytes(case)


def _pops_wrap(case: Case) -> bool:
    """Two pops of the operand size from the case's eSP carry it past the width's top."""
    sp, top = _stack_pointer(case)
    return sp + 2 * _operand_bytes(case) > top + 1


def _popa_runs_off(case: Case) -> bool:
    """Some byte POPA reads lies in a page the case does not map: eight slots of the
    operand size at SS:eSP and above."""
    return _stack_runs_off(case, range(8 * _operand_bytes(case)))


def _pushes_run_off(case: Case, count: int) -> bool:
    """Some byte of ``count`` pushes of the operand size below SS:eSP lies in a page the
    case does not map."""
    return _stack_runs_off(case, range(-count * _operand_bytes(case), 0))


def _pops_cross_page(case: Case) -> bool:
    """The bytes of two pops of the operand size at SS:eSP lie in two pages."""
    return len(set(_stack_pages(case, range(2 * _operand_bytes(case))))) > 1


def _stack_runs_off(case: Case, offsets: range) -> bool:
    """Some byte at SS:(eSP + offset) lies in a page the case does not map."""
    return any(page not in case.memory for page in _stack_pages(case, offsets))


def _stack_pages(case: Case, offsets: range) -> List[int]:
    """The page of each byte at SS:(eSP + offset) (eSP at the stack's width: SP wraps at
    64 KiB in real16; SS's base is 0 in prot32)."""
    sp, top = _stack_pointer(case)
    base = (case.regs.get("ss", 0) << 4) if case.mode == "real16" else 0
    return [((base + ((sp + i) & top)) & 0xFFFFFFFF) & ~0xFFF for i in offsets]


def _code_runs_off(case: Case) -> bool:
    """Some byte of the instruction lies in a page the case leaves unmapped, so a CPU that
    fetches the whole instruction faults on the fetch (the memory map is the case's: a
    byte past 0xFFFFFFFF is looked up at its wrapped address, as the reference does)."""
    start = _code_start(case)
    return any(((start + i) & 0xFFFFFFFF) & ~0xFFF not in case.memory
               for i in range(len(case.code)))


_CASE_EVENTS: Dict[str, Callable[[Case, int], bool]] = {
    "code_wraps": lambda case, _given: _code_wraps(case),
    "code_runs_off": lambda case, _given: _code_runs_off(case),
    "popa_runs_off": lambda case, _given: _popa_runs_off(case),
    "pushes_run_off": _pushes_run_off,
    "sp_wraps": lambda case, _given: _sp_wraps(case),
    "pops_wrap": lambda case, _given: _pops_wrap(case),
    "pops_cross_page": lambda case, _given: _pops_cross_page(case),
}
"""Each BOOL and INT key (``matches_case``) -> whether the case shows its event, given
the key's value (a count for ``pushes_run_off``)."""
assert set(_CASE_EVENTS) == set(BOOL_KEYS) | set(INT_KEYS)


def _entry(raw: Dict[str, Any], where: str, conditions: Optional[Collection[str]]
           ) -> KnownDifference:
    missing = [key for key in REQUIRED if not raw.get(key)]
    if missing:
        raise KnownListError(f"{where} lacks {', '.join(missing)}")
    unknown = set(raw) - set(KEYS)
    if unknown:
        raise KnownListError(f"{where} has unknown keys {', '.join(sorted(unknown))}")
    for key in ("bytes", "cpu"):
        try:
            re.compile(raw.get(key, ""))
        except re.error as exc:
            raise KnownListError(f"{where}: {key} is not a regular expression ({exc})") \
                from None
    condition = raw.get("condition", "")
    if conditions is not None and condition not in ("", *conditions):
        raise KnownListError(f"{where}: unknown condition {condition!r} "
                             f"(known: {', '.join(sorted(conditions))})")
    group = raw["group"]
    return KnownDifference(
        raw["suite"], tuple(group) if isinstance(group, list) else (group,), raw["evidence"],
        **{key: raw.get(key, "") for key in TEXT_KEYS},
        **{key: tuple(raw.get(key, ())) for key in LIST_KEYS},
        **{key: bool(raw.get(key, False)) for key in BOOL_KEYS},
        **{key: _count(raw, key, where) for key in INT_KEYS})


def _count(raw: Dict[str, Any], key: str, where: str) -> int:
    value = raw.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise KnownListError(f"{where}: {key} must be a count (a whole number, 0 or more)")
    return value


def load_known(path: Path = DEFAULT_PATH, conditions: Optional[Collection[str]] = None
               ) -> List[KnownDifference]:
    """Every entry of the file, checked against the schema;
    ``conditions``: the condition names a program suite knows (None: not checked)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KnownListError(f"{path}: {exc}") from None
    return parse_known(text, str(path), conditions)


def parse_known(text: str, where: str, conditions: Optional[Collection[str]] = None
                ) -> List[KnownDifference]:
    """``load_known`` on a file's text (``where`` names it in errors): a campaign judges
    with the text it pinned when it started, not with the file as it is now."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise KnownListError(f"{where}: not valid TOML ({exc})") from None
    others = sorted(set(data) - {"difference"})
    if others:  # an old [[divergence]] list would otherwise be read as empty
        raise KnownListError(f"{where}: unknown tables {', '.join(others)} (entries are "
                             f"[[difference]] tables)")
    return [_entry(raw, f"{where}: [[difference]] #{number}", conditions)
            for number, raw in enumerate(data.get("difference", []), start=1)]


@dataclass(frozen=True)
class PinnedList:
    """The known-differences list a campaign judges with from start to end: the file's
    text as it was when the campaign started (kept in the campaign folder, or in Redis),
    with its sha256 in the plan. Workers build their matchers from this text, never from
    the file in the working tree, which may gain an entry (and a key their loaded code
    does not know) while the campaign runs."""

    text: str
    where: str = "the campaign's pinned known list"

    @classmethod
    def read(cls, path: Path = DEFAULT_PATH) -> PinnedList:
        """Pin ``path`` as it is now; a file this code cannot read is a KnownListError."""
        try:
            pinned = cls(Path(path).read_text(encoding="utf-8"), str(path))
        except (OSError, UnicodeDecodeError) as exc:
            raise KnownListError(f"{path}: {exc}") from None
        pinned.entries()
        return pinned

    @property
    def digest(self) -> str:
        import hashlib

        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def entries(self) -> List[KnownDifference]:
        return parse_known(self.text, self.where)


def find_known(known: Sequence[KnownDifference], case: Case,
               differences: Sequence[Difference],
               peer_notes: Mapping[str, str], peer_name: str = "") -> Optional[KnownDifference]:
    """The first entry that explains every one of the case's differences, or None."""
    for entry in known:
        if entry.matches_case(case, differences, peer_notes, peer_name):
            return entry
    return None


def vector_explainer(engine: str) -> Optional[Callable[[Case, List[Difference], dict], str]]:
    """For ``vectors.replay``: given a failed vector's differences (expected, got), the id
    of the first of ``engine``'s single-instruction entries (suite ``vectors``, from the
    catalogue's file for it) that explains them all, or ""; None for an engine without
    entries. Entries read a difference as (engine, expected), the differential tester's
    (peer, subject)."""
    from ground.cache import REPO_ROOT
    from ground.engines import CATALOGUE

    row = next((e for e in CATALOGUE if e.name == engine), None)
    if row is None or not row.known:
        return None
    entries = [e for e in load_known(REPO_ROOT / row.known) if e.suite == VECTORS]
    peer = "unicorn+memhooks" if engine == "unicorn-memhooks" else engine

    def explain(case: Case, found: List[Difference], notes: dict) -> str:
        turned = [Difference(d.field, d.right, d.left) for d in found]
        entry = find_known(entries, case, turned, notes, peer)
        return (entry.id or "(unnamed entry)") if entry is not None else ""
    return explain
