"""``x86lab coverage``: the opcode maps, each cell implemented / tested / divergent / missing."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ground.cache import REPO_ROOT
from x86lab.cli import EXIT_OK, UsageError

EXAMPLE = """example:
  x86lab coverage --html out/coverage.html --json out/coverage.json
  x86lab coverage --campaign out/campaign   # a folder written by 'x86lab fuzz'"""
# Every committed corpus: version 1 (Unicorn and the reference agreed), the one this CPU
# decided, and version 2 (system and x87 forms, oracle per vector).
DEFAULT_CORPORA = [REPO_ROOT / "vectors" / name for name in ("corpus", "corpus-native",
                                                             "corpus-v2")]
DEFAULT_KNOWN = REPO_ROOT / "differential" / "known_divergences.toml"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "coverage", help="opcode-map coverage: implemented, tested, divergent",
        description=__doc__, epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the maps as JSON")
    parser.add_argument("--html", type=Path, metavar="PATH", help="write a self-contained page")
    parser.add_argument("--corpus", type=Path, action="append", metavar="PATH",
                        help="vector files/folders counted as tested (default: vectors/corpus, "
                             "vectors/corpus-native and vectors/corpus-v2)")
    parser.add_argument("--campaign", type=Path, metavar="DIR",
                        help="campaign reports whose cases count as tested")
    parser.add_argument("--known", type=Path, default=DEFAULT_KNOWN, metavar="PATH",
                        help=f"known-divergences file (default {DEFAULT_KNOWN})")
    parser.add_argument("--quiet", action="store_true", help="no terminal tables")
    parser.set_defaults(handler=coverage_command)


def coverage_command(args: argparse.Namespace) -> int:
    from differential.coverage.evidence import EvidenceError, gather
    from differential.coverage.opcode_map import build_map, forms_from_table, group_rows
    from differential.coverage.render import (
        MAPS,
        maps_html,
        maps_json,
        print_groups,
        print_maps,
    )
    from vectors.files import VectorFileError

    try:
        from reference.isa.table import FORMS
    except ImportError as exc:
        raise UsageError(f"cannot read the opcode table reference.isa.table ({exc})") from None
    facts = forms_from_table(FORMS)
    known = args.known if args.known.exists() else None
    try:
        evidence = gather([f.name for f in facts], args.corpus or DEFAULT_CORPORA,
                          args.campaign, known)
    except (EvidenceError, VectorFileError) as exc:
        raise UsageError(str(exc)) from None
    maps = {title: build_map(facts, evidence, two_byte) for title, two_byte in MAPS}
    groups = group_rows(facts, evidence)
    if not args.quiet:
        print_maps(maps, evidence.cross_cutting)
        print_groups(groups)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(maps_json(maps, evidence.cross_cutting, groups),
                                        indent=1) + "\n")
    if args.html:
        args.html.parent.mkdir(parents=True, exist_ok=True)
        note = (f"{len(evidence.implemented)} forms implemented, "
                f"{sum(evidence.cases.values())} cases; known divergences for all forms "
                f"(under conditions): {', '.join(evidence.cross_cutting) or 'none'}")
        args.html.write_text(maps_html(maps, note=note))
    return EXIT_OK
