"""BusyBox's own testsuite (from the ``busybox`` Debian source package), run against the
image's busybox binary: in the guest, and natively on this machine (the same static i386
binary) for the expected verdicts. A test that passes natively and fails in a guest is a
difference; the testsuite's own ``PASS:``/``FAIL:``/``SKIPPED:`` lines are the results.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from conformance.sources import SourceError, extract, source_version, upstream_tarball
from differential.cpu_identity import this_cpu
from ground.cache import cache_dir, cache_file

PACKAGE = "busybox"
VERDICTS = ("PASS", "FAIL", "SKIPPED", "UNTESTED")
TESTING_CALL = re.compile(r"^\s*testing\b", re.MULTILINE)  # testing.sh's one-test helper
ENVIRONMENT = ("HOME=/root", "PATH=/sbin:/bin:/usr/sbin:/usr/bin", "SHELL=/bin/sh",
               "TERM=vt100", "LANG=C.UTF-8")
"""The one environment every run gets, in a guest and natively (``env -i``): the tests
read $SHELL (taskset) and take Unicode mode from $LANG (expand, fold, ls...), and a
guest's shell and the host's differ in both."""
LIMIT_SECONDS = 300
"""Each applet's time limit by default (``x86lab conformance --busybox-limit``)."""
# Arguments: files folder, busybox binary, scratch folder, output file, time limit per
# applet (seconds), applets to test.
SCRIPT = """#!/bin/sh
files=$1 busybox=$2 work=$3 out=$4 limit=$5; shift 5
rm -rf "$work"; mkdir -p "$work"; cd "$work" || exit 2
"$busybox" tar -xf "$files/busybox-testsuite.tar" || exit 2
ln -s "$busybox" "$work/busybox"; cp "$files/busybox.config" "$work/.config"
cd testsuite || exit 2
: > "$out"
status=0
for applet in "$@"; do
    echo "runtest-applet=$applet" >> "$out"
    t0=$("$busybox" cut -d' ' -f1 /proc/uptime)
    "$busybox" env -i @ENVIRONMENT@ bindir="$work" \\
        "$busybox" timeout "$limit" "$busybox" setsid "$busybox" sh -c \\
        'echo $$ > "$0"; exec "$@"' "$work/session" "$busybox" sh ./runtest -v "$applet" \\
        < /dev/null >> "$out" 2>&1 && rc=0 || rc=$?
    "$busybox" kill -KILL -"$("$busybox" cat "$work/session")" 2>/dev/null
    t1=$("$busybox" cut -d' ' -f1 /proc/uptime)
    echo "runtest-time=$applet $t0 $t1" >> "$out"
    [ "$rc" -eq 143 ] && echo "runtest-timeout=$applet" >> "$out"
    [ "$rc" -ne 0 ] && status=$rc
done
echo "runtest-status=$status" >> "$out"
""".replace("@ENVIRONMENT@", " ".join(ENVIRONMENT))
"""One runtest per applet, each under BusyBox's ``timeout``: an applet whose test hangs
in a guest costs that applet's remaining verdicts instead of the whole suite's time. Each
runtest is a session of its own, killed whole afterwards: ``timeout`` kills only runtest's
shell, and a cut-off applet's test processes (bc's pipelines) ran on beside the next
applets and deleted their files (v86's "factor 2^62-1" failed with "diff: can't stat
'expected'").
Each applet's start and end (/proc/uptime) tell a slow engine from a hung one. Verbose
(``-v``), so a failing test's diff comes back for the report; stdin is /dev/null, as bc
reads it after its files (from a guest's console it would wait for ever)."""


def busybox_binary() -> Path:
    """The image's busybox (the busybox-static:i386 package the image builder uses)."""
    from images import debs
    from images.build import BUSYBOX_PACKAGE

    store = cache_dir("images")
    package = debs.resolve(BUSYBOX_PACKAGE, store)
    target = cache_file("conformance", "bin", f"busybox-{package.sha256[:16]}")
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


def guest_command(folder: str, selected: Sequence[str], limit: int = LIMIT_SECONDS,
                  out: str = "/tmp/busybox.out") -> str:
    return (f"sh {folder}/busybox-suite.sh {folder} /bin/busybox /tmp/bbsuite {out} {limit} "
            + " ".join(selected))


NATIVE_DEVICES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8),
                  ("urandom", 1, 9), ("tty", 5, 0))
"""Device nodes of the native root (the guest's devtmpfs has these and more)."""


def native_root(folder: Path, files: Dict[str, bytes]) -> Path:
    """The guest image's root (``images.rootfs.base_entries``: the same busybox, /bin/false
    a busybox link, no zip) written under ``folder``, with the suite's files in /opt/x86lab.

    The native oracle runs in it (chroot) so that a test sees the same files in both
    places; on the host's own root, tests that use zip or GNU false passed natively and
    failed in every guest. Device nodes are created, not bind-mounted: nothing of the host
    is reachable through the folder when it is deleted."""
    import stat

    from images import rootfs

    root = folder / "root"
    for entry in rootfs.base_entries(busybox_binary().read_bytes()):
        path = root / entry.path
        kind = stat.S_IFMT(entry.mode)
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == stat.S_IFDIR:
            path.mkdir(exist_ok=True)
        elif kind == stat.S_IFREG:
            path.write_bytes(entry.data)
            path.chmod(stat.S_IMODE(entry.mode))
        elif kind == stat.S_IFLNK:
            path.symlink_to(entry.data.decode())
    for name, major, minor in NATIVE_DEVICES:
        node = root / "dev" / name
        node.unlink(missing_ok=True)
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
    suite = root / "opt" / "x86lab"
    suite.mkdir(parents=True)
    for name, data in files.items():
        (suite / name).write_bytes(data)
    return root


def run_natively(selected: Sequence[str], limit: int = LIMIT_SECONDS,
                 timeout: float = 3600.0) -> str:
    """The testsuite's output with the same busybox binary on this machine, cached.

    It runs in the guest's root tree (``native_root``) under chroot, in private mount and
    PID namespaces (``unshare``, needs root) with its own /proc, on one CPU as the guests
    have; BusyBox's ``--install -s`` links the applets there as the guest's /init does.
    """
    from images import rootfs

    binary = busybox_binary()
    files = suite_files()
    root_key = rootfs.digest(rootfs.base_entries(binary.read_bytes()))
    # The CPU is an input: a cache carried to another machine must not answer for it.
    key = hashlib.sha256("\0".join([binary.name, root_key, str(limit), this_cpu().describe(),
                                    *selected]).encode()
                         + b"".join(hashlib.sha256(files[name]).digest()
                                    for name in sorted(files))).hexdigest()[:16]
    cached = cache_file("conformance", "expected", f"busybox-{key}.txt")
    if cached.exists():
        return cached.read_text("utf-8")
    with tempfile.TemporaryDirectory(prefix="x86lab-bb-") as scratch:
        root = native_root(Path(scratch), files)
        inner = ("/bin/busybox --install -s && exec /bin/sh /opt/x86lab/busybox-suite.sh "
                 f"/opt/x86lab /bin/busybox /tmp/bbsuite /busybox.out {limit} "
                 + " ".join(selected))
        command = ["unshare", "--mount", "--pid", "--fork", f"--mount-proc={root}/proc",
                   "taskset", "-c", "0", "chroot", str(root), "/bin/busybox", "sh", "-c",
                   inner]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        out = root / "busybox.out"
        if not out.exists():
            raise SourceError(f"the busybox testsuite did not run natively: "
                              f"{done.stderr.strip()[-300:]} (needs root for unshare "
                              "and chroot)")
        text = out.read_text("utf-8", "replace")
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text(text, "utf-8")
    return text


@dataclass
class SuiteRun:
    """What one run of the script printed, parsed: each test's verdict, its applet and (for
    a failure) the verbose block that shows its command and diff; each applet's seconds
    and whether its time limit cut it off."""

    verdicts: Dict[str, str] = field(default_factory=dict)
    applet_of: Dict[str, str] = field(default_factory=dict)
    details: Dict[str, str] = field(default_factory=dict)
    seconds: Dict[str, float] = field(default_factory=dict)
    cut_off: List[str] = field(default_factory=list)


SEPARATOR = "=" * 22  # testing.sh -v prints it before each test's command


def parse_run(output: str) -> SuiteRun:
    """Parse the script's output. With ``-v`` testing.sh prints, per test, a separator
    line, the commands, their stderr, the verdict and (on a failure) the diff; a failed
    test's detail is everything from its separator to the next one."""
    run = SuiteRun()
    applet = ""
    block: List[str] = []  # the lines since the last separator
    failed = ""  # the test whose diff may follow
    for line in output.splitlines():
        key, sep, value = line.partition("=")
        marker = sep and key.startswith("runtest-")
        if marker or line == SEPARATOR:
            block, failed = [], ""
        if marker and key == "runtest-applet":
            applet = value
        elif marker and key == "runtest-time":
            name, start, end = value.split()
            run.seconds[name] = round(float(end) - float(start), 2)
        elif marker and key == "runtest-timeout":
            run.cut_off.append(value)
        if marker or line == SEPARATOR:
            continue
        block.append(line)
        word, sep, name = line.partition(": ")
        if sep and word in VERDICTS:
            failed = ""
            name = name.strip()
            run.verdicts[name] = word
            run.applet_of[name] = applet
            if word == "FAIL":
                failed = name
        if failed:
            run.details[failed] = "\n".join(block)[-2000:]
    return run
