"""The x87 FPU's instructions live in ``reference/x87/`` (their own package: values,
state, families); importing them here registers them with ``implements``."""

from reference.x87 import (  # noqa: F401
    arithmetic,
    compare,
    environment,
    load_store,
    transcendental,
)
