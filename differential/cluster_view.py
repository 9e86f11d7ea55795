"""What a Redis campaign looks like from outside: ``x86lab fuzz status`` (a rich table,
live or once) and ``x86lab fuzz report`` (the local campaign report, built from the same
files a local campaign writes, so both reports read alike)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Dict, List

from differential.cluster import QUEUE, key, load_plan

NEW_LINES = 8  # newest divergence lines shown by status


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def failed_batches(client: Any) -> List[str]:
    """One line per batch RQ gave up on (its worker kept dying or it kept raising)."""
    from rq import Queue
    from rq.job import Job
    from rq.registry import FailedJobRegistry

    registry = FailedJobRegistry(queue=Queue(QUEUE, connection=client))
    lines = []
    for job_id in registry.get_job_ids():
        job = Job.fetch(job_id, connection=client)
        reason = (job.latest_result().exc_string if job.latest_result() else "") or "?"
        last = reason.strip().splitlines()[-1] if reason.strip() else "?"
        lines.append(f"{job_id} failed after its retries, a finding: {last[:160]}")
    return lines


def snapshot(client: Any) -> Dict[str, Any]:
    """Everything status shows, read in one go."""
    from rq import Queue
    from rq.registry import StartedJobRegistry

    queue = Queue(QUEUE, connection=client)
    workers: Dict[str, Dict[str, float]] = {}
    for field, value in client.hgetall(key("workers")).items():
        name, what = _text(field).split("\t")
        workers.setdefault(name, {})[what] = float(_text(value))
    forms: Dict[str, Dict[str, int]] = {}
    for field, value in client.hgetall(key("forms")).items():
        form, status = _text(field).split("\t")
        forms.setdefault(form, {})[status] = int(value)
    return {"plan": load_plan(client).__dict__, "workers": workers, "forms": forms,
            "known": {_text(k): int(v) for k, v in client.hgetall(key("known")).items()},
            "done": client.scard(key("done")), "queued": queue.count,
            "running": len(StartedJobRegistry(queue=queue).get_job_ids()),
            "divergences": client.hlen(key("divergences")),
            "signatures": {_text(k): int(v) for k, v in
                           client.hgetall(key("signatures")).items()},
            "new": [_text(x) for x in client.lrange(key("found"), -NEW_LINES, -1)],
            "failed": failed_batches(client) + refusals(client)}


def refusals(client: Any) -> List[str]:
    """One line per worker whose code could not read the campaign's pinned known list
    (``cluster.refuse``): a finding, not a failed batch."""
    return [f"worker {_text(name)} refused the campaign: {_text(reason)}"
            for name, reason in sorted(client.hgetall(key("refusals")).items())]


def _group(form: str) -> str:
    """Forms grouped by mnemonic (ADD_Ev_Gv -> ADD); unlisted bytes form one group."""
    return "(not in FORMS)" if form.startswith("(not in FORMS)") else form.split("_")[0]


def render(state: Dict[str, Any], rates: Dict[str, float]) -> Any:
    """A rich renderable: workers with cases/s, coverage by form group, new divergences."""
    from rich.console import Group
    from rich.table import Table

    workers = Table(title="workers")
    for column in ("worker", "cases", "cases/s (recent)", "cases/s per busy core",
                   "last batch"):
        workers.add_column(column)
    for name, figures in sorted(state["workers"].items()):
        busy = figures.get("busy", 0.0)
        workers.add_row(name, f"{figures.get('cases', 0):.0f}",
                        f"{rates.get(name, 0.0):.0f}",
                        f"{figures.get('cases', 0) / busy:.0f}" if busy else "-",
                        f"{time.time() - figures.get('seen', 0):.0f} s ago")
    groups: Dict[str, Dict[str, int]] = {}
    for form, counts in state["forms"].items():
        total = groups.setdefault(_group(form), {})
        for status, n in counts.items():
            total[status] = total.get(status, 0) + n
    coverage = Table(title="coverage by form group")
    for column in ("group", "cases", "agree", "diverge", "crashed", "known"):
        coverage.add_column(column)
    for group, counts in sorted(groups.items()):
        coverage.add_row(group, str(sum(counts.values())),
                         *(str(counts.get(s, 0)) for s in ("agree", "diverge", "crashed",
                                                            "known")))
    cases = sum(f.get("cases", 0) for f in state["workers"].values())
    head = (f"campaign seed {state['plan']['seed']}, forms {state['plan']['forms']!r}: "
            f"{cases:.0f} cases, {sum(rates.values()):.0f} cases/s in all; batches done "
            f"{state['done']}, running {state['running']}, queued {state['queued']}; "
            f"divergences {state['divergences']}; known list pinned at sha256 "
            f"{state['plan'].get('known_sha256', '')[:12] or '(none)'}")
    findings = Table(title="findings by signature (form, mode, fields that differ)")
    for column in ("hits", "form", "mode", "fields"):
        findings.add_column(column)
    for mark, hits in sorted(state["signatures"].items(), key=lambda item: -item[1]):
        findings.add_row(str(hits), *mark.split("\t"))
    lines = [head, workers, coverage, findings, "new divergences:"]
    lines += [f"  {line}" for line in state["new"]] or ["  none"]
    lines += [f"finding: {line}" for line in state["failed"]]
    return Group(*lines)


def rates_between(before: Dict[str, Any], after: Dict[str, Any], seconds: float) -> Dict[
        str, float]:
    """cases/s per worker between two snapshots."""
    return {name: (figures.get("cases", 0) - before["workers"].get(name, {}).get("cases", 0))
            / seconds for name, figures in after["workers"].items()}


def busy_rates(state: Dict[str, Any]) -> Dict[str, float]:
    """cases per busy second per worker (what --once shows: no interval to measure)."""
    return {name: f.get("cases", 0) / f["busy"] if f.get("busy") else 0.0
            for name, f in state["workers"].items()}


def materialise(client: Any, directory: Path) -> List[str]:
    """Write the Redis campaign as a local campaign folder (campaign.json, workers/W.json,
    divergences/*.json); returns the failed-batch and refused-worker lines for the
    report."""
    from differential.campaign import PINNED_NAME, Plan
    from differential.corpus import save, write_durably

    state = snapshot(client)
    names = sorted(state["workers"]) or ["(none)"]
    (directory / "workers").mkdir(parents=True, exist_ok=True)
    plan = state["plan"]
    write_durably(directory / "campaign.json", json.dumps(
        Plan(seed=plan["seed"], jobs=len(names), forms=plan["forms"],
             bytes_share=plan["bytes_share"], known_sha256=plan["known_sha256"],
             draw_version=plan["draw_version"]).__dict__)
        + "\n")
    pinned = client.get(key("known-list"))
    if pinned is not None:  # the list every batch was judged with, as a local folder has
        write_durably(directory / PINNED_NAME, pinned.decode("utf-8"))
    for number, name in enumerate(names):  # counts per form are cluster-wide: on worker 0
        figures = state["workers"].get(name, {})
        record = {"worker": number, "next_batch": number, "name": name,
                  "cases": int(figures.get("cases", 0)), "busy": figures.get("busy", 0.0),
                  "forms": state["forms"] if number == 0 else {},
                  "known": state["known"] if number == 0 else {}}
        write_durably(directory / "workers" / f"{number}.json", json.dumps(record) + "\n")
    for value in client.hvals(key("divergences")):
        save(directory / "divergences", json.loads(value))
    (directory / "divergences").mkdir(exist_ok=True)
    return state["failed"]
