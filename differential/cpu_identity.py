"""Which CPU a native result came from: vendor, family, model, stepping and name.

Why: the real CPU is an oracle here (native vectors, test-i386's expected output, BusyBox
verdicts, probes such as repflags), and CPUs differ where the SDM leaves results undefined
(SHLD/SHRD with a count above the operand size: Intel and AMD print different results in
test-i386) or where vendors document different behaviour. A result that says "this CPU"
must say which one, and an accepted difference that rests on one vendor's behaviour names
it (``cpu = "GenuineIntel"`` in a known-differences entry) and applies only there.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Dict

CPUINFO = Path("/proc/cpuinfo")


@dataclass(frozen=True)
class CpuIdentity:
    vendor: str  # GenuineIntel, AuthenticAMD, ...
    family: int
    model: int
    stepping: int
    name: str

    def describe(self) -> str:
        """One line, e.g. ``AuthenticAMD family 25 model 17 stepping 1 (AMD EPYC)``; the
        string a known entry's ``cpu`` regular expression is matched against."""
        return (f"{self.vendor} family {self.family} model {self.model} "
                f"stepping {self.stepping} ({self.name})")

    def as_dict(self) -> Dict[str, object]:
        return {**asdict(self), "described": self.describe()}


def parse_cpuinfo(text: str) -> CpuIdentity:
    """The first processor's identity from ``/proc/cpuinfo`` text (unknown fields -1/"")."""
    first = text.split("\n\n", 1)[0]
    fields = {}
    for line in first.splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()

    def number(key: str) -> int:
        value = fields.get(key, "")
        return int(value) if re.fullmatch(r"\d+", value) else -1

    return CpuIdentity(fields.get("vendor_id", "unknown"), number("cpu family"),
                       number("model"), number("stepping"), fields.get("model name", ""))


@lru_cache(maxsize=1)
def this_cpu() -> CpuIdentity:
    """The machine's CPU (the native oracle)."""
    try:
        return parse_cpuinfo(CPUINFO.read_text("utf-8", "replace"))
    except OSError:
        return CpuIdentity("unknown", -1, -1, -1, "")
