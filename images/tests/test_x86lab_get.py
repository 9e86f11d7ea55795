"""The image's x86lab-get, run by the host's sh with stand-in ``wget`` (copies files from
a folder laid out as the repository, logging each URL) and ``dpkg`` (logs its arguments
and writes the file list BusyBox dpkg would): which stanza it reads, what it refuses, and
that nothing reaches dpkg unless the file's sha256 is the index's. The guest's own run
(BusyBox sh, awk, wget and dpkg through the relay) is web/relay/tests/test_v86_guest_packages.py.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from images import rootfs

pytestmark = pytest.mark.skipif(shutil.which("sh") is None, reason="no host sh")

DEFAULT_URL = "http://192.0.2.10/"  # the relay's stand-in (web/relay/guest_check.py)

FAKE_WGET = """#!/bin/sh
# wget -q -O OUT URL: copy REPO_DIR/<URL without its scheme and host> to OUT.
while [ $# -gt 0 ]; do
    case $1 in -q) shift ;; -O) out=$2; shift 2 ;; *) url=$1; shift ;; esac
done
echo "$url" >> "$LOG"
rest=${url#http://*/}
[ -f "$REPO_DIR/$rest" ] && cp "$REPO_DIR/$rest" "$out"
"""

FAKE_DPKG = """#!/bin/sh
echo "dpkg $*" >> "$LOG"
printf '/.\\n/bin\\n/bin/%s\\n/usr/share/doc/%s\\n' "$PROGRAM" "$PROGRAM" \\
    > "$ADMIN/info/$PROGRAM.list"
"""


@dataclass
class Run:
    status: int
    out: str
    err: str
    log: List[str]
    work: Path


def _stanza(name: str, version: str, filename: str, sha256: str) -> str:
    return (f"Package: {name}\nVersion: {version}\nArchitecture: i386\n"
            f"Description: test\n Package: decoy\n SHA256: {'0' * 64}\n"
            f"Filename: {filename}\nSize: 3\nSHA256: {sha256}\n")


def _repo(folder: Path, files: Dict[str, bytes], index: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    (folder / "Packages").write_text(index)


def _run(tmp_path: Path, *args: str, program: str = "tool",
         env: Optional[Dict[str, str]] = None) -> Run:
    bin_dir, admin, work = tmp_path / "bin", tmp_path / "dpkg", tmp_path / "work"
    bin_dir.mkdir(exist_ok=True)
    for name, text in (("wget", FAKE_WGET), ("dpkg", FAKE_DPKG)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    script = tmp_path / "x86lab-get"
    script.write_text(rootfs.GET_SCRIPT.read_text()
                      .replace("/var/lib/dpkg", str(admin))
                      .replace("/tmp/x86lab-get", str(work)))
    log = tmp_path / "log"
    log.write_text("")
    full_env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "LOG": str(log),
                "REPO_DIR": str(tmp_path / "repo"), "ADMIN": str(admin),
                "PROGRAM": program, **(env or {})}
    done = subprocess.run(["sh", str(script), *args], env=full_env, capture_output=True,
                          text=True, timeout=30)
    return Run(done.returncode, done.stdout, done.stderr, log.read_text().splitlines(), work)


def _two_packages(tmp_path: Path, tool_sha: Optional[str] = None) -> None:
    tool, other = b"one", b"two"
    _repo(tmp_path / "repo",
          {"pool/other_2.0_i386.deb": other, "pool/tool_1.0-1_i386.deb": tool},
          _stanza("other", "2.0", "pool/other_2.0_i386.deb",
                  hashlib.sha256(other).hexdigest()) + "\n"
          + _stanza("tool", "1.0-1", "pool/tool_1.0-1_i386.deb",
                    tool_sha or hashlib.sha256(tool).hexdigest()))


def test_installs_the_named_package_from_its_own_stanza(tmp_path: Path) -> None:
    _two_packages(tmp_path)
    run = _run(tmp_path, "tool")
    assert run.status == 0, run.err
    deb = run.work / "tool.deb"
    assert run.log == [f"{DEFAULT_URL}Packages", f"{DEFAULT_URL}pool/tool_1.0-1_i386.deb",
                       f"dpkg -i --force-depends {deb}"]
    assert run.out == "x86lab-get: installed tool 1.0-1: /bin/tool \n"
    assert not deb.exists()  # the guest's /tmp is RAM: the .deb is not kept
    assert (tmp_path / "dpkg" / "status").exists()  # BusyBox dpkg needs the file


def test_a_file_whose_sha256_differs_from_the_index_never_reaches_dpkg(tmp_path: Path) -> None:
    _two_packages(tmp_path, tool_sha=hashlib.sha256(b"something else").hexdigest())
    run = _run(tmp_path, "tool")
    assert run.status == 1
    assert "differs from the index" in run.err and "not installed" in run.err
    assert not any(line.startswith("dpkg") for line in run.log)
    assert not (run.work / "tool.deb").exists()


def test_unknown_package_fails_after_reading_the_index_only(tmp_path: Path) -> None:
    _two_packages(tmp_path)
    run = _run(tmp_path, "decoy")  # named only inside a Description
    assert run.status == 1 and "decoy: not in" in run.err
    assert run.log == [f"{DEFAULT_URL}Packages"]


@pytest.mark.parametrize("filename", ["../../etc/passwd", "/etc/passwd",
                                      "pool/a b.deb", "pool/x;reboot.deb"])
def test_refuses_file_names_outside_the_repository_or_with_odd_characters(
        tmp_path: Path, filename: str) -> None:
    _repo(tmp_path / "repo", {}, _stanza("tool", "1", filename, "1" * 64))
    run = _run(tmp_path, "tool")
    assert run.status == 1 and "refusing the file name" in run.err
    assert run.log == [f"{DEFAULT_URL}Packages"]


def test_lists_names_and_versions(tmp_path: Path) -> None:
    _two_packages(tmp_path)
    run = _run(tmp_path, "-l")
    assert (run.status, run.out) == (0, "other 2.0\ntool 1.0-1\n")


def test_repository_from_option_or_environment_with_or_without_slash(tmp_path: Path) -> None:
    _two_packages(tmp_path)
    by_option = _run(tmp_path, "-r", "http://198.51.100.7:8080/repo", "-l")
    by_env = _run(tmp_path, "-l", env={"X86LAB_REPO": "http://198.51.100.8/x/"})
    assert by_option.log == ["http://198.51.100.7:8080/repo/Packages"]
    assert by_env.log == ["http://198.51.100.8/x/Packages"]


def test_unreachable_index_and_usage(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    missing = _run(tmp_path, "tool")
    assert missing.status == 1 and f"cannot fetch {DEFAULT_URL}Packages" in missing.err
    assert _run(tmp_path).status == 2
    assert _run(tmp_path, "-x").status == 2
    helped = _run(tmp_path, "-h")
    assert helped.status == 0 and helped.out.startswith("usage: x86lab-get")


def test_script_is_in_every_image_as_an_executable() -> None:
    entries = {entry.path: entry for entry in rootfs.base_entries(b"\x7fELF")}
    entry = entries["usr/bin/x86lab-get"]
    assert entry.data == rootfs.GET_SCRIPT.read_bytes() and entry.mode & 0o111
