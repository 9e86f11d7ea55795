"""The build lock (checked with util-linux flock) and the command line's error handling."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from images.build import ensure_image
from images.errors import ImageError
from images.lock import exclusive
from x86lab.cli import EXIT_USAGE, main


@pytest.mark.skipif(shutil.which("flock") is None, reason="util-linux flock missing")
def test_lock_is_held_inside_the_block_and_released_after(tmp_path):
    path = tmp_path / ".lock"
    probe = ["flock", "--nonblock", str(path), "true"]
    with exclusive(path):
        assert subprocess.run(probe).returncode == 1
    assert subprocess.run(probe).returncode == 0


def test_unknown_kernel_is_an_image_error():
    with pytest.raises(ImageError, match="unknown kernel 'vmlinux'; choose one of tiny, debian"):
        ensure_image(kernel="vmlinux")


def test_cli_turns_a_bad_add_into_a_one_line_usage_error(tmp_path, capsys):
    code = main(["image", "build", "--add", f"{tmp_path}/absent:/x"])
    assert code == EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert err.startswith("x86lab: error: --add") and "does not exist" in err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize("guest", ["/../x", "/./x", "/usr/../../etc/passwd", "/a/."], ids=repr)
def test_cli_refuses_dot_segments_in_the_guest_path_in_one_line(tmp_path, capsys, guest):
    host = tmp_path / "f"
    host.write_bytes(b"x")
    assert main(["image", "build", "--add", f"{host}:{guest}"]) == EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert err.startswith("x86lab: error: --add") and "'.' or '..'" in err
    assert len(err.splitlines()) == 1


def test_cli_help_shows_an_example(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["image", "build", "--help"])
    assert exited.value.code == 0
    assert "x86lab image build --kernel tiny" in capsys.readouterr().out
