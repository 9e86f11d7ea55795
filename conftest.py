"""Fixtures and settings shared by every package's tests.

- Hypothesis profiles: ``ci`` (default: few examples, no deadline) and ``campaign`` (many),
  chosen with ``HYPOTHESIS_PROFILE``; the example database lives in the x86lab cache so a
  failure found once replays on the next run (and, with ``X86LAB_HYPOTHESIS_REDIS`` set,
  in a Redis shared by all machines too: ``differential/hypothesis_db.py``).
- Boot fixtures (engine x kernel, one boot per session per combination) live in
  ``harness/fixtures.py`` and are imported here so every package's tests can use them.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from differential.hypothesis_db import SharedDatabaseError, example_database
from ground.cache import cache_dir


def pytest_configure(config: pytest.Config) -> None:
    """Profiles are registered here, not at import, so that a shared database that cannot
    be reached ends the run as a set-up error (one line, exit 2)."""
    try:
        database = example_database(str(cache_dir("hypothesis")))
    except SharedDatabaseError as exc:
        pytest.exit(str(exc), returncode=2)
    settings.register_profile(
        "ci", max_examples=25, deadline=None, database=database,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    settings.register_profile(
        "campaign", max_examples=5000, deadline=None, database=database,
        suppress_health_check=list(HealthCheck),
    )
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


try:  # the harness adds its fixtures when it exists
    from harness.fixtures import *  # noqa: F401,F403
except ImportError:  # pragma: no cover - only before the harness lands
    pass
