"""BusyBox's own testsuite (from the ``busybox`` Debian source package), run against the
image's busybox binary: in the guest, and natively on this machine (the same static i386
binary) for the expected verdicts. A test that passes natively and fails in a guest is a
difference; the testsuite's own ``PASS:``/``FAIL:``/``SKIPPED:`` lines are the results.
"""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from conformance.sources import SourceError, extract, source_version, upstream_tarball
from x86lab.cache import cache_dir

PACKAGE = "busybox"
VERDICTS = ("PASS", "FAIL", "SKIPPED", "UNTESTED")
TESTING_CALL = re.compile(r"^\s*testing\b", re.MULTILINE)  # testing.sh's one-test helper
# Arguments: files folder, busybox binary, scratch folder, output file, applets to test.
SCRIPT = """#!/bin/sh
files=$1 busybox=$2 work=$3 out=$4; shift 4
rm -rf "$work"; mkdir -p "$work"; cd "$work" || exit 2
"$busybox" tar -xf "$files/busybox-testsuite.tar" || exit 2
ln -s "$busybox" "$work/busybox"; cp "$files/busybox.config" "$work/.config"
cd testsuite || exit 2
: > "$out"
status=0
for applet in "$@"; do
    bindir="$work" "$busybox" timeout 300 "$busybox" sh ./runtest "$applet" \
        >> "$out" 2>&1 && rc=0 || rc=$?
    [ "$rc" -eq 143 ] && echo "runtest-timeout=$applet" >> "$out"
    [ "$rc" -ne 0 ] && status=$rc
done
echo "runtest-status=$status" >> "$out"
"""
"""One runtest per applet, each under BusyBox's ``timeout`` (300 s; natively the slowest
takes seconds): an applet whose test hangs in a guest costs that applet's remaining
verdicts ("not reached" in the report) instead of the whole suite's time."""


def busybox_binary() -> Path:
    """The image's busybox (the busybox-static:i386 package the image builder uses)."""
    from images import debs
    from images.build import BUSYBOX_PACKAGE

    store = cache_dir("images")
    package = debs.resolve(BUSYBOX_PACKAGE, store)
    target = cache_dir("conformance") / "bin" / f"busybox-{package.sha256[:16]}"
    if not target.exists():
        deb = debs.download(package, store / "debs")
        with tempfile.TemporaryDirectory() as scratch:
            tree = debs.extract(deb, Path(scratch))
            target.write_bytes((tree / "bin" / "busybox").read_bytes())
        target.chmod(0o755)
    return target


def _debian_config() -> bytes:
    """Debian's build configuration for busybox-static (the testsuite skips by it)."""
    version = source_version(PACKAGE).split(":")[-1]
    store = cache_dir("conformance") / "src"
    found = sorted(store.glob(f"{PACKAGE}_{version}.debian.tar.*"))
    if not found:
        upstream_tarball(PACKAGE)  # downloads the whole source package
        found = sorted(store.glob(f"{PACKAGE}_{version}.debian.tar.*"))
    if not found:
        raise SourceError(f"no {PACKAGE}_{version}.debian.tar.* in {store}")
    with tarfile.open(found[0]) as archive:
        parts = [archive.extractfile(f"debian/config/{name}") for name in
                 ("os/linux", "pkg/static")]
        return b"".join(part.read() for part in parts if part is not None)


def suite_files() -> Dict[str, bytes]:
    """The testsuite (as a tar), the config and the runner script, for the overlay."""
    folder = extract(PACKAGE, "testsuite")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.add(folder, arcname="testsuite")
    return {"busybox-testsuite.tar": buffer.getvalue(), "busybox.config": _debian_config(),
            "busybox-suite.sh": SCRIPT.encode()}


def applets(limit: Optional[int] = None) -> List[str]:
    """The applets whose tests run (``NAME.tests`` files): all of them by name, or with
    ``limit`` the ``limit`` applets with the most ``testing`` calls among those Debian's
    configuration builds. A bounded run then yields verdicts (the first by name,
    ``all_sourcecode``, needs the source tree and prints none)."""
    folder = extract(PACKAGE, "testsuite")
    names = sorted(p.name[:-len(".tests")] for p in folder.glob("*.tests"))
    if limit is None:
        return names
    config = _debian_config().decode("utf-8", "replace")
    built = [name for name in names if re.search(
        rf"^CONFIG_{re.escape(name.upper().replace('-', '_'))}=y", config, re.MULTILINE)]
    calls = {name: len(TESTING_CALL.findall((folder / f"{name}.tests").read_text(
        "utf-8", "replace"))) for name in built}
    return sorted((name for name in built if calls[name]), key=lambda n: (-calls[n], n))[:limit]


def guest_command(folder: str, selected: Sequence[str], out: str = "/tmp/busybox.out") -> str:
    return (f"sh {folder}/busybox-suite.sh {folder} /bin/busybox /tmp/bbsuite {out} "
            + " ".join(selected))


def run_natively(selected: Sequence[str], timeout: float = 900.0) -> str:
    """The testsuite's output with the same busybox binary on this machine, cached.

    The ``.tests`` files start with ``#!/bin/sh`` and use ``echo -ne``: they need busybox
    as /bin/sh, as in the guest. A private mount namespace (``unshare --mount``) binds it
    there for this run only; the host's /bin/sh is untouched.
    """
    binary = busybox_binary()
    files = suite_files()
    key = hashlib.sha256(binary.name.encode() + " ".join(selected).encode() + b"".join(
        hashlib.sha256(files[name]).digest() for name in sorted(files))).hexdigest()[:16]
    cached = cache_dir("conformance") / "expected" / f"busybox-{key}.txt"
    if cached.exists():
        return cached.read_text("utf-8")
    with tempfile.TemporaryDirectory(prefix="x86lab-bb-") as scratch:
        folder = Path(scratch) / "files"
        folder.mkdir()
        for name, data in files.items():
            (folder / name).write_bytes(data)
        out = Path(scratch) / "out.txt"
        inner = (f'mount --bind "{binary}" /bin/sh && exec "{binary}" sh '
                 f'"{folder}/busybox-suite.sh" "{folder}" "{binary}" "{scratch}/work" "{out}" '
                 + " ".join(selected))
        done = subprocess.run(["unshare", "--mount", "sh", "-c", inner], capture_output=True,
                              text=True, timeout=timeout)
        if not out.exists():
            raise SourceError(f"the busybox testsuite did not run natively: "
                              f"{done.stderr.strip()[-300:]} (needs root for unshare --mount)")
        text = out.read_text("utf-8", "replace")
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text(text, "utf-8")
    return text


def verdicts(output: str) -> Dict[str, str]:
    """test name -> PASS/FAIL/SKIPPED/UNTESTED from runtest's output."""
    found: Dict[str, str] = {}
    for line in output.splitlines():
        word, sep, name = line.partition(": ")
        if sep and word in VERDICTS:
            found[name.strip()] = word
    return found
