"""Comparing a run against the committed baseline, in ratios rather than seconds.

Wall times on a shared machine swing by 2x with the load, but both engines swing together,
so every stage time is divided by a reference measured in the same run: QEMU's time to the
prompt on the tiny kernel (or, failing that, on the first QEMU boot that reached it). A
stage is a regression when that ratio exceeds the baseline's by more than ``tolerance``
*and* by at least ``MIN_SECONDS`` in absolute terms (tiny spans are all noise). Instruction
counts (v86) need no normalising. A warning line not in the baseline, a failed boot or a
failed check is a regression whatever the baseline says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

SCHEMA = 1
DEFAULT_TOLERANCE = 0.5  # a stage may take up to 1.5x its baseline ratio
INSTRUCTION_TOLERANCE = 0.1  # guest instruction counts barely move between runs
MIN_SECONDS = 0.5


@dataclass(frozen=True)
class Regression:
    combo: str
    kind: str  # "stage", "instructions", "warning", "check", "boot"
    detail: str

    def to_dict(self) -> dict:
        return {"combo": self.combo, "kind": self.kind, "detail": self.detail}


def reference_time(records: List[dict], prefer: Optional[str] = None
                   ) -> Tuple[Optional[str], Optional[float]]:
    """(combo id, seconds) of the run's yardstick: QEMU's time to the prompt, on the
    preferred combination (the baseline's) if the run has it, else on tiny."""
    qemu = [r for r in records if r["engine"] == "qemu" and "prompt" in r["marks"]]
    qemu.sort(key=lambda r: (r["id"] != prefer, r["kernel"] != "tiny"))
    if not qemu:
        return None, None
    return qemu[0]["id"], qemu[0]["marks"]["prompt"]


def span_ratios(record: dict, reference: Optional[float]) -> Dict[str, float]:
    if not reference:
        return {}
    return {span: round(seconds / reference, 4) for span, seconds in record["spans"].items()}


def make_baseline(records: List[dict]) -> dict:
    """The baseline file's content from a run (``--update-baseline``)."""
    ref_id, ref_seconds = reference_time(records)
    combos = {}
    for record in records:
        if record["boot"] != "ok":
            continue
        combos[record["id"]] = {
            "span_ratios": span_ratios(record, ref_seconds),
            "spans": record["spans"],
            "instructions_to_prompt": record["instructions"].get("prompt"),
            "exact_counts": record.get("exact_counts", False),
            "warnings": record["warnings"],
        }
    return {"schema": SCHEMA, "reference": ref_id, "reference_seconds": ref_seconds,
            "combos": combos}


def regressions(records: List[dict], baseline: Optional[dict],
                tolerance: float = DEFAULT_TOLERANCE) -> List[Regression]:
    """Everything in ``records`` that is worse than ``baseline`` (or bad in itself)."""
    found: List[Regression] = []
    ref_id, ref_seconds = reference_time(records, (baseline or {}).get("reference"))
    for record in records:
        combo = record["id"]
        if record["boot"] != "ok":
            found.append(Regression(combo, "boot", record["error"].split("\n")[0]))
        for check in record["checks"]:
            if not check["passed"] and record["boot"] == "ok":
                first_line = (check["message"].splitlines() or [""])[0]
                found.append(Regression(combo, "check", f"{check['name']}: {first_line}"))
        base = (baseline or {}).get("combos", {}).get(combo)
        if base is None:
            continue
        for line in record["warnings"]:
            if line not in base.get("warnings", []):
                found.append(Regression(combo, "warning", line))
        if baseline.get("reference") == ref_id:
            found += _slower_stages(record, base, ref_seconds, tolerance)
        found += _more_instructions(record, base)
    return found


def _slower_stages(record: dict, base: dict, ref_seconds: Optional[float],
                   tolerance: float) -> List[Regression]:
    found = []
    for span, ratio in span_ratios(record, ref_seconds).items():
        was = base.get("span_ratios", {}).get(span)
        if was is None or ref_seconds is None:
            continue
        extra_seconds = (ratio - was) * ref_seconds
        if ratio > was * (1 + tolerance) and extra_seconds >= MIN_SECONDS:
            found.append(Regression(
                record["id"], "stage",
                f"{span} took {ratio:.2f}x the reference, baseline {was:.2f}x"
                f" (tolerance +{tolerance:.0%})"))
    return found


def _more_instructions(record: dict, base: dict) -> List[Regression]:
    """More instructions to the prompt than the baseline allows; on an engine with a
    virtual clock (the reference) the count is exact, so any change is reported."""
    now, was = record["instructions"].get("prompt"), base.get("instructions_to_prompt")
    if now is not None and was and record.get("exact_counts") and now != was:
        return [Regression(record["id"], "instructions",
                           f"{now:,} instructions to the prompt, baseline {was:,} exactly "
                           "(a virtual clock: every boot retires the same count)")]
    if now is None or not was or now <= was * (1 + INSTRUCTION_TOLERANCE):
        return []
    return [Regression(record["id"], "instructions",
                       f"{now:,} instructions to the prompt, baseline {was:,}"
                       f" (tolerance +{INSTRUCTION_TOLERANCE:.0%})")]
