"""PyPy's nursery (``reference.pypy_gc``): launchers set it, the PC reports it, and a
nursery the user did not choose and that is too large gets a warning. Runs under CPython
and, in ``test_pypy_suite``, under PyPy, where the size is read from PyPy's own GC."""

from __future__ import annotations

import os
import platform

from reference.pc.run import interpreter
from reference.pypy_gc import (
    LARGE,
    NURSERY,
    NURSERY_BYTES,
    VARIABLE,
    environment,
    nursery_bytes,
    requested,
    warning,
)

ON_PYPY = platform.python_implementation() == "PyPy"


def test_a_launcher_sets_the_nursery_unless_the_caller_chose_one() -> None:
    given = {"PATH": "/bin"}
    assert environment(given) == {"PATH": "/bin", VARIABLE: NURSERY}
    assert given == {"PATH": "/bin"}  # a copy: the caller's mapping is left alone
    assert environment({VARIABLE: "64M"})[VARIABLE] == "64M"


def test_the_size_set_is_the_size_named() -> None:
    assert requested(NURSERY) == NURSERY_BYTES <= LARGE


def test_only_a_large_nursery_nobody_asked_for_is_warned_about() -> None:
    assert warning(None, {}) is None  # CPython
    assert warning(LARGE, {}) is None
    assert warning(300 << 20, {VARIABLE: "300M"}) is None  # the user's own choice
    told = warning(240 << 20, {})
    assert told is not None and "240 MiB" in told and f"{VARIABLE}={NURSERY}" in told
    assert "cache" in told


def test_a_size_pypy_could_not_read_is_warned_about_with_what_was_asked() -> None:
    told = warning(240 << 20, {VARIABLE: "sixteen"})  # PyPy ignores it, keeps its own
    assert told is not None and f"{VARIABLE}=sixteen" in told


def test_the_sizes_pypy_reads_are_read_alike() -> None:
    """As Debian's pypy3 read them (``gc.get_stats()``): 16M, 16mb and 16MB gave 16 MiB,
    512k 512 KiB, 4.5M 4,718,592 bytes, 1e6 1,000,000."""
    assert [requested(text) for text in ("16M", "16mb", "16MB", "512k", "4.5M", "1e6",
                                         "1G", "65536")] == [
        16 << 20, 16 << 20, 16 << 20, 512 << 10, 4718592, 1000000, 1 << 30, 65536]
    assert [requested(text) for text in ("", "M", "sixteen", "16T", "-4M", "0")] == [
        None] * 6


def test_the_pc_reports_pypys_nursery_and_only_pypys() -> None:
    size = nursery_bytes()
    about = interpreter()
    if not ON_PYPY:
        assert size is None and "nursery_bytes" not in about
        return
    assert isinstance(size, int) and size > 0
    assert about["nursery_bytes"] == size
    if os.environ.get(VARIABLE) == NURSERY:  # test_pypy_suite starts PyPy so
        assert size == NURSERY_BYTES
