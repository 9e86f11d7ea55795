"""Where the coverage report's evidence comes from: the reference's registry of implemented
forms, the vector corpus, a differential campaign's report, and the known-divergences
file, each read through its owner's public API (``reference``, ``differential.report``,
``differential.known``)."""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Dict, Iterable, Optional, Sequence, Tuple

from differential.coverage.opcode_map import Evidence
from vectors.files import find_vector_files, read_header, read_vectors

CAMPAIGN_CASE_STATUSES = ("agree", "diverge", "known")  # "unimplemented" is not a test


class EvidenceError(Exception):
    """A campaign folder or divergence file that cannot be read; names it."""


def implemented_forms() -> Dict[str, bool]:
    """Form name -> whether the reference has semantics for it."""
    from reference import implemented_forms as registry

    names = registry()
    return dict(names) if isinstance(names, dict) else {n: True for n in names}


def corpus_cases(paths: Sequence[Path]) -> Dict[str, int]:
    """Vectors per form in the given vector files/folders (missing paths count nothing)."""
    return corpus_counts(paths)[0]


def corpus_counts(paths: Sequence[Path]) -> Tuple[Dict[str, int], Dict[str, Dict[str, int]]]:
    """(vectors per form, vectors per form and oracle). The oracle is the vector's own
    (``final.notes.oracle``, version 2), else its file header's (``oracle``: native), else
    ``agreement`` (version 1: Unicorn and the reference agreed)."""
    counts: Dict[str, int] = {}
    oracles: Dict[str, Dict[str, int]] = {}
    for path in find_vector_files([p for p in paths if p.exists()]):
        header = read_header(path) or {}
        default = str(header.get("oracle", "agreement"))
        for entry in read_vectors(path):
            form = entry.case.form
            if form:
                counts[form] = counts.get(form, 0) + 1
                oracle = entry.expected.notes.get("oracle", default)
                per = oracles.setdefault(form, {})
                per[oracle] = per.get(oracle, 0) + 1
    return counts, oracles


def add_campaign(directory: Path, evidence: Evidence) -> None:
    """Cases and divergences per form from a campaign folder (``x86lab fuzz``)."""
    from differential.report import build

    if not (directory / "campaign.json").is_file():
        raise EvidenceError(f"{directory}: not a campaign folder (no campaign.json)")
    try:
        report = build(directory)
    except (OSError, ValueError, KeyError) as exc:
        raise EvidenceError(f"{directory}: cannot read the campaign ({exc})") from None
    for form, counts in report["forms"].items():
        tested = sum(counts.get(s, 0) for s in CAMPAIGN_CASE_STATUSES)
        evidence.cases[form] = evidence.cases.get(form, 0) + tested
        if counts.get("diverge"):
            evidence.divergent[form] = evidence.divergent.get(form, 0) + counts["diverge"]


def add_known(path: Path, forms: Iterable[str], evidence: Evidence) -> None:
    """Forms named (by glob) in the known-divergences file. An entry for every form
    (``forms = ["*"]``, narrowed by mode or bytes: self-modifying code, real-mode segment
    limits...) says nothing about one opcode; it is listed apart, not painted on every
    cell."""
    from differential.known import KnownListError, load_known

    try:
        entries = load_known(path)
    except KnownListError as exc:
        raise EvidenceError(str(exc)) from None
    names = list(forms)
    for entry in entries:
        if all(pattern == "*" for pattern in entry.groups):
            evidence.cross_cutting.append(entry.id)
            continue
        for name in names:
            if any(fnmatch.fnmatchcase(name, pattern) for pattern in entry.groups):
                evidence.known.setdefault(name, []).append(entry.id)


def gather(forms: Iterable[str], corpus: Sequence[Path], campaign: Optional[Path],
           known: Optional[Path]) -> Evidence:
    """All the evidence for one report."""
    implemented = implemented_forms()
    cases, oracles = corpus_counts(corpus)
    evidence = Evidence(implemented={n for n, ok in implemented.items() if ok},
                        cases=cases, oracles=oracles)
    if campaign is not None:
        add_campaign(campaign, evidence)
    if known is not None:
        add_known(known, forms, evidence)
    return evidence
