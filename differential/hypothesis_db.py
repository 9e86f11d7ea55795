"""Where Hypothesis keeps the examples it found: the local cache folder, and when
``X86LAB_HYPOTHESIS_REDIS=redis://HOST:PORT/N`` is set, also a Redis database shared by
every machine, so a failing case one machine shrank is replayed first everywhere.

Reads go to both (the local copy answers even when Redis is away for a moment); writes go to
both. The default stays local: nothing is shared unless the variable is set.
"""

from __future__ import annotations

import os
from typing import Optional

ENV = "X86LAB_HYPOTHESIS_REDIS"


class SharedDatabaseError(RuntimeError):
    """The shared database was asked for and cannot be used (one line, set-up error)."""


def example_database(local_dir: str, url: Optional[str] = None):
    """A ``DirectoryBasedExampleDatabase`` on ``local_dir``, multiplexed with a
    ``RedisExampleDatabase`` on ``url`` (default: ``$X86LAB_HYPOTHESIS_REDIS``) if given."""
    from hypothesis.database import DirectoryBasedExampleDatabase, MultiplexedDatabase

    local = DirectoryBasedExampleDatabase(local_dir)
    url = os.environ.get(ENV, "") if url is None else url
    if not url:
        return local
    try:
        from hypothesis.extra.redis import RedisExampleDatabase
        from redis import Redis
        from redis.exceptions import RedisError
    except ImportError as exc:
        raise SharedDatabaseError(f"{ENV} is set but {exc.name} is missing "
                                  f"(pip install -e '.[campaign]')") from None
    try:
        client = Redis.from_url(url, socket_connect_timeout=5)
        client.ping()
    except (RedisError, ValueError) as exc:
        raise SharedDatabaseError(f"{ENV}={url}: cannot reach Redis ({exc})") from None
    return MultiplexedDatabase(local, RedisExampleDatabase(client,
                                                           key_prefix=b"x86lab-hypothesis:"))
