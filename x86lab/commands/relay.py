"""``x86lab relay``: run the Wisp network relay for v86 (or benchmark it on loopback)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Callable, Optional

from x86lab.cli import UsageError

EXAMPLE = """\
examples:
  x86lab relay --listen 127.0.0.1:8001
      v86 then uses net_device: {type: "virtio", relay_url: "wisp://127.0.0.1:8001/"}
  x86lab relay --listen 0.0.0.0:8001 --origin https://x86lab.example
  x86lab relay --listen 127.0.0.1:8001 --allow 127.0.0.1:8080   (admit one local server)
  x86lab relay --listen 127.0.0.1:8001 --allow 192.0.2.10:80=127.0.0.1:8080
      (a guest's 192.0.2.10:80 reaches the host's 127.0.0.1:8080: tests, local demos)
  x86lab relay --listen 127.0.0.1:8001 --repo
      (also serve a package repository on 127.0.0.1 with bash-static from Debian; the
      guest reaches it as http://192.0.2.10/ through this relay only: open the demo
      with ?relay=ws://127.0.0.1:8001/ and type  x86lab-get bash-static)
  x86lab relay --bench 50        (load benchmark on loopback; prints connections/s, MB/s)
  x86lab relay --guest-bench tiny   (v86 in Node: boot cost of the NIC, DHCP lease time
      and wget throughput through the relay, beside the host's own fetch)

Destinations must be public unicast addresses (no loopback, private, link-local, CGNAT,
multicast, reserved, or IPv6 forms embedding them) unless --allow admits the exact
IP:PORT (or maps it, with SRC=DST, to another exact IP:PORT). Without --origin, only
pages from localhost (and clients sending no Origin, such as Node) may connect.
Refusals are logged as JSON lines on stderr.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "relay", help="run the Wisp v1 network relay for v86",
        description="Wisp v1 relay: carries a browser guest's TCP streams over one "
                    "WebSocket, to public destinations only.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listen", metavar="HOST:PORT",
                        help="address to listen on, e.g. 127.0.0.1:8001")
    parser.add_argument("--allow", metavar="IP:PORT[=IP:PORT]", action="append", default=[],
                        help="admit this exact destination although policy refuses it; "
                             "with =IP:PORT, connect there instead")
    parser.add_argument("--origin", metavar="URL", action="append", default=[],
                        help="accepted page origin (repeatable; '*' accepts any)")
    parser.add_argument("--max-connections", type=int, default=8, metavar="N",
                        help="WebSockets per client IP (default 8)")
    parser.add_argument("--max-streams", type=int, default=64, metavar="N",
                        help="concurrent streams per client IP (default 64)")
    parser.add_argument("--rate", type=int, default=4 * 1024 * 1024, metavar="BYTES",
                        help="bytes per second per client IP (default 4 MiB)")
    parser.add_argument("--idle", type=float, default=120.0, metavar="SECONDS",
                        help="close streams idle this long (default 120)")
    parser.add_argument("--repo", action="store_true",
                        help="also serve a package repository on 127.0.0.1 (a free port) "
                             "and map the guest's 192.0.2.10:80 to it, for the image's "
                             "x86lab-get")
    parser.add_argument("--package", metavar="NAME", action="append", default=[],
                        help="--repo: Debian i386 package to serve (repeatable; default "
                             "bash-static); statically linked ones run in the image")
    parser.add_argument("--repo-port", type=int, default=0, metavar="PORT",
                        help="--repo: the repository's 127.0.0.1 port (default: any free)")
    parser.add_argument("--bench", type=int, metavar="CLIENTS",
                        help="instead of serving, benchmark CLIENTS concurrent clients "
                             "on loopback and print the figures")
    parser.add_argument("--guest-bench", metavar="KERNEL", choices=("tiny", "debian"),
                        help="instead of serving, boot KERNEL on v86 without a NIC, with "
                             "one, and with one behind a relay; print boot, lease and wget "
                             "figures")
    parser.add_argument("--size", type=int, default=1_000_000, metavar="BYTES",
                        help="--guest-bench: bytes the guest downloads (default 1000000)")
    parser.add_argument("--runs", type=int, default=1, metavar="N",
                        help="--guest-bench: boots per configuration (default 1)")
    parser.add_argument("--json", action="store_true", help="benchmark figures as JSON")
    parser.add_argument("--quiet", action="store_true", help="log refusals only")
    parser.set_defaults(handler=run)


def _split_listen(text: str) -> tuple:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise UsageError(f"--listen {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8001")
    return host.strip("[]"), int(port)


def _config(args: argparse.Namespace):
    from web.relay.config import RelayConfig
    from web.relay.limits import Limits
    from web.relay.policy import Allowlist

    try:
        limits = Limits(connections_per_client=args.max_connections,
                        streams_per_client=args.max_streams,
                        bytes_per_second=args.rate, idle_seconds=args.idle)
        allowlist = Allowlist.parse(args.allow)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return RelayConfig(allowlist=allowlist, origins=tuple(args.origin), limits=limits)


def _guest_bench(args: argparse.Namespace) -> int:
    from web.relay import guest_bench

    logging.getLogger().setLevel(logging.WARNING)  # the relay's per-stream lines
    if args.size < 1 or args.runs < 1:
        raise UsageError("--size and --runs must be at least 1")
    figures = guest_bench.measure(args.guest_bench, args.size, args.runs)
    guest_bench.print_figures(figures, as_json=args.json)
    rows = figures["runs"].values()
    return 0 if all(row.get("sha256_ok", True) for group in rows for row in group) else 1


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        stream=sys.stderr, format="%(message)s")
    logging.getLogger("websockets").setLevel(logging.WARNING)
    if args.bench is not None:
        from web.relay.bench import print_figures, run_benchmark

        if args.bench < 1:
            raise UsageError("--bench needs at least 1 client")
        figures = asyncio.run(run_benchmark(clients=args.bench))
        print_figures(figures, as_json=args.json)
        return 0 if figures["failures"] == 0 else 1
    if args.guest_bench is not None:
        return _guest_bench(args)
    if not args.listen:
        raise UsageError("--listen HOST:PORT is required (or --bench CLIENTS)")
    host, port = _split_listen(args.listen)
    if args.repo:
        return _serve_with_repository(args, host, port)
    if args.package or args.repo_port:
        raise UsageError("--package and --repo-port go with --repo")
    return _serve(args, host, port)


def _serve(args: argparse.Namespace, host: str, port: int,
           announce: Optional[Callable[[int], None]] = None) -> int:
    from web.relay.server import Relay, run_forever

    relay = Relay(_config(args))
    try:
        asyncio.run(run_forever(relay, host, port, announce))
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.listen}: {exc.strerror or exc}") from None
    return 0


def _serve_with_repository(args: argparse.Namespace, host: str, port: int) -> int:
    """The relay plus a package repository on 127.0.0.1, admitted as one exact mapped
    destination (the guest's stand-in), so the relay's policy is otherwise unchanged."""
    from web.relay.events import log_event
    from web.relay.guest_check import STAND_IN, redirect_to
    from web.relay.repository import (
        DEFAULT_PACKAGES,
        RepositoryError,
        cached_debs,
        serving_repository,
    )

    if not 0 <= args.repo_port < 65536:
        raise UsageError("--repo-port must be 0..65535")
    names = args.package or list(DEFAULT_PACKAGES)
    try:
        debs = cached_debs(names)
        with serving_repository(debs, args.repo_port) as served:
            args.allow = [*args.allow, redirect_to(served.port)]
            listed = [f"{p.name} {p.version}" for p in served.packages]
            log_event("repository", url=served.url, guest_url=f"http://{STAND_IN}/",
                      packages=listed)

            def announce(bound: int) -> None:
                where = f"[{host}]" if ":" in host else host
                print(f"x86lab relay: packages {', '.join(listed)} on {served.url} "
                      f"(127.0.0.1 only); the guest reaches them as http://{STAND_IN}/ "
                      f"through this relay.\n  Open the demo with ?relay=ws://{where}:"
                      f"{bound}/ and type in the guest: x86lab-get {names[0]}", flush=True)

            return _serve(args, host, port, announce)
    except RepositoryError as exc:
        raise UsageError(str(exc)) from None
