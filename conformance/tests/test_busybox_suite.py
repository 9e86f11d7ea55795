"""The busybox testsuite's runner: parsing its verbose output, telling a slow engine from a
hung one, and the native run inside the guest's root tree."""

from __future__ import annotations

import os
import shutil

import pytest

from conformance import busybox_suite
from conformance.busybox_suite import SuiteRun, parse_run
from conformance.program_suites import busybox_result, slowdown

OUTPUT = """runtest-applet=cat
======================
echo -ne '' >input
echo -ne 'x' | cat
PASS: cat-works
runtest-time=cat 100.00 100.50
runtest-applet=taskset
======================
echo -ne '' >input
echo -ne '' | taskset 0x1  -c 'true'; echo $?
taskset: can't execute '-c': No such file or directory
FAIL: taskset (set_aff)
--- expected
+++ actual
@@ -1 +1 @@
-0
+127
======================
echo -ne '' >input
SKIPPED: taskset (other)
runtest-time=taskset 100.50 101.00
runtest-applet=bc
PASS: bc comment
runtest-time=bc 101.00 401.00
runtest-timeout=bc
runtest-status=143
"""


def test_parse_run_keeps_verdicts_applets_times_and_the_failure_diff() -> None:
    run = parse_run(OUTPUT)
    assert run.verdicts == {"cat-works": "PASS", "taskset (set_aff)": "FAIL",
                            "taskset (other)": "SKIPPED", "bc comment": "PASS"}
    assert run.applet_of["taskset (set_aff)"] == "taskset"
    assert run.seconds == {"cat": 0.5, "taskset": 0.5, "bc": 300.0}
    assert run.cut_off == ["bc"]
    detail = run.details["taskset (set_aff)"]
    assert "can't execute '-c'" in detail and detail.endswith("+127")
    assert "SKIPPED" not in detail


def _native(bc_seconds: float) -> SuiteRun:
    names = {"cat-works": "cat", "bc comment": "bc", "bc loops": "bc"}
    return SuiteRun(verdicts={n: "PASS" for n in names}, applet_of=names,
                    seconds={"cat": 1.0, "bc": bc_seconds})


def _guest() -> SuiteRun:
    return SuiteRun(verdicts={"cat-works": "PASS", "bc comment": "PASS"},
                    applet_of={"cat-works": "cat", "bc comment": "bc"},
                    seconds={"cat": 10.0, "bc": 300.0}, cut_off=["bc"])


def test_slowdown_uses_only_applets_that_finished_in_both() -> None:
    assert slowdown(_native(60.0), _guest()) == 10.0


def test_an_applet_slow_at_the_engines_speed_is_cut_off_not_a_difference() -> None:
    # bc took 60 s natively; at 10x that is 600 s, over the 300 s limit.
    result = busybox_result("qemu", _native(60.0), _guest(), 320.0, limit=300)
    [finding] = result.findings
    assert finding.group == "bc (time limit)" and finding.count == 1
    assert not finding.is_new and "600 s" in finding.known
    assert result.counts["cut_off_by_limit"] == 1 and result.passed == 2


def test_an_applet_that_should_have_finished_in_time_is_a_possible_hang() -> None:
    # bc took 2 s natively: 20 s expected at 10x, yet it hit the 300 s limit.
    result = busybox_result("v86", _native(2.0), _guest(), 320.0, limit=300)
    [finding] = result.findings
    assert finding.group == "bc loops" and finding.is_new
    assert "a hang?" in finding.summary and result.counts["cut_off_by_limit"] == 0


needs_root = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                                reason="the native run needs root (unshare, chroot)")


def test_the_native_root_holds_the_images_busybox_and_the_suite(tmp_path) -> None:
    root = busybox_suite.native_root(tmp_path, {"busybox-suite.sh": b"#!/bin/sh\n"})
    assert (root / "bin" / "busybox").read_bytes() == \
        busybox_suite.busybox_binary().read_bytes()
    assert os.readlink(root / "bin" / "sh") == "busybox"
    assert not (root / "bin" / "false").exists()  # /init's --install -s links it
    assert (root / "opt" / "x86lab" / "busybox-suite.sh").read_bytes() == b"#!/bin/sh\n"
    assert (root / "dev" / "null").is_char_device()


@needs_root
def test_the_native_run_gets_the_fixed_environment() -> None:
    # taskset's set_aff test runs "$SHELL -c ..." (fails when SHELL is unset, as in a
    # guest's console shell); expand's Unicode test needs a UTF-8 $LANG.
    run = parse_run(busybox_suite.run_natively(["taskset", "expand"]))
    assert run.verdicts["taskset (set_aff, needs CAP_SYS_NICE)"] == "PASS"
    assert run.verdicts["expand with unicode characher 0x394"] == "PASS"
    assert set(run.seconds) == {"taskset", "expand"}


def test_the_html_report_shows_a_failed_tests_guest_output(tmp_path) -> None:
    from conformance.findings import SuiteResult
    from conformance.matrix import Options, Report
    from conformance.report import write_html

    run = parse_run(OUTPUT)
    native = SuiteRun(verdicts={"taskset (set_aff)": "PASS"},
                      applet_of={"taskset (set_aff)": "taskset"}, seconds={"taskset": 0.1})
    result: SuiteResult = busybox_result("qemu", native, run, 5.0)
    [finding] = result.findings
    assert finding.reproducer["command"] == "cd testsuite && ./runtest -v taskset"
    write_html(Report(Options(engines=["qemu"], suites=["busybox"]), [result]),
               tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text()
    assert "can&#x27;t execute &#x27;-c&#x27;" in page and "\n+127</pre>" in page


def _fake_suite(folder, runtest: str) -> None:
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        data = runtest.encode()
        info = tarfile.TarInfo("testsuite/runtest")
        info.size, info.mode = len(data), 0o755
        archive.addfile(info, io.BytesIO(data))
    (folder / "busybox-testsuite.tar").write_bytes(buffer.getvalue())
    (folder / "busybox.config").write_text("")
    (folder / "busybox-suite.sh").write_text(busybox_suite.SCRIPT)


def test_an_applet_cut_off_by_the_limit_leaves_nothing_running(tmp_path) -> None:
    """The cut-off applet's test keeps a child that would write into the suite's folder
    later (as bc's pipelines did); the whole session is killed, so it never does."""
    import subprocess
    import time

    _fake_suite(tmp_path, '#!/bin/sh\ncase "$2" in\n'
                          'slow) (sleep 4; echo late > ../late) & sleep 60 ;;\n'
                          '*) echo "PASS: $2 works" ;;\nesac\n')
    binary = str(busybox_suite.busybox_binary())
    out = tmp_path / "out.txt"
    subprocess.run([binary, "sh", str(tmp_path / "busybox-suite.sh"), str(tmp_path), binary,
                    str(tmp_path / "work"), str(out), "1", "slow", "quick"], check=False,
                   timeout=60, stdin=subprocess.DEVNULL)
    run = parse_run(out.read_text())
    assert run.cut_off == ["slow"] and run.verdicts == {"quick works": "PASS"}
    assert run.seconds["slow"] < 4
    time.sleep(4.5)
    assert not (tmp_path / "work" / "late").exists()
