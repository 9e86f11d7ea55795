"""``x86lab boot --run`` against the local stand-in shell (fast: no kernel, no emulator).

The engine catalogue is swapped for the host's /bin/sh on a pty, so these check what the
command does with bytes, parse errors, timeouts, Ctrl-C and console logs; the same
behaviour on QEMU is in test_boot_command.py (marked boot and slow).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Tuple

import pytest

from harness import guest as guest_module
from harness.engines.local import LocalShellEngine
from x86lab.cli import main

REPO = Path(__file__).resolve().parents[2]
BOOT = ["boot", "--engine", "qemu", "--kernel", "tiny"]
STAND_IN = (
    "import sys; import harness.guest as g; from harness.engines.local import "
    "LocalShellEngine; g.get_engine = lambda name: LocalShellEngine(); "
    "g.find_image = lambda kernel: None; from x86lab.cli import main; sys.exit(main(sys.argv[1:]))"
)
"""A Python program that is ``x86lab`` with the stand-in engine (for signal tests)."""


@pytest.fixture(autouse=True)
def stand_in(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("X86LAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(guest_module, "get_engine", lambda name: LocalShellEngine())
    monkeypatch.setattr(guest_module, "find_image", lambda kernel: None)


def boot(capfdbinary: pytest.CaptureFixture[bytes], *args: str) -> Tuple[int, bytes, str]:
    code = main([*BOOT, *args])
    out, err = capfdbinary.readouterr()
    return code, out, err.decode()


def logs(tmp_path: Path) -> List[Path]:
    return sorted((tmp_path / "cache" / "harness" / "consoles").glob("*.log"))


def test_command_bytes_and_output_bytes_are_exact(capfdbinary: pytest.CaptureFixture[bytes]
                                                  ) -> None:
    code, out, _ = boot(capfdbinary, "--run", "printf '[\t]\\377\\n'")
    assert (code, out) == (0, b"[\t]\xff\n")


def test_a_syntax_error_ends_at_once_with_status_2_and_the_log(
        capfdbinary: pytest.CaptureFixture[bytes], tmp_path: Path) -> None:
    start = time.monotonic()
    code, out, err = boot(capfdbinary, "--run", 'echo "x')
    assert time.monotonic() - start < 10
    assert code == 2 and b"Unterminated quoted string" in out
    assert "could not run the command (syntax error" in err
    assert f"console log: {logs(tmp_path)[0]}" in err


def test_an_empty_command_ends_at_once_with_status_0(capfdbinary: pytest.CaptureFixture[bytes]
                                                     ) -> None:
    start = time.monotonic()
    assert boot(capfdbinary, "--run", "")[:2] == (0, b"")
    assert time.monotonic() - start < 10


@pytest.mark.parametrize("value", ["-5", "0", "nan", "inf"])
def test_timeout_must_be_positive(capfdbinary: pytest.CaptureFixture[bytes], tmp_path: Path,
                                  value: str) -> None:
    code, out, err = boot(capfdbinary, "--run", "true", "--timeout", value)
    assert (code, out) == (2, b"")
    assert err.startswith(f"x86lab: error: --timeout {value}: must be a positive")
    assert logs(tmp_path) == []  # refused before anything booted


def test_a_timeout_names_the_console_log(capfdbinary: pytest.CaptureFixture[bytes],
                                         tmp_path: Path) -> None:
    code, _, err = boot(capfdbinary, "--run", "sleep 30", "--timeout", "1")
    assert code == 1 and "did not finish within 1 s" in err
    assert f"console log: {logs(tmp_path)[0]}" in err


def test_every_boot_gets_its_own_console_log(capfdbinary: pytest.CaptureFixture[bytes],
                                             tmp_path: Path) -> None:
    boot(capfdbinary, "--run", "echo first")
    boot(capfdbinary, "--run", "echo second")
    first, second = (path.read_bytes() for path in logs(tmp_path))
    assert {b"first" in first, b"first" in second} == {True, False}
    assert {b"second" in first, b"second" in second} == {True, False}


def test_console_log_names_never_collide() -> None:
    paths = {guest_module.console_log_path("qemu", "tiny") for _ in range(50)}
    assert len(paths) == 50 and all(path.exists() for path in paths)


def test_a_named_folder_keeps_one_log_per_combination(tmp_path: Path) -> None:
    """A report names its folder and links ENGINE-KERNEL.log from its page."""
    assert guest_module.console_log_path("v86", "tiny", tmp_path) == tmp_path / "v86-tiny.log"


def test_old_logs_are_pruned(monkeypatch: pytest.MonkeyPatch) -> None:
    made = [guest_module.console_log_path("qemu", "tiny") for _ in range(5)]
    for age, path in enumerate(made):
        os.utime(path, (1000 + age, 1000 + age))  # made[0] oldest
    monkeypatch.setattr(guest_module, "KEPT_LOGS", 3)
    newest = guest_module.console_log_path("qemu", "tiny")
    left = set(newest.parent.glob("*.log"))
    assert left == {newest, made[4], made[3]}


@pytest.mark.parametrize("when", [0.0, 1.0], ids=["as-the-boot-starts", "during-command"])
def test_ctrl_c_is_an_interruption_that_stops_the_guest(tmp_path: Path, when: float) -> None:
    """SIGINT to the process group, as a terminal's Ctrl-C sends it: exit 130, one line
    saying so, the console log named, and the stand-in shell gone."""
    marker = f"x86lab-ctrl-c-{os.getpid()}-{int(when * 10)}"
    env = dict(os.environ, X86LAB_CACHE=str(tmp_path / "cache"), X86LAB_TEST_MARK=marker)
    proc = subprocess.Popen(
        [sys.executable, "-c", STAND_IN, *BOOT, "--run", "sleep 60"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True,
        # A test run in the background inherits SIGINT ignored; a terminal's user does not.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    first = proc.stderr.readline().decode()  # "booting ... (console log: ...)"
    time.sleep(when)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    text = first + err.decode()
    assert proc.returncode == 130, text
    assert "x86lab: interrupted; the guest was stopped" in text
    assert "console log: " in text
    log = Path(text.split("console log: ")[-1].strip())
    assert log.parent == tmp_path / "cache" / "harness" / "consoles"
    time.sleep(0.5)
    assert not _processes_with_environment(marker)


def _processes_with_environment(text: str) -> List[str]:
    """Live processes whose environment holds ``text``: the stand-in shell and its children
    inherit the marker, so none may be left once the guest is stopped."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if text.encode() in environ:
            found.append(entry.name)
    return found


def test_a_failed_boot_names_its_console_log(capfdbinary: pytest.CaptureFixture[bytes],
                                             monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    """The stand-in's "kernel" prints its marks, then its shell exits at once."""
    monkeypatch.setattr(guest_module, "get_engine", lambda name: LocalShellEngine("/bin/false"))
    code, _, err = boot(capfdbinary, "--run", "true")
    assert code == 1 and "x86lab: boot failed: local stopped before prompt" in err
    log = logs(tmp_path)[0]
    assert err.rstrip().endswith(f"console log: {log}")
    assert log.read_bytes().startswith(b"Linux version")


def test_a_usage_error_is_one_line_also_under_python_dash_m() -> None:
    """``python -m x86lab.cli`` runs cli.py as a second module: its UsageError must still
    be the one the commands raise (it was a traceback with exit 1)."""
    done = subprocess.run([sys.executable, "-m", "x86lab.cli", *BOOT, "--run", "true",
                           "--timeout", "-5"], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "x86lab: error: --timeout -5: must be a positive number of seconds\n"


def test_two_boots_at_once_write_two_logs(tmp_path: Path) -> None:
    env = dict(os.environ, X86LAB_CACHE=str(tmp_path / "cache"))
    procs = [subprocess.Popen([sys.executable, "-c", STAND_IN, *BOOT, "--run",
                               f"sleep 1; echo boot-{n}-done"], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for n in (1, 2)]
    results = [proc.communicate(timeout=60) for proc in procs]
    named = []
    for n, (out, err) in enumerate(results, start=1):
        assert out == f"boot-{n}-done\n".encode(), err
        named.append(Path(err.decode().split("console log: ")[1].split(")...")[0]))
    assert named[0] != named[1]
    for n, log in enumerate(named, start=1):
        text = log.read_bytes()
        assert f"boot-{n}-done".encode() in text and f"boot-{3 - n}-done".encode() not in text
