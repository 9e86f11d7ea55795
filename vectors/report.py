"""How replay results are shown: a rich table per run on stdout, or one JSON document."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, List

from vectors.replay import FileResult

MAX_SHOWN_FAILURES = 20  # per run; the JSON output always has them all


@contextmanager
def progress_bar(total: int, what: str) -> Iterator[Callable[[], None]]:
    """A progress bar on stderr (only on a terminal); yields the function that advances it."""
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True,
                  disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task(what, total=total)
        yield lambda: bar.advance(task)


def results_json(results: List[FileResult], engine: str) -> Dict[str, Any]:
    return {
        "engine": engine,
        "passed": sum(r.passed for r in results),
        "failed": sum(r.failed for r in results),
        "files": [{
            "path": str(r.path), "passed": r.passed, "failed": r.failed,
            "failures": [{"line": f.line, "name": f.name, "problems": f.problems,
                          "reproducer": f.reproducer} for f in r.failures],
        } for r in results],
    }


def print_results(results: List[FileResult], engine: str) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    table = Table(title=f"vectors on {engine}")
    table.add_column("file")
    table.add_column("passed", justify="right")
    table.add_column("failed", justify="right")
    for result in results:
        failed = f"[red]{result.failed}[/red]" if result.failed else "0"
        table.add_row(str(result.path), str(result.passed), failed)
    console.print(table)
    failures = [f for r in results for f in r.failures]
    for failure in failures[:MAX_SHOWN_FAILURES]:
        console.print(f"FAIL {failure.path}:{failure.line} {failure.name}: "
                      f"{'; '.join(failure.problems)}", markup=False, soft_wrap=True)
        console.print(f"  reproduce: {failure.reproducer}", markup=False, soft_wrap=True)
    if len(failures) > MAX_SHOWN_FAILURES:
        console.print(f"... and {len(failures) - MAX_SHOWN_FAILURES} more failures (--json "
                      "lists them all)")
    total = sum(r.passed for r in results)
    console.print(f"{total} passed, {len(failures)} failed in {len(results)} file(s)")
