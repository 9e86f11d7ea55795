"""Fixtures and settings shared by every package's tests.

- Hypothesis profiles: ``ci`` (default: few examples, no deadline) and ``campaign`` (many),
  chosen with ``HYPOTHESIS_PROFILE``; the example database lives in the x86lab cache so a
  failure found once replays on the next run.
- Boot fixtures (engine x kernel, one boot per session per combination) live in
  ``harness/fixtures.py`` and are imported here so every package's tests can use them.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

from ground.cache import cache_dir

_db = DirectoryBasedExampleDatabase(str(cache_dir("hypothesis")))
settings.register_profile(
    "ci", max_examples=25, deadline=None, database=_db,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "campaign", max_examples=5000, deadline=None, database=_db,
    suppress_health_check=list(HealthCheck),
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

try:  # the harness adds its fixtures when it exists
    from harness.fixtures import *  # noqa: F401,F403
except ImportError:  # pragma: no cover - only before the harness lands
    pass
