"""Boot-mark timing and the kernel-log scan, on canned console text."""

from __future__ import annotations

from harness import kernel_log
from harness.stages import StageWatcher, span_durations
from images.contract import BOOT_MARKER, PROMPT


def test_marks_are_found_across_chunk_boundaries_in_order() -> None:
    watcher = StageWatcher(t0=100.0)
    assert watcher.feed(PROMPT.encode(), now=100.5) == []  # a prompt before the kernel: no
    assert watcher.feed(b"Linux ver", now=101.0) == []
    assert watcher.feed(b"sion 6.1\r\n", now=102.0) == ["kernel"]
    text = f"{BOOT_MARKER}\r\n{PROMPT}".encode()
    assert watcher.feed(text, now=105.0) == ["init", "prompt"]
    assert watcher.times == {"kernel": 2.0, "init": 5.0, "prompt": 5.0}


def test_span_durations_only_for_reached_ends() -> None:
    spans = span_durations({"kernel": 2.0, "init": 5.5})
    assert spans == {"firmware": 2.0, "kernel": 3.5}


def test_scan_finds_each_failure_with_context() -> None:
    log = (b"[    0.1] ok line\r\n[    0.2] BUG: kernel NULL pointer dereference\r\n"
           b"[    0.3] Call Trace:\r\nsh[42]: segfault at 0 ip 0 sp 0 error 4\r\n")
    findings = kernel_log.scan(log)
    assert [f.pattern for f in findings] == ["BUG:", "Call Trace", "segfault at"]
    assert findings[0].key == "BUG: kernel NULL pointer dereference"
    assert "ok line" in findings[0].excerpt


def test_scan_of_a_clean_log_is_empty() -> None:
    assert kernel_log.scan(b"[    0.0] Linux version 6.1\r\nx86lab# ") == []
