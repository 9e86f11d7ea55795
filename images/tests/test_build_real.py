"""The real builds (slow the first time, then cached): idempotent and reproducible."""

from __future__ import annotations

import hashlib
import time

import pytest

from images.bootheader import boot_protocol
from images.build import ensure_image

pytestmark = pytest.mark.slow


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("kind", ["tiny", "debian"])
def test_second_call_is_a_cache_hit_with_a_matching_manifest(kind):
    first = ensure_image(kernel=kind)
    started = time.monotonic()
    again = ensure_image(kernel=kind)
    assert time.monotonic() - started < 1.0
    assert again.manifest_path == first.manifest_path
    assert sha256(again.initrd) == again.manifest["initramfs"]["sha256"]
    assert sha256(again.kernel) == again.manifest["kernel"]["sha256"]
    assert boot_protocol(again.kernel) >= 0x020F
    assert again.cmdline.startswith("console=ttyS0")
    assert again.kernel_kind == kind


def test_rebuilding_from_scratch_gives_the_same_bytes():
    before = ensure_image(kernel="debian")
    kernel_sha, initrd_sha = before.manifest["kernel"]["sha256"], sha256(before.initrd)
    after = ensure_image(kernel="debian", rebuild=True)
    assert sha256(after.initrd) == initrd_sha
    assert sha256(after.kernel) == kernel_sha
