"""Random ``--add HOST:GUEST`` specs through `x86lab image build` (Hypothesis): each one is
either refused in one line with exit 2, or accepted, and then the entries it makes go into
a cpio archive whose every path lies inside the image root.

The build itself is stopped right after the extras are read (``cache_dir`` raises), so no
kernel is built; `--hypothesis-show-statistics` shows how many specs were thrown and how
many of them were accepted or refused."""

from __future__ import annotations

import contextlib
import io
import posixpath
import tempfile
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from images import cpio, rootfs
from images.errors import ImageError
from x86lab.cli import main

pytestmark = pytest.mark.timeout(300)

STOP = "stopped before the cache (test)"
names = st.sampled_from([".", "..", "", "usr", "bin", "a b", "é", "-x", ":", "..."])
segments = st.one_of(names, names, names, st.text(min_size=1, max_size=12),
                     st.text(st.characters(codec="utf-8"), min_size=250, max_size=300))
guests = st.lists(segments, max_size=5).map("/".join).flatmap(
    lambda tail: st.sampled_from(["/" + tail, "/" + tail, tail, "//" + tail, "/" + tail + "/"]))


def _hosts(folder: Path) -> st.SearchStrategy[str]:
    """A real file, a real folder with a file in it, a missing path, or any text."""
    real = st.sampled_from([str(folder / "file"), str(folder / "tree")])
    return st.one_of(real, real, real, st.sampled_from([str(folder / "absent"), "", "."]),
                     st.text(max_size=20))


def _host_folder(folder: Path) -> None:
    (folder / "file").write_bytes(b"payload")
    (folder / "tree" / "sub").mkdir(parents=True)
    (folder / "tree" / "sub" / "f").write_bytes(b"x")


def _build(spec: str):
    err = io.StringIO()
    with mock.patch("images.build.cache_dir", side_effect=ImageError(STOP)), \
            contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["image", "build", f"--add={spec}"])
    return code, err.getvalue()


@given(st.data())
def test_any_add_spec_is_refused_in_one_line_or_makes_a_sound_archive(data):
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        _host_folder(folder)
        spec = data.draw(_hosts(folder)) + data.draw(st.sampled_from([":", ":", "", "::"])) + \
            data.draw(guests)
        code, err = _build(spec)
        event("accepted" if STOP in err else "refused")
        assert code == 2  # accepted specs end at the stop, refused ones at their error
        assert err.startswith("x86lab: error: ") and len(err.splitlines()) == 1
        if STOP in err:
            entries = rootfs.add_entries([spec])
            archive = io.BytesIO()
            cpio.write_newc(archive, entries)
            for entry in cpio.normalise(entries):
                assert not posixpath.isabs(entry.path)
                assert ".." not in entry.path.split("/") and "." not in entry.path.split("/")
