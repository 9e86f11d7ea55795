"""The engine catalogue: every engine x86lab knows, what it can do, and where its code and
its known differences live. One row per engine; the CLI's choices, the pytest boot
fixtures, the conformance matrix and its report all read this table, so adding an engine
is its module (named here by a dotted path, never imported from this floor) plus its
known-differences file.

A path is ``"package.module:attribute"``; the part that uses it imports it (``load``), so
the catalogue costs nothing to read and an engine whose code or host tool is missing
still has a name, a row in ``--help`` and a clear error when it is asked to run.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Dict, FrozenSet, List, Sequence, Tuple

BOOTS_IMAGE = "boots_image"
"""Starts a Linux image (kernel + initramfs) and hands back its serial console."""
GUEST_VECTORS = "guest_vectors"
"""Runs vectors through the user-mode stepper in a Linux process: inside a booted guest,
or on this machine itself (``native``); what user mode cannot express is classified."""
STEPS_CASES = "steps_cases"
"""Executes one case in this process (a ``ground.case.Runner``, or a batch stepper)."""
COUNTS_INSTRUCTIONS = "counts_instructions"
"""Reports the guest instructions retired at each boot mark (``Metrics.instructions``)."""
SAVES_STATE = "saves_state"
"""Can save a booted machine and restore it later (the web demo's saved state)."""
CAPABILITIES = (BOOTS_IMAGE, GUEST_VECTORS, STEPS_CASES, COUNTS_INSTRUCTIONS, SAVES_STATE)


@dataclass(frozen=True)
class EngineEntry:
    """One engine's declaration.

    ``boots``: the harness engine class (``start(image) -> Session``) when it boots images;
    ``runner``: a factory of ``Runner`` (with ``options``) when it steps cases one by one;
    ``batch``: a function stepping a list of cases at once (``StepAll``), preferred by the
    conformance matrix where the engine has one. ``known``: its known-differences file,
    relative to the repository. ``variant_of``: a second configuration of another engine
    (offered where runners are chosen, not a column of the matrix). ``default_kernels``:
    see the field. ``stand_in``: not an
    emulator at all (the harness's own tests), never offered as a choice.
    """

    name: str
    summary: str
    capabilities: FrozenSet[str]
    boots: str = ""
    runner: str = ""
    options: Dict[str, Any] = field(default_factory=dict)
    batch: str = ""
    known: str = ""
    variant_of: str = ""
    stand_in: bool = False
    default_kernels: Tuple[str, ...] = ()
    """The kernels its boots cover unless kernels are named (test fixtures, ``make
    report``); empty means all. The reference interprets in Python: the Debian kernel's
    ~2.8 G instructions are a run of its own, not part of every test session."""

    def __post_init__(self) -> None:
        unknown = set(self.capabilities) - set(CAPABILITIES)
        if unknown:
            raise ValueError(f"engine {self.name}: unknown capabilities {sorted(unknown)}")

    def can(self, capability: str) -> bool:
        return capability in self.capabilities

    @property
    def known_file(self) -> str:
        """Where its accepted differences are written, relative to the repository."""
        return self.known or f"conformance/known/{self.name}.toml"


CATALOGUE: Tuple[EngineEntry, ...] = (
    EngineEntry(
        "v86", "v86 in Node: the engine the web demo runs",
        frozenset({BOOTS_IMAGE, GUEST_VECTORS, COUNTS_INSTRUCTIONS, SAVES_STATE}),
        boots="harness.engines.v86:V86Engine"),
    EngineEntry(
        "qemu", "qemu-system-i386 with TCG: the fast, well-trodden peer",
        frozenset({BOOTS_IMAGE, GUEST_VECTORS}),
        boots="harness.engines.qemu:QemuEngine"),
    EngineEntry(
        "bochs", "Bochs 2.7, the interpreter written from the manuals: the accuracy peer",
        frozenset({BOOTS_IMAGE, GUEST_VECTORS}),
        boots="harness.engines.bochs:BochsEngine"),
    EngineEntry(
        "native", "this machine's CPU through the user-mode stepper: the programs' oracle",
        frozenset({GUEST_VECTORS, STEPS_CASES}),
        batch="conformance.native:run_native"),
    EngineEntry(
        "unicorn", "Unicorn 2.1.4 in a sacrificial child process (it aborts on some input)",
        frozenset({STEPS_CASES}),
        runner="differential.sandbox:sandboxed_unicorn",
        known="differential/known_divergences.toml"),
    EngineEntry(
        "reference", "x86lab's own readable emulator: as a PC it boots the image too",
        frozenset({BOOTS_IMAGE, STEPS_CASES, COUNTS_INSTRUCTIONS}),
        boots="harness.engines.reference:ReferenceEngine",
        runner="differential.runners.reference_runner:ReferenceRunner",
        default_kernels=("tiny",)),
    # Unicorn with memory hooks installed takes other code paths inside Unicorn (flag bugs
    # have hidden there), so vector replays may ask for it by name.
    EngineEntry(
        "unicorn-memhooks", "Unicorn with memory hooks installed",
        frozenset({STEPS_CASES}),
        runner="differential.sandbox:sandboxed_unicorn", options={"memory_hooks": True},
        known="differential/known_divergences.toml", variant_of="unicorn"),
    # The reference's compiled path (reference.blocks): each case's instruction as a
    # one-instruction block, so the vectors check the generated code form by form.
    EngineEntry(
        "reference-blocks", "the reference, each instruction through its block compiler",
        frozenset({STEPS_CASES}),
        runner="differential.runners.reference_runner:ReferenceRunner",
        options={"compiled": True}, variant_of="reference"),
    EngineEntry(
        "local", "the host's /bin/sh on a pty announcing fake boot marks (harness tests)",
        frozenset({BOOTS_IMAGE}),
        boots="harness.engines.local:LocalShellEngine", stand_in=True),
)

BY_NAME: Dict[str, EngineEntry] = {entry.name: entry for entry in CATALOGUE}


def engines(*needed: str, variants: bool = False) -> Tuple[str, ...]:
    """The names of the engines that have every capability in ``needed``, in catalogue
    order; variants only when asked, stand-ins never."""
    return tuple(e.name for e in CATALOGUE
                 if not e.stand_in and (variants or not e.variant_of)
                 and all(e.can(c) for c in needed))


def boot_combinations(names: Sequence[str], kernels: Sequence[str],
                      kernels_named: bool) -> List[Tuple[str, str]]:
    """The (engine, kernel) pairs to boot: every kernel when the user named the kernels,
    else each engine's ``default_kernels`` (all when it has none)."""
    return [(name, kernel) for name in names for kernel in kernels
            if kernels_named or not BY_NAME[name].default_kernels
            or kernel in BY_NAME[name].default_kernels]


def load(path: str) -> Any:
    """The attribute a ``"module:attribute"`` path names (ImportError/AttributeError as
    Python raises them, for the caller to turn into its own one-line error)."""
    module_name, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module_name), attribute)
