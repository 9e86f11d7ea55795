"""Many concurrent clients through one relay: all bodies intact, nothing leaked.

Figures are printed (run with ``-s`` to see them), never asserted: timings depend on the
machine. ``x86lab relay --bench 50`` runs the same benchmark at full size.
"""

from __future__ import annotations

import asyncio

import pytest

from web.relay.bench import print_figures, run_benchmark


def _bench(**sizes) -> dict:
    return asyncio.run(asyncio.wait_for(run_benchmark(**sizes), 120))


def test_fifty_concurrent_clients_fetch_intact_and_leak_nothing():
    figures = _bench(clients=50, rounds=2, large=256 * 1024)
    print_figures(figures)
    assert figures["failures"] == 0
    assert figures["relay"]["connections"] == 150  # 50 x 2 small rounds + 50 bulk
    assert figures["relay"]["open_streams"] == figures["relay"]["open_connections"] == 0
    assert figures["fds_after"] == figures["fds_before"]
    assert figures["tasks_after"] == figures["tasks_before"]


@pytest.mark.slow
def test_full_size_benchmark_runs_clean():
    figures = _bench(clients=50)
    print_figures(figures)
    assert figures["failures"] == 0 and figures["fds_after"] == figures["fds_before"]
