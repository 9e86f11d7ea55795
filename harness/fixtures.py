"""pytest fixtures that boot guests: one boot per engine x kernel per test session.

``guest`` is parametrised over the selected combinations (ids like ``v86-tiny``), session
scoped so every test for a combination shares one boot; ``shell`` is its console. Choose
combinations with ``X86LAB_ENGINES=v86,qemu`` and ``X86LAB_KERNELS=tiny,debian`` (default:
all), RAM with ``X86LAB_MEMORY`` (MiB). Tests using them carry the ``boot`` and ``slow``
marks, so ``pytest -m 'not boot'`` stays fast.
"""

from __future__ import annotations

import os
from typing import Iterator, List, Sequence, Tuple

import pytest

from harness.console import Console
from harness.engines import ENGINE_NAMES
from harness.guest import DEFAULT_MEMORY_MIB, KERNEL_NAMES, Guest, start_guest

__all__ = ["guest", "shell", "selected_combinations"]


def _choose(variable: str, known: Sequence[str]) -> List[str]:
    raw = os.environ.get(variable, "")
    chosen = [name.strip() for name in raw.split(",") if name.strip()] or list(known)
    unknown = [name for name in chosen if name not in known]
    if unknown:
        raise pytest.UsageError(
            f"{variable}={raw!r}: unknown {', '.join(unknown)}; choose from {', '.join(known)}")
    return chosen


def selected_combinations() -> List[Tuple[str, str]]:
    """(engine, kernel) pairs chosen by X86LAB_ENGINES and X86LAB_KERNELS; without
    X86LAB_KERNELS an engine boots its catalogue's ``default_kernels``."""
    from ground.engines import boot_combinations

    engines = _choose("X86LAB_ENGINES", ENGINE_NAMES)
    kernels = _choose("X86LAB_KERNELS", KERNEL_NAMES)
    return boot_combinations(engines, kernels,
                             bool(os.environ.get("X86LAB_KERNELS", "").strip()))


def _params() -> list:
    marks = [pytest.mark.boot, pytest.mark.slow]
    return [pytest.param(combo, id=f"{combo[0]}-{combo[1]}", marks=marks)
            for combo in selected_combinations()]


@pytest.fixture(scope="module", params=_params())
def guest(request: pytest.FixtureRequest) -> Iterator[Guest]:
    """A booted guest for one engine x kernel, shared by a test module's tests (only
    harness/tests/test_shell.py asks for one). Not by the whole session: the last guest
    then idled at its prompt for the rest of the run, the reference's at a third of a
    core for 20 minutes of a clean-clone run, under the conformance matrix's boots."""
    from harness.guest import find_image

    engine, kernel = request.param
    memory = int(os.environ.get("X86LAB_MEMORY", DEFAULT_MEMORY_MIB))
    booted = start_guest(engine, find_image(kernel), kernel, memory)
    yield booted
    booted.stop()


@pytest.fixture(scope="module")
def shell(guest: Guest) -> Console:
    """The booted guest's shell (``run``, ``run_check``, ``write_file``, ``read_file``)."""
    return guest.console
