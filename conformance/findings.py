"""What a conformance run found: per engine x suite a tally, and every difference grouped
(by instruction form for vectors, by test name for programs) with a reproducer. Known
differences (``conformance/known/ENGINE.toml``) mark a finding as accepted, with evidence.
"""

from __future__ import annotations

import fnmatch
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.9/3.10 fall back to the tomli backport
    import tomli as tomllib

KNOWN_DIR = Path(__file__).parent / "known"
@dataclass
class Finding:
    """One group of differences of one engine on one suite."""

    engine: str
    suite: str
    group: str  # form (vectors) or test name (programs, checks)
    count: int
    summary: str  # the first difference, one line
    reproducer: Dict[str, object] = field(default_factory=dict)
    known: str = ""  # the evidence from the known-differences file, if accepted
    # Where the SDM leaves the result undefined (or the vendors document it differently):
    # the citation and condition. Shown in its own class, never NEW, never a pass.
    undefined: str = ""

    @property
    def is_new(self) -> bool:
        return not self.known and not self.undefined

    @property
    def kind(self) -> str:
        """``new``, ``known`` or ``undefined`` (by the SDM: this CPU and the engine differ)."""
        return "undefined" if self.undefined else "known" if self.known else "new"


@dataclass
class SuiteResult:
    engine: str
    suite: str
    status: str  # "ran", "n/a", "error"
    passed: int = 0
    total: int = 0
    seconds: float = 0.0
    counts: Dict[str, int] = field(default_factory=dict)  # inexpressible, crashed, ...
    findings: List[Finding] = field(default_factory=list)
    note: str = ""
    detail: Dict[str, Dict[str, int]] = field(default_factory=dict)  # e.g. per form
    oracle: str = ""  # where the expected results came from ("this CPU: <identity>", ...)

    def cell(self) -> str:
        """The matrix cell: ``passed/total``, ``n/a`` or ``error``."""
        if self.status != "ran":
            return self.status
        return f"{self.passed}/{self.total}"

    def to_dict(self) -> dict:
        data = asdict(self)
        data["cell"] = self.cell()
        for finding, original in zip(data["findings"], self.findings):
            finding["new"] = original.is_new
            finding["kind"] = original.kind
        return data


@dataclass(frozen=True)
class KnownDifference:
    """One accepted difference. ``group`` is one form or test name, or a list of them
    (one piece of evidence covering several forms), each may be a glob ("*" with a
    ``bytes`` pattern: every form with that prefix); the optional keys narrow it."""

    suite: str
    groups: Tuple[str, ...]
    evidence: str
    field: str = ""  # only findings whose summary names this field
    bytes: str = ""  # only findings whose reproducer's bytes match this regex at the start
    only: str = ""  # only findings whose every difference starts so ("eflags.")
    # Only where the machine's CPU matches this regular expression (searched in
    # ``CpuIdentity.describe()``): an entry resting on one vendor's behaviour says so.
    cpu: str = ""
    # Program suites (known/undefined.toml): only the result lines for which this named
    # condition holds (``conformance.undefined.CONDITIONS``), e.g. a shift count above the
    # operand size; checked line by line before lines are grouped into findings.
    condition: str = ""

    def applies_here(self, cpu: str) -> bool:
        return not self.cpu or re.search(self.cpu, cpu) is not None

    def matches(self, finding: Finding) -> bool:
        code = str(finding.reproducer.get("bytes", ""))
        return self.suite == finding.suite and \
            any(fnmatch.fnmatchcase(finding.group, group) for group in self.groups) and \
            (not self.field or self.field in finding.summary) and \
            (not self.bytes or re.match(self.bytes, code) is not None) and \
            (not self.only or all(part.startswith(self.only)
                                  for part in finding.summary.split("; ")))


ENTRY_KEYS = ("suite", "group", "evidence", "field", "bytes", "only", "cpu", "condition")
UNDEFINED_FILE = "undefined"  # known/undefined.toml: behaviour the SDM leaves undefined


def load_known(engine: str, folder: Path = KNOWN_DIR) -> List[KnownDifference]:
    """The accepted differences of ``engine`` (none when it has no file); ``undefined``
    names the engine-independent file of results the SDM leaves undefined."""
    from conformance.undefined import CONDITIONS as conditions

    path = folder / f"{engine}.toml"
    if not path.exists():
        return []
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid TOML ({exc})") from None
    known = []
    for number, entry in enumerate(data.get("difference", []), start=1):
        missing = [key for key in ("suite", "group", "evidence") if not entry.get(key)]
        if missing:
            raise ValueError(f"{path}: [[difference]] #{number} lacks {', '.join(missing)}")
        unknown = set(entry) - set(ENTRY_KEYS)
        if unknown:
            raise ValueError(f"{path}: [[difference]] #{number} has unknown keys "
                             f"{', '.join(sorted(unknown))}")
        group = entry["group"]
        groups = tuple(group) if isinstance(group, list) else (group,)
        for key in ("bytes", "cpu"):
            try:
                re.compile(entry.get(key, ""))
            except re.error as exc:
                raise ValueError(f"{path}: [[difference]] #{number}: {key} is not a "
                                 f"regular expression ({exc})") from None
        if entry.get("condition", "") not in ("", *conditions):
            raise ValueError(f"{path}: [[difference]] #{number}: unknown condition "
                             f"{entry['condition']!r} (known: {', '.join(sorted(conditions))})")
        known.append(KnownDifference(entry["suite"], groups, entry["evidence"],
                                     *(entry.get(key, "") for key in ENTRY_KEYS[3:])))
    return known


def mark_known(findings: List[Finding], known: List[KnownDifference],
               cpu: str = "") -> None:
    """Set ``Finding.known`` to the evidence of the first entry that matches it (entries
    limited to another CPU do not apply: ``cpu`` is this machine's identity line). A
    finding that carries its own measured explanation (a busybox applet cut off by the
    time limit at the engine's measured speed) keeps it when no entry matches."""
    for finding in findings:
        match: Optional[KnownDifference] = next(
            (k for k in known if k.applies_here(cpu) and not k.condition and
             k.matches(finding)), None)
        if match is not None:
            finding.known = match.evidence


def mark_undefined(findings: List[Finding], undefined: List[KnownDifference],
                   cpu: str = "") -> None:
    """Whole findings the SDM leaves undefined (entries without a line condition, e.g.
    BSWAP of a 16-bit register): their own class, whatever the engine."""
    for finding in findings:
        match = next((k for k in undefined if k.applies_here(cpu) and not k.condition and
                      k.matches(finding)), None)
        if match is not None and not finding.undefined:
            finding.undefined = match.evidence
