"""Rerun saved divergences: ``python -m differential.replay FILE...`` (also
``x86lab fuzz --replay FILE``). Exit 1 while any still diverges unexplained, 0 when every
case agrees or matches an entry of ``known_divergences.toml`` (an accepted difference with
its evidence: a campaign's triage step turns divergences into known ones, and replaying
them afterwards should say the campaign is clean)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, List, Optional, Sequence

from differential.check import AGREE, KNOWN, Checker
from differential.corpus import CorpusError, load


def replay(paths: Sequence[Path], checkers: List[Checker],
           say: Callable[[str], None] = print) -> int:
    """Judge each saved case with every checker; returns how many files still diverge
    unexplained (neither agreeing nor matching a known divergence) with at least one."""
    failing = 0
    cases = [(path, load(path)[0]) for path in paths]  # a bad file stops us before any run
    for path, case in cases:
        verdicts = [(checker, checker.check(case)) for checker in checkers]
        for checker, verdict in verdicts:
            if verdict.status == AGREE:
                say(f"agree    [{checker.peer.name}] {path}")
            else:
                say(f"{verdict.status:<8} [{checker.peer.name}] {verdict.line or path}")
        failing += any(verdict.status not in (AGREE, KNOWN) for _checker, verdict in verdicts)
    return failing


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print("usage: python -m differential.replay FILE...", file=sys.stderr)
        return 2
    from differential.suite import checkers

    try:
        return 1 if replay([Path(a) for a in args], checkers()) else 0
    except CorpusError as exc:
        print(f"replay: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
