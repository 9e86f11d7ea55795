"""The Hypothesis example database shared through Redis (X86LAB_HYPOTHESIS_REDIS)."""

from __future__ import annotations

import shutil

import pytest
from hypothesis.database import DirectoryBasedExampleDatabase, MultiplexedDatabase

from differential.hypothesis_db import SharedDatabaseError, example_database

pytest.importorskip("redis")


def test_default_stays_local(tmp_path, monkeypatch):
    monkeypatch.delenv("X86LAB_HYPOTHESIS_REDIS", raising=False)
    assert isinstance(example_database(str(tmp_path)), DirectoryBasedExampleDatabase)


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server missing")
def test_an_example_saved_on_one_machine_is_fetched_on_another(tmp_path):
    from differential.redis_server import RedisServer

    server = RedisServer(tmp_path / "redis").start()
    try:
        first = example_database(str(tmp_path / "machine1"), server.url)
        second = example_database(str(tmp_path / "machine2"), server.url)
        assert isinstance(first, MultiplexedDatabase)
        first.save(b"test-key", b"shrunk example")
        assert list(second.fetch(b"test-key")) == [b"shrunk example"]
        lonely = example_database(str(tmp_path / "machine3"), "")
        assert list(lonely.fetch(b"test-key")) == []  # local alone: not shared
    finally:
        server.stop()


def test_an_unreachable_server_is_one_clear_error(tmp_path):
    from differential.redis_server import free_port

    with pytest.raises(SharedDatabaseError, match="cannot reach Redis"):
        example_database(str(tmp_path), f"redis://127.0.0.1:{free_port()}/0")
