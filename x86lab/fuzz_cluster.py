"""``x86lab fuzz --campaign URL``: join, watch or report a campaign shared through Redis
(the fuzz command hands over to this module; it registers no command of its own)."""

from __future__ import annotations

import argparse
import json
import sys
import time

from x86lab.cli import EXIT_FAILURE, EXIT_OK, UsageError

STATUS_INTERVAL = 2.0  # seconds between live status refreshes


def run_cluster(args: argparse.Namespace) -> int:
    from differential.campaign_files import CampaignError

    try:
        from differential.cluster import connect
    except ImportError as exc:
        raise UsageError(f"--campaign needs the campaign extra (pip install -e '.[campaign]'): "
                         f"{exc}") from None
    try:
        client = connect(args.campaign)
        if args.action == "status":
            return _status(client, args.once)
        if args.action == "report":
            return _report(client, args)
        return _join(args)
    except CampaignError as exc:
        raise UsageError(str(exc)) from None


def _join(args: argparse.Namespace) -> int:
    from differential.cluster import ClusterPlan, join
    from differential.cluster_view import failed_batches, refusals
    from differential.known import KnownListError, PinnedList

    if args.jobs < 1 or args.minutes <= 0:
        raise UsageError("--jobs must be at least 1 and --minutes above 0")
    plan = ClusterPlan(seed=args.seed, forms=args.forms)
    try:  # the list this joiner pins if it starts the campaign
        known = PinnedList.read(args.known) if args.known else PinnedList.read()
    except KnownListError as exc:
        raise UsageError(f"--known: {exc}") from None
    print(f"x86lab fuzz: joining {args.campaign} with {args.jobs} workers for "
          f"{args.minutes:g} min (x86lab fuzz status --campaign {args.campaign})",
          file=sys.stderr)
    failures = join(args.campaign, plan, args.jobs, args.minutes,
                    say=lambda line: print(line, file=sys.stderr), known=known)
    from differential.cluster import connect, key

    client = connect(args.campaign)
    failed = failed_batches(client) + refusals(client)
    for line in failures + failed:
        print(f"x86lab fuzz: {line}", file=sys.stderr)
    divergences = client.hlen(key("divergences"))
    print(f"campaign: {client.scard(key('done'))} batches done, {divergences} divergences "
          f"stored; x86lab fuzz report --campaign {args.campaign} --out DIR")
    return EXIT_FAILURE if failures or failed or divergences else EXIT_OK


def _status(client, once: bool) -> int:
    from rich.console import Console
    from rich.live import Live

    from differential.cluster_view import busy_rates, rates_between, render, snapshot

    state = snapshot(client)
    if once:
        Console().print(render(state, busy_rates(state)))
        return EXIT_OK
    try:
        with Live(render(state, busy_rates(state)), refresh_per_second=2) as live:
            while True:
                time.sleep(STATUS_INTERVAL)
                later = snapshot(client)
                live.update(render(later, rates_between(state, later, STATUS_INTERVAL)))
                state = later
    except KeyboardInterrupt:
        return EXIT_OK


def _report(client, args: argparse.Namespace) -> int:
    from differential.campaign_files import usable_directory
    from differential.cluster_view import materialise
    from differential.report import write

    if args.out is None:
        raise UsageError("fuzz report --campaign URL needs --out DIR (where it writes "
                         "report.md, report.json and the divergence files)")
    usable_directory(args.out)
    failed = materialise(client, args.out)
    report = write(args.out, worker_failures=failed)
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(f"{report['cases']} cases; {report['divergences']} divergences in "
              f"{report['divergent_forms']} forms; {len(failed)} failed batches or refused "
              f"workers; report: "
              f"{args.out / 'report.md'}")
    return EXIT_FAILURE if report["divergences"] or failed else EXIT_OK
