"""How replay results are shown: a rich table per run on stdout, or one JSON document."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

from vectors.files import SUFFIXES
from vectors.replay import FileResult

MAX_SHOWN = 20  # failures, and malformed lines, per run; the JSON output always has them all


@contextmanager
def progress_bar(total: int, what: str) -> Iterator[Callable[[], None]]:
    """A progress bar on stderr (only on a terminal); yields the function that advances it."""
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True,
                  disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task(what, total=total)
        yield lambda: bar.advance(task)


def no_vectors_reason(results: List[FileResult], only: Optional[str],
                      searched: Sequence[Path] = ()) -> Optional[str]:
    """Why the run replayed nothing (an empty run is never a pass), or None if it replayed."""
    if any(r.passed or r.failed or r.known for r in results):
        return None
    if not results:
        where = f" under {', '.join(map(str, searched))}" if searched else ""
        return f"no vectors: no vector files ({', '.join('*' + s for s in SUFFIXES)}){where}"
    if only is not None:
        return f"no vectors: none named {only!r} in {len(results)} file(s)"
    return f"no vectors in {len(results)} file(s)"


def by_form(results: List[FileResult]) -> Dict[str, Dict[str, Any]]:
    """Per instruction form: passed, failed and skipped counts, each failure (name,
    problems, reproducer) and each skip reason with how many vectors it covers."""
    forms: Dict[str, Dict[str, Any]] = {}

    def row(form: str) -> Dict[str, Any]:
        return forms.setdefault(form or "?", {"passed": 0, "failed": 0, "skipped": 0,
                                              "known": 0, "failures": [], "skip_reasons": {},
                                              "known_entries": {}})

    for result in results:
        for form in result.passed_forms:
            row(form)["passed"] += 1
        for failure in result.failures:
            entry = row(failure.form)
            entry["failed"] += 1
            entry["failures"].append({"path": str(failure.path), "line": failure.line,
                                      "name": failure.name, "problems": failure.problems,
                                      "reproducer": failure.reproducer})
        for skip in result.skipped:
            entry = row(skip.form)
            entry["skipped"] += 1
            entry["skip_reasons"][skip.reason] = entry["skip_reasons"].get(skip.reason, 0) + 1
        for known in result.known:
            entry = row(known.form)
            entry["known"] += 1
            entry["known_entries"][known.entry] = entry["known_entries"].get(known.entry, 0) + 1
    return dict(sorted(forms.items()))


def known_counts(results: List[FileResult]) -> Dict[str, int]:
    """Vectors per known-differences entry that explained them, most first."""
    counts: Dict[str, int] = {}
    for known in (k for r in results for k in r.known):
        counts[known.entry] = counts.get(known.entry, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def results_json(results: List[FileResult], engine: str, only: Optional[str] = None,
                 searched: Sequence[Path] = ()) -> Dict[str, Any]:
    return {
        "engine": engine,
        "passed": sum(r.passed for r in results),
        "failed": sum(r.failed for r in results),
        "skipped": sum(len(r.skipped) for r in results),
        "known": sum(len(r.known) for r in results),
        "known_entries": known_counts(results),
        "malformed": sum(len(r.malformed) for r in results),
        "no_vectors": no_vectors_reason(results, only, searched),
        "forms": by_form(results),
        "files": [{
            "path": str(r.path), "passed": r.passed, "failed": r.failed,
            "failures": [{"line": f.line, "name": f.name, "problems": f.problems,
                          "reproducer": f.reproducer} for f in r.failures],
            "malformed": [{"line": m.line, "problem": m.problem} for m in r.malformed],
            "skipped": [{"line": k.line, "name": k.name, "reason": k.reason}
                        for k in r.skipped],
            "known": [{"line": k.line, "name": k.name, "entry": k.entry,
                       "problems": k.problems, "reproducer": k.reproducer}
                      for k in r.known],
        } for r in results],
    }


def print_results(results: List[FileResult], engine: str, only: Optional[str] = None,
                  searched: Sequence[Path] = ()) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    table = Table(title=f"vectors on {engine}")
    for column in ("file", "passed", "failed", "known", "skipped", "malformed"):
        table.add_column(column, justify="left" if column == "file" else "right")
    for result in results:
        failed = f"[red]{result.failed}[/red]" if result.failed else "0"
        bad = f"[red]{len(result.malformed)}[/red]" if result.malformed else "0"
        skipped = f"[yellow]{len(result.skipped)}[/yellow]" if result.skipped else "0"
        table.add_row(str(result.path), str(result.passed), failed, str(len(result.known)),
                      skipped, bad)
    console.print(table)
    failures = [f for r in results for f in r.failures]
    for failure in failures[:MAX_SHOWN]:
        console.print(f"FAIL {failure.path}:{failure.line} {failure.name}: "
                      f"{'; '.join(failure.problems)}", markup=False, soft_wrap=True)
        console.print(f"  reproduce: {failure.reproducer}", markup=False, soft_wrap=True)
    if len(failures) > MAX_SHOWN:
        console.print(f"... and {len(failures) - MAX_SHOWN} more failures (--json lists them "
                      "all)")
    malformed = [m for r in results for m in r.malformed]
    for problem in malformed[:MAX_SHOWN]:
        console.print(f"MALFORMED {problem}", markup=False, soft_wrap=True)
    if len(malformed) > MAX_SHOWN:
        console.print(f"... and {len(malformed) - MAX_SHOWN} more malformed lines (--json "
                      "lists them all)")
    reasons: Dict[str, int] = {}
    for skip in (k for r in results for k in r.skipped):
        reasons[skip.reason] = reasons.get(skip.reason, 0) + 1
    for reason, count in sorted(reasons.items(), key=lambda kv: -kv[1]):
        console.print(f"SKIPPED {count} vector(s): {reason}", markup=False, soft_wrap=True)
    for entry, count in known_counts(results).items():
        console.print(f"KNOWN {count} vector(s): {entry}", markup=False, soft_wrap=True)
    total = sum(r.passed for r in results)
    skipped = sum(reasons.values())
    known = sum(len(r.known) for r in results)
    also = f", {skipped} skipped (the engine cannot take their state)" if skipped else ""
    known_text = f", {known} known (a listed difference of this engine)" if known else ""
    console.print(f"{total} passed, {len(failures)} failed{known_text}, {len(malformed)} "
                  f"malformed{also} in {len(results)} file(s)")
    reason = no_vectors_reason(results, only, searched)
    if reason:
        console.print(reason, markup=False, soft_wrap=True)
