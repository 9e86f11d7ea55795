"""Fixtures for the web demo's build and browser tests: one built site per session, served
by ``web.serve`` on 127.0.0.1 (the same server people use locally)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from web.build.local import serving

SITE_KERNEL = os.environ.get("X86LAB_WEB_KERNEL", "debian")


@pytest.fixture(scope="session")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``x86lab web build`` output for the session (the gate boots the image once per
    image, cached; ``next build`` takes about a minute)."""
    from web.build.assemble import build_site

    out = tmp_path_factory.mktemp("site") / "out"
    build_site(kernel=SITE_KERNEL, out=out)
    return out


@pytest.fixture(scope="session")
def site_url(built_site: Path) -> Iterator[str]:
    with serving(built_site) as url:
        yield url
