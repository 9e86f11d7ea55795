"""The suite interface: what a conformance suite declares and does, so that the matrix
(``conformance/matrix.py``) loops over engines x suites knowing neither.

A suite says which engine capabilities it needs (``ground.engines``), prepares once per
run (builds its programs, runs them on this CPU for the expected output), hands the guest
its files (they go into the image as an overlay, so one boot serves every suite), runs in
a booted guest or, for an engine that boots nothing, in this process, and turns what it
got into a ``SuiteResult``. ``finish`` sees every engine's results at the end, for
comparisons across engines. Each suite is one module of ``conformance/suites/``.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, ClassVar, Dict, Iterator, List, Optional, Sequence

from conformance import busybox_suite
from conformance.findings import SuiteResult
from ground.engines import BOOTS_IMAGE, EngineEntry

if TYPE_CHECKING:
    from conformance.guest_session import GuestHolder

Progress = Callable[[str], None]


@dataclass
class Options:
    engines: Sequence[str]
    suites: Sequence[str]
    kernel: str = "tiny"
    limit: Optional[int] = None  # vectors per form file; busybox applets (busybox_suite)
    busybox_limit: int = busybox_suite.LIMIT_SECONDS  # seconds per applet
    vector_paths: Sequence[Path] = ()  # replay these instead of the corpus
    repro_dir: Path = Path("conformance-repro")


@dataclass
class Run:
    """What every suite of one matrix run shares: the options, the progress line and the
    wall-time record (label -> seconds, the report's ``wall_seconds``)."""

    options: Options
    progress: Progress = lambda _message: None
    wall_seconds: Dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def timer(self, label: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            self.wall_seconds[label] = round(time.monotonic() - start, 2)


class Suite:
    """One suite; a fresh instance per matrix run holds what ``prepare`` made."""

    name: ClassVar[str]
    rank: ClassVar[int]  # its column in the matrix, left to right
    needs: ClassVar[Sequence[str]] = (BOOTS_IMAGE,)  # capabilities an engine must have
    # True: the suite boots a machine of its own on each engine (the bare-metal image),
    # so the matrix calls ``run_here`` even for an engine that boots the Linux guest.
    own_machine: ClassVar[bool] = False

    def __init__(self, run: Run) -> None:
        self.run = run

    @classmethod
    def applies(cls, engine: EngineEntry) -> bool:
        """Whether ``engine`` can run this suite (else its cell is ``n/a``)."""
        return all(engine.can(capability) for capability in cls.needs)

    def prepare(self, engines: Sequence[EngineEntry]) -> None:
        """Once per run, before any engine, when at least one of ``engines`` applies."""

    def guest_files(self) -> Dict[str, bytes]:
        """Files the guest needs, by name under ``guest_session.GUEST_DIR``."""
        return {}

    def run_in_guest(self, holder: GuestHolder) -> SuiteResult:
        """Run in the booted guest ``holder.guest`` of engine ``holder.engine``."""
        raise NotImplementedError(f"suite {self.name} does not run in a guest")

    def run_here(self, engine: EngineEntry) -> SuiteResult:
        """Run for an engine that boots nothing (in this process or on this CPU), or
        for any engine when the suite has its ``own_machine``."""
        raise NotImplementedError(f"suite {self.name} does not run without a guest")

    def finish(self, results: List[SuiteResult]) -> None:
        """After every engine ran and known differences were marked: cross-engine notes."""
