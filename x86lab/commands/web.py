"""``x86lab web VERB``: the web demo's local pieces (``build``, ``serve``, ``bench``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from x86lab.cli import UsageError

SERVE_EXAMPLE = """\
example:
  x86lab web serve out/site --port 8000
      then http://127.0.0.1:8000/ ; disk images answer Range requests with 206

Serves DIR like a CDN: single byte ranges (206 / 416), CORS for any origin,
application/wasm and text/javascript types, a year of immutable caching for names with
a content hash (app.3f9a1c2b.js), revalidation for the rest. Never lists folders or
serves dot-files or anything outside DIR.
"""

BUILD_EXAMPLE = """\
example:
  x86lab web build --kernel debian --out web/out
      then: x86lab web serve web/out --port 8000 ; deploy web/out as it is (vercel.json)

Builds only from an image that passed the harness on v86 (boot + shell checks, cached by
the kernel and initramfs sha256); --report FILE takes the proof from an x86lab report
JSON instead, made with the page's memory:
  x86lab report --engines v86 --kernels debian --memory 128 --json r.json
  x86lab web build --report r.json
--skip-gate is for development and marks the manifest as ungated. A saved state (the
page starts at the prompt) is made in Node and cached; --no-state leaves it out.
The tools disk (64 MiB ext2 at /mnt/disk: GNU bash, a test file) is attached by default:
v86 reads it lazily through HTTP Range, or through its 256 KiB chunk files on hosts
without Range, so visitors fetch only what the guest reads; --no-disk leaves it out.
The guest always has a NIC (ne2k); --relay-url wss://relay.example/ names the Wisp
relay (x86lab relay) behind it. The page's ?relay=URL overrides that, ?relay=none
turns it off; without a relay the guest has no network but otherwise works the same.
"""

MEASURE_EXAMPLE = """\
example:
  x86lab web measure web/out --runs 2
      seconds from navigation to a working prompt in headless Chromium, cold and from the
      saved state, bytes fetched, and v86 in Node booting the same image, as a ratio
  x86lab web measure web/out --profile
      the same, and for each page load and the Node boot the time per boot phase
      (download, load, bios, decompressor, kernel, init), busy against idle
  x86lab web measure web/out --profile --html measure.html
      the same, and a page with each profile drawn as a timeline (busy solid, idle pale)
  x86lab web measure web/out --runs 2 --network none,20mbit-40ms
      the page loads twice over: unthrottled, then through Chromium's DevTools network
      emulation at 20 Mbit/s each way with 40 ms RTT (the page and its worker alike);
      each row names its condition (RATE kbit or mbit, then the RTT; default: none)
  x86lab web measure web/out --disk --runs 2
      seconds for the guest to read the lazy disk's 2 MiB test file, bytes fetched,
      through HTTP Range and through the chunk files
  x86lab web measure web/out --bytes
      where the bytes go: every file a cold and a restored page load fetch (bytes on the
      wire, encoding), then what the saved state holds (kernel, BusyBox and the other
      initramfs files, firmware, the kernel's allocations, device state), each part's
      size and its size under the state's zstd settings
"""

BENCH_EXAMPLE = """\
example:
  x86lab web bench --clients 8 --size-mb 64
      prints MB/s for whole-file and 1 MiB range reads, beside python's http.server
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("web", help="the web demo: build the site, serve it like a CDN",
                                   description="The web demo's local tools.")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    parser.set_defaults(handler=lambda args: _need_verb(parser))

    serve = verbs.add_parser("serve", help="serve a folder like a CDN (Range, CORS)",
                             epilog=SERVE_EXAMPLE,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    serve.add_argument("directory", metavar="DIR", type=Path, help="folder to serve")
    serve.add_argument("--port", type=int, required=True, help="TCP port (0: any free)")
    serve.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    serve.add_argument("--quiet", action="store_true", help="do not log each request")
    serve.set_defaults(handler=run_serve)

    build = verbs.add_parser("build", help="assemble the deployable static site",
                             epilog=BUILD_EXAMPLE,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    build.add_argument("--kernel", choices=("tiny", "debian"), default="debian",
                       help="image to boot in the page (default debian)")
    build.add_argument("--out", type=Path, default=Path("web/out"),
                       help="output folder, replaced as a whole (default web/out)")
    build.add_argument("--report", type=Path, default=None,
                       help="an x86lab report JSON proving the image passed on v86")
    build.add_argument("--skip-gate", action="store_true",
                       help="development only: build without a passing harness run")
    build.add_argument("--no-state", action="store_true",
                       help="no saved state: the page always boots from power-on")
    build.add_argument("--no-disk", action="store_true",
                       help="no lazy tools disk (/mnt/disk) in the page")
    build.add_argument("--relay-url", metavar="URL", default=None,
                       help="the page's default Wisp relay, e.g. wss://relay.example/ "
                            "(the page's ?relay= overrides it)")
    build.add_argument("--json", action="store_true", help="print the manifest as JSON")
    build.set_defaults(handler=run_build)

    measure = verbs.add_parser("measure", help="time the built page to a prompt in Chromium",
                               epilog=MEASURE_EXAMPLE,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
    measure.add_argument("site", metavar="DIR", type=Path, nargs="?", default=Path("web/out"),
                         help="a folder written by x86lab web build (default web/out)")
    measure.add_argument("--runs", type=int, default=1, help="page loads of each kind")
    measure.add_argument("--json", action="store_true", help="figures as JSON")
    measure.add_argument("--disk", action="store_true",
                         help="instead: time a read from the lazy disk, Range vs chunk files")
    measure.add_argument("--bytes", action="store_true",
                         help="instead: the files each page load fetches and what the "
                              "saved state holds, part by part")
    measure.add_argument("--profile", action="store_true",
                         help="also where each boot's time went: download, load (wasm "
                              "compile), BIOS, decompressor, kernel, init; busy and idle")
    measure.add_argument("--html", type=Path, metavar="PATH",
                         help="also write the figures as a page, each profile as a timeline")
    measure.add_argument("--network", metavar="LINKS", default="none",
                         help="page loads under each of these comma-separated links: none "
                              "(unthrottled, the default) or RATE-RTT, e.g. 20mbit-40ms")
    measure.set_defaults(handler=run_measure)

    bench = verbs.add_parser("bench", help="measure the server's throughput on loopback",
                             epilog=BENCH_EXAMPLE,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    bench.add_argument("--clients", type=int, default=8, help="parallel clients (default 8)")
    bench.add_argument("--size-mb", type=int, default=64, help="test file size (default 64)")
    bench.add_argument("--json", action="store_true", help="figures as JSON")
    bench.set_defaults(handler=run_bench)


def _need_verb(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    raise UsageError("web needs a verb, e.g. 'x86lab web serve DIR --port 8000'")


def run_serve(args: argparse.Namespace) -> int:
    from web.serve.server import make_server

    if not 0 <= args.port < 65536:
        raise UsageError(f"--port {args.port}: must be 0..65535")
    if not args.directory.is_dir():
        raise UsageError(f"{args.directory}: not a directory (give the folder to serve)")
    try:
        server = make_server(args.directory, args.host, args.port, quiet=args.quiet)
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: "
                         f"{exc.strerror or exc}") from None
    host, port = server.server_address[:2]
    shown = f"[{host}]" if ":" in str(host) else host
    print(f"serving {args.directory} at http://{shown}:{port}/", flush=True)
    with server:
        server.serve_forever()
    return 0


def run_build(args: argparse.Namespace) -> int:
    import json

    from web.build.assemble import build_site
    from web.build.errors import BuildError, GateFailed

    try:
        manifest = build_site(kernel=args.kernel, out=args.out, skip_gate=args.skip_gate,
                              report=args.report, with_state=not args.no_state,
                              with_disk=not args.no_disk, relay_url=args.relay_url)
    except GateFailed as exc:
        print(f"x86lab web build: refused: {exc}", file=sys.stderr)
        return 1
    except BuildError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        print(json.dumps(manifest, indent=1))
        return 0
    total = sum(asset["size"] for asset in manifest["assets"].values()) / 2**20
    state = manifest.get("state")
    gate = manifest["gate"]
    print(f"built {args.out}: {args.kernel} image, v86 {manifest['v86_version']}, "
          f"os/ {total:.1f} MiB, "
          + (f"state {state['size'] / 2**20:.1f} MiB, " if state else "no state, ")
          + (f"disk {manifest['disk']['size'] >> 20} MiB lazy, " if "disk" in manifest
             else "no disk, ")
          + (f"gate passed ({gate['source']})" if gate["passed"] else "gate SKIPPED"))
    return 0


def run_measure(args: argparse.Namespace) -> int:
    from web.build.errors import BuildError
    from web.build.measure import figures_html, measure_site, print_figures
    from web.build.measure_bytes import measure_bytes, print_bytes
    from web.build.measure_disk import measure_disk, print_disk_figures
    from web.build.throttle import parse_conditions

    if args.runs < 1:
        raise UsageError("--runs must be at least 1")
    if args.disk and args.bytes:
        raise UsageError("--disk and --bytes are two different measurements: one at a time")
    if (args.disk or args.bytes) and (args.profile or args.html or args.network != "none"):
        raise UsageError("--profile, --html and --network time page loads to the prompt; "
                         f"not with {'--disk' if args.disk else '--bytes'}")
    try:
        networks = parse_conditions(args.network)
    except ValueError as exc:
        raise UsageError(f"--network: {exc}") from None
    try:
        if args.disk:
            print_disk_figures(measure_disk(args.site, runs=args.runs), as_json=args.json)
        elif args.bytes:
            print_bytes(measure_bytes(args.site), as_json=args.json)
        else:
            figures = measure_site(args.site, runs=args.runs, profile=args.profile,
                                   networks=networks)
            print_figures(figures, as_json=args.json, profile=args.profile)
            if args.html is not None:
                args.html.parent.mkdir(parents=True, exist_ok=True)
                args.html.write_text(figures_html(figures))
    except BuildError as exc:
        raise UsageError(str(exc)) from None
    return 0


def run_bench(args: argparse.Namespace) -> int:
    from web.serve.bench import print_figures, run_benchmark

    if args.clients < 1 or args.size_mb < 1:
        raise UsageError("--clients and --size-mb must be at least 1")
    figures = run_benchmark(clients=args.clients, size=args.size_mb << 20)
    print_figures(figures, as_json=args.json)
    return 0 if figures["failures"] == 0 else 1
