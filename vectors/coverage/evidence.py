"""Where the coverage report's evidence comes from: the reference's registry of implemented
forms, the vector corpus, campaign output and the known-divergences file.

Campaign and divergence files belong to ``differential/``; this reads them leniently
(every JSON/JSON Lines object carrying a ``form`` counts, ``divergent``/``status`` fields
mark divergences) so the report works with whatever those files hold, and says so when a
file cannot be read rather than guessing.
"""

from __future__ import annotations

import gzip
import importlib
import json
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, Optional, Sequence, Set

from vectors.coverage.opcode_map import Evidence
from vectors.files import find_vector_files, read_vectors

REGISTRY_CANDIDATES = (("reference.semantics", "IMPLEMENTED"),
                       ("reference.semantics", "implemented_forms"),
                       ("reference.semantics.registry", "IMPLEMENTED"),
                       ("reference.semantics.registry", "implemented_forms"))


class EvidenceError(Exception):
    """A campaign or divergence file that cannot be read; names the file."""


def implemented_forms() -> Set[str]:
    """Names of the forms the reference has semantics for (empty before it has any).

    The reference helper's registry may be a set/dict or a function returning one; the
    first of ``REGISTRY_CANDIDATES`` that exists is used.
    """
    for module_name, attribute in REGISTRY_CANDIDATES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        value: Any = getattr(module, attribute, None)
        if value is None:
            continue
        names = value() if callable(value) else value
        return {n if isinstance(n, str) else getattr(n, "name", str(n)) for n in names}
    return set()


def _add(counts: Dict[str, int], form: str, n: int = 1) -> None:
    if form:
        counts[form] = counts.get(form, 0) + n


def corpus_cases(paths: Sequence[Path]) -> Dict[str, int]:
    """Vectors per form in the given vector files/folders."""
    counts: Dict[str, int] = {}
    for path in find_vector_files([p for p in paths if p.exists()]):
        for entry in read_vectors(path):
            _add(counts, entry.case.form)
    return counts


def _json_objects(path: Path) -> Iterator[Any]:
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as stream:  # type: ignore[operator]
            text = stream.read()
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise EvidenceError(f"{path}: cannot read ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        try:
            data = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise EvidenceError(f"{path}:{exc.lineno}: not JSON or JSON Lines") from None
    yield from _walk(data)


def _walk(data: Any) -> Iterator[Dict[str, Any]]:
    """Every object that names a form, however deeply the report nests it."""
    if isinstance(data, dict):
        if isinstance(data.get("form"), str):
            yield data
        for value in data.values():
            yield from _walk(value)
    elif isinstance(data, list):
        for item in data:
            yield from _walk(item)


def _is_divergence(obj: Dict[str, Any]) -> bool:
    return bool(obj.get("divergent")) or obj.get("status") in ("divergent", "divergence")


def read_reports(files: Iterable[Path], cases: Dict[str, int], divergent: Dict[str, int],
                 all_divergent: bool = False) -> None:
    """Fold campaign/divergence objects into the per-form counts (``all_divergent``: every
    object names a divergence, as in the known-divergences file)."""
    for path in files:
        if any(path.name.endswith(s) for s in (".jsonl.gz", ".jsonl")) and _is_vectors(path):
            for form, n in corpus_cases([path]).items():
                _add(cases, form, n)
            continue
        for obj in _json_objects(path):
            n = obj.get("cases", 1)
            n = n if isinstance(n, int) else 1
            if all_divergent or _is_divergence(obj):
                _add(divergent, obj["form"], obj.get("divergences", 1) or 1)
            else:
                _add(cases, obj["form"], n)


def _is_vectors(path: Path) -> bool:
    from vectors.files import read_header
    try:
        return read_header(path) is not None
    except Exception:
        return False


def gather(corpus: Sequence[Path], campaign: Optional[Path],
           divergences: Optional[Path]) -> Evidence:
    """All the evidence for one report."""
    evidence = Evidence(implemented=implemented_forms(), cases=corpus_cases(corpus))
    if campaign is not None:
        if not campaign.is_dir():
            raise EvidenceError(f"{campaign}: campaign folder not found")
        reports = sorted(p for p in campaign.rglob("*") if p.is_file()
                         and p.name.endswith((".json", ".jsonl", ".json.gz", ".jsonl.gz")))
        read_reports(reports, evidence.cases, evidence.divergent)
    if divergences is not None and divergences.exists():
        read_reports([divergences], {}, evidence.divergent, all_divergent=True)
    return evidence
