"""``x86lab image build|show``: the bootable Linux images the harness runs."""

from __future__ import annotations

import argparse
import json
from typing import List

from images.build import DEFAULT_BUDGET, KERNELS, BuiltImage, ensure_image
from images.errors import ImageError
from x86lab.cli import UsageError

BUILD_EXAMPLE = """example:
  x86lab image build --kernel tiny
  x86lab image build --kernel all --json
  x86lab image build --kernel debian --overlay ./extra-root --add ./probe:/usr/bin/probe

The first build of the tiny kernel takes a few minutes; later calls with the same inputs
only read the cache and print the same manifest."""


def _kinds(choice: str) -> List[str]:
    return sorted(KERNELS) if choice == "all" else [choice]


def _images(args: argparse.Namespace) -> List[BuiltImage]:
    try:
        return [
            ensure_image(
                kind, args.overlay, args.add, rebuild=args.rebuild, budget=args.budget_mib << 20,
                verify_all=args.verify,
            )
            for kind in _kinds(args.kernel)
        ]
    except ImageError as exc:
        raise UsageError(str(exc)) from exc


def _print(images: List[BuiltImage], as_json: bool, full: bool) -> None:
    if as_json:
        docs = [{"manifest_path": str(img.manifest_path), **img.manifest} for img in images]
        print(json.dumps(docs[0] if len(docs) == 1 else docs, indent=2, sort_keys=True))
        return
    for img in images:
        print(f"{img.kernel_kind}: {img.manifest_path}")
        for label, path, facts in (
            ("kernel", img.kernel, img.manifest["kernel"]),
            ("initrd", img.initrd, img.manifest["initramfs"]),
        ):
            print(f"  {label:7} {path}  {facts['size']:>9,} bytes  sha256 {facts['sha256']}")
        print(f"  cmdline {img.cmdline}")
        if full:
            print(json.dumps(img.manifest, indent=2, sort_keys=True))


def build(args: argparse.Namespace) -> int:
    _print(_images(args), args.json, full=False)
    return 0


def show(args: argparse.Namespace) -> int:
    _print(_images(args), args.json, full=True)
    return 0


def _add_image_options(parser: argparse.ArgumentParser, default_kernel: str) -> None:
    parser.add_argument(
        "--kernel",
        choices=sorted(KERNELS) + ["all"],
        default=default_kernel,
        help=f"which kernel (default: {default_kernel})",
    )
    parser.add_argument(
        "--overlay",
        action="append",
        default=[],
        metavar="DIR",
        help="copy this folder's contents onto the image root (repeatable)",
    )
    parser.add_argument(
        "--add",
        action="append",
        default=[],
        metavar="HOST:GUEST",
        help="put a host file or folder at an absolute guest path (repeatable)",
    )
    parser.add_argument(
        "--budget-mib",
        type=int,
        default=DEFAULT_BUDGET // 2**20,
        metavar="N",
        help="refuse an initramfs larger than N MiB (default: %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print the manifest(s) as JSON")
    parser.add_argument("--verify", action="store_true",
                        help="hash every cached file against its manifest, not just those "
                        "that changed since they were last checked")


def register(subparsers: argparse._SubParsersAction) -> None:
    image = subparsers.add_parser(
        "image",
        help="build Linux images (kernel + initramfs) for the harness",
        description="Build or inspect the Linux images (kernel + BusyBox initramfs), "
        "cached by the hash of their inputs.",
    )
    verbs = image.add_subparsers(dest="verb", metavar="VERB", required=True)
    build_parser = verbs.add_parser(
        "build",
        help="build images the cache lacks and print their outputs",
        description="Build (or find in the cache) an image and print its manifest path, "
        "output sizes and sha256.",
        epilog=BUILD_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_image_options(build_parser, "tiny")
    build_parser.add_argument(
        "--rebuild", action="store_true", help="rebuild the kernel and the image even if cached"
    )
    build_parser.set_defaults(handler=build)
    show_parser = verbs.add_parser(
        "show",
        help="print an image's whole manifest (building it if needed)",
        epilog="example:\n  x86lab image show --kernel debian",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_image_options(show_parser, "tiny")
    show_parser.set_defaults(handler=show, rebuild=False)
