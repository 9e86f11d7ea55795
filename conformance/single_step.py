"""Does an engine deliver the single-step trap? ``guest/tfprobe.c`` answers in three
lines (TF set by POPF, TF set through sigreturn, an INT3 after a NOP); this machine's CPU
gives the expected lines. A guest whose lines differ gets one finding on the vectors
suite, group ``(single-step trap)``, with both outputs as its reproducer: it explains why
the stepper fell back to sentinels there (``conformance/sentinels.py``).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Optional

from conformance.findings import Finding
from differential.runners.native_runner import build

SOURCE = Path(__file__).parent / "guest" / "tfprobe.c"
GROUP = "(single-step trap)"


def binary() -> Path:
    return build(source_path=SOURCE)


def run_natively() -> str:
    """The probe's lines on this machine's CPU: the expected ones."""
    done = subprocess.run([str(binary())], capture_output=True, text=True, timeout=30)
    return done.stdout


def probe_lines(text: str) -> str:
    """The probe's three result lines out of a console transcript."""
    wanted = ("popf:", "sigreturn:", "int3:")
    return "\n".join(line.strip() for line in text.splitlines()
                     if line.strip().startswith(wanted))


def finding(engine: str, expected: str, got: str) -> Optional[Finding]:
    """A finding when the engine's probe lines differ from the CPU's, else None."""
    expected, got = probe_lines(expected), probe_lines(got)
    if expected == got:
        return None
    first = next((f"{e!r} -> {g!r}" for e, g in zip(expected.splitlines(),
                  got.splitlines() + [""] * 3) if e != g), "")
    return Finding(engine, "vectors", GROUP, 1,
                   f"{engine} does not single-step like the CPU ({first}); vectors stop at a "
                   "sentinel INT3 instead",
                   {"program": "conformance/guest/tfprobe.c", "expected": expected,
                    "got": got, "build": "gcc -m32 -static -O1 conformance/guest/tfprobe.c"})
