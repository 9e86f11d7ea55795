"""The /init script: valid shell, contract values filled in, nothing left unfilled."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from images import contract, rootfs
from images.errors import ImageError


@pytest.fixture(scope="module")
def init_text() -> str:
    return rootfs.render_init(rootfs.INIT_TEMPLATE.read_text())


@pytest.mark.skipif(shutil.which("sh") is None, reason="no host sh")
def test_rendered_init_passes_sh_syntax_check(tmp_path, init_text):
    script = tmp_path / "init"
    script.write_text(init_text)
    result = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_contract_values_are_in_place(init_text):
    assert f"echo '{contract.BOOT_MARKER}'" in init_text
    assert f"PS1='{contract.PROMPT}'" in init_text
    assert f"echo '{contract.HOSTNAME}' > /proc/sys/kernel/hostname" in init_text
    assert f"/dev/{contract.SERIAL_CONSOLE}" in init_text
    assert init_text.startswith("#!/bin/sh\n")


def test_unknown_placeholder_is_an_error():
    with pytest.raises(ImageError, match="placeholder"):
        rootfs.render_init("#!/bin/sh\necho @NO_SUCH_VALUE@\n")
