"""What a conformance run found: per engine x suite a tally, and every difference grouped
(by instruction form for vectors, by test name for programs) with a reproducer. Known
differences (``conformance/known/ENGINE.toml``, in the schema ``differential/known.py``
documents) mark a finding as accepted, with evidence.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from differential.known import KnownDifference
from differential.known import load_known as read_known

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


UNDEFINED_FILE = "undefined"  # known/undefined.toml: behaviour the SDM leaves undefined


def load_known(engine: str, folder: Path = KNOWN_DIR) -> List[KnownDifference]:
    """The accepted differences of ``engine`` (none when it has no file), read by the one
    reader of known-differences files (``differential.known``, which documents the
    schema); ``undefined`` names the engine-independent file of results the SDM leaves
    undefined."""
    from conformance.undefined import CONDITIONS as conditions

    path = folder / f"{engine}.toml"
    return read_known(path, conditions) if path.exists() else []


def mark_known(findings: List[Finding], known: List[KnownDifference],
               cpu: str = "") -> None:
    """Set ``Finding.known`` to the evidence of the first entry that matches it (entries
    limited to another CPU do not apply: ``cpu`` is this machine's identity line). A
    finding that carries its own measured explanation (a busybox applet cut off by the
    time limit at the engine's measured speed) keeps it when no entry matches."""
    for finding in findings:
        match: Optional[KnownDifference] = next(
            (k for k in known if k.applies_here(cpu) and not k.condition and
             k.matches_finding(finding)), None)
        if match is not None:
            finding.known = match.evidence


def mark_undefined(findings: List[Finding], undefined: List[KnownDifference],
                   cpu: str = "") -> None:
    """Whole findings the SDM leaves undefined (entries without a line condition, e.g.
    BSWAP of a 16-bit register): their own class, whatever the engine."""
    for finding in findings:
        match = next((k for k in undefined if k.applies_here(cpu) and not k.condition and
                      k.matches_finding(finding)), None)
        if match is not None and not finding.undefined:
            finding.undefined = match.evidence
