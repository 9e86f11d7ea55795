"""A campaign shared by workers on any number of machines, through one Redis server.

Redis holds everything; RQ (a maintained job queue on Redis) hands out the batches, so
leases, retries, time-outs and the failed-job registry are the library's, not ours. RQ
fits better than Celery or Dramatiq here: it needs nothing but Redis, a job is a plain
function call, and its fork-per-job worker turns the death of the process running a batch
(SIGKILL, a segfault, the OOM killer) into a retry of that batch, then a failed job.

Keys (in the database the URL names)::

    x86lab:plan          JSON plan, written by the first joiner; later ones must agree
    x86lab:known-list    the known-differences list as the first joiner had it (its
                         sha256 is in the plan): every batch is judged with it, whatever
                         the joiners' working trees hold now (``PinnedList``)
    x86lab:refusals      hash worker -> why its code cannot read the pinned list (a
                         finding, said once; that worker takes no batch)
    x86lab:next-batch    counter: each batch number is enqueued once (job id batch-N)
    x86lab:divergences   hash "batch:index" -> divergence record (as a local corpus file)
    x86lab:found         list of new divergence lines, in the order found
    x86lab:done          set of batch numbers whose counts are in (each counted once)
    x86lab:forms         hash "form<TAB>status" -> count
    x86lab:known         hash known-divergence id -> hits
    x86lab:workers       hash "name<TAB>cases|busy|seen" -> totals per worker
    x86lab:runs          hash batch -> how many times a worker started it
    x86lab:kept          hash signature -> records stored (an atomic count across workers)
    x86lab:signatures    hash signature -> hits (form, mode, fields that differ): a
                         thousand hits of one bug are one finding with a count; only the
                         first ``KEEP_PER_SIGNATURE`` records of a signature are stored

A batch's divergences are written (HSETNX) before its counts are committed, and its counts
are committed in one Lua script only if the batch was not done yet: with the server's
``appendfsync always`` a divergence is on disk before its batch counts as done, and a
batch retried after its worker died counts once. A batch whose worker keeps dying is
retried ``RETRIES`` times, then stays in RQ's failed registry and is reported as a
finding (``status``, ``report``).
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import socket
import time
from dataclasses import asdict, dataclass, replace
from typing import Any, Callable, Dict, List, Optional

from differential.campaign import (
    BYTES_SHARE,
    DRAW_VERSION,
    PinnedListError,
    Plan,
    check_draw_version,
    checked_pin,
    testable_forms,
)
from differential.campaign_files import CampaignError
from differential.check import AGREE, CRASHED, DIVERGE, KNOWN
from differential.judging import Tally, close_checkers, judge_keys
from differential.known import PinnedList
from differential.sandbox import SandboxError

PREFIX = "x86lab:"
QUEUE = "x86lab-batches"
CLUSTER_BATCH = 30000  # cases per job: each job (a fresh work horse) starts its two
# Unicorn children. Forked since helper 40 (sandbox.can_fork): 0.14-0.17 s CPU with 20
# cases judged, against 0.65-0.69 s spawned (alternating, load 3.6-4.8). Spawned, as
# measured on 2026-12-05: 0.40-0.53 s CPU (0.53 where no .pyc may be written,
# PYTHONDONTWRITEBYTECODE), against ~240 us of CPU a case: 17-20 % of a 10,000-case
# batch, 6-7 % of this one. Scale-out rounds, 1 worker, load 3-10: 354 and 359 us of
# worker CPU per case at 10,000, 300 and 329 at 30,000. A worker death redoes at most
# one batch (~7 s of one core); counts arrive per batch.
CHUNK = 500  # cases judged per round trip to the children; divergences stored after each
RETRIES = 2  # a batch whose worker died is run again this often, then it is a finding
JOB_TIMEOUT = 600  # seconds: a batch hanging this long is killed by RQ (then retried)
DEFAULT_CHECKERS = "differential.suite:checkers"
PRELOAD = ("differential.suite", "differential.judging", "differential.campaign",
           "differential.generator", "differential.attribution", "differential.sandbox",
           "differential.runners.reference_runner", "differential.runners.unicorn_runner")
CODE_ERRORS = ("KnownListError", "ImportError", "SyntaxError")  # a child that cannot judge
KEEP_PER_SIGNATURE = 5

_COMMIT = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
local c = cjson.decode(ARGV[2])
for key, n in pairs(c.forms) do redis.call('HINCRBY', KEYS[2], key, n) end
for key, n in pairs(c.known) do redis.call('HINCRBY', KEYS[3], key, n) end
for key, n in pairs(c.signatures) do redis.call('HINCRBY', KEYS[5], key, n) end
redis.call('HINCRBY', KEYS[4], ARGV[3] .. '\\tcases', c.cases)
redis.call('HINCRBYFLOAT', KEYS[4], ARGV[3] .. '\\tbusy', c.busy)
redis.call('HSET', KEYS[4], ARGV[3] .. '\\tseen', ARGV[4])
return 1
"""


@dataclass(frozen=True)
class ClusterPlan:
    seed: int = 1
    forms: str = "*"
    bytes_share: int = BYTES_SHARE
    batch_size: int = CLUSTER_BATCH
    checkers: str = DEFAULT_CHECKERS  # "module:function" building the checkers (tests plant)
    known_sha256: str = ""  # of the pinned known list (set by the first joiner)
    draw_version: int = DRAW_VERSION  # a stored plan without it is version 1

    def local(self) -> Plan:
        return Plan(seed=self.seed, jobs=1, forms=self.forms, bytes_share=self.bytes_share,
                    known_sha256=self.known_sha256, draw_version=self.draw_version)


def key(name: str) -> str:
    return PREFIX + name


def signature(judged: Any) -> str:
    """What makes two divergences the same finding: form (or mnemonic), mode and the
    fields that differ (flag names included, values left out); ``judged`` is a
    ``judging.Judged``."""
    fields = ",".join(sorted(set(judged.fields)))
    return f"{judged.label}\t{judged.mode}\t{fields}"


def connect(url: str) -> Any:
    """A Redis client for ``redis://HOST:PORT/N``; a bad URL or no server is a CampaignError."""
    from redis import Redis
    from redis.exceptions import RedisError

    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise CampaignError(f"--campaign {url!r}: expected redis://HOST:PORT/N")
    try:
        client = Redis.from_url(url, socket_connect_timeout=5, health_check_interval=30)
        client.ping()
    except (RedisError, ValueError) as exc:
        raise CampaignError(f"--campaign {url}: cannot reach Redis ({exc})") from None
    return client


def durability_warning(client: Any) -> str:
    """Empty when the server fsyncs every write (AOF, always); otherwise what may be lost."""
    config = client.config_get("append*")
    if config.get("appendonly") == "yes" and config.get("appendfsync") == "always":
        return ""
    return ("warning: the Redis server does not fsync every write (appendonly yes, "
            "appendfsync always); a server crash may lose the last divergences")


def open_plan(client: Any, plan: ClusterPlan, known: PinnedList) -> ClusterPlan:
    """Store the plan and pin ``known`` with it (one MSETNX) if the campaign is new;
    otherwise the stored plan must equal ``plan`` but for the pin, which stays the first
    joiner's. A pinned list this code cannot read is a ``PinnedListError``."""
    testable_forms(plan.forms)
    mine = replace(plan, known_sha256=known.digest)
    client.msetnx({key("plan"): json.dumps(asdict(mine), sort_keys=True),
                   key("known-list"): known.text})
    stored = load_plan(client)
    check_draw_version(stored.draw_version, "the campaign at this URL",
                       "Join it with the x86lab that started it, or start a new campaign "
                       "(another /N).")
    if replace(stored, known_sha256="") != replace(plan, known_sha256=""):
        raise CampaignError(f"the campaign at this URL has seed={stored.seed} "
                            f"forms={stored.forms!r}; join it with the same options")
    pinned_list(client, stored)
    return stored


def pinned_list(client: Any, plan: ClusterPlan) -> PinnedList:
    """The known list the campaign pinned, checked against the plan's sha256 and read
    with this code (else a ``PinnedListError`` saying what to do)."""
    raw = client.get(key("known-list"))
    if raw is None or not plan.known_sha256:
        raise CampaignError("the campaign at this URL has no pinned known list (an older "
                            "x86lab started it); start a new campaign (another /N)")
    pinned = PinnedList(raw.decode("utf-8"), f"{key('known-list')} (sha256 "
                                             f"{plan.known_sha256[:12]})")
    return checked_pin(pinned, plan.known_sha256, f"{key('known-list')} in Redis is damaged",
                       "start a new campaign (another /N)",
                       "join with the x86lab that started it, or start a new campaign "
                       "(another /N)")


def refuse(client: Any, worker: str, reason: str) -> bool:
    """Record once that ``worker`` cannot judge with the pinned list (``x86lab fuzz
    status`` and ``report`` list it); False if it was recorded already."""
    return bool(client.hsetnx(key("refusals"), worker, reason))


def load_plan(client: Any) -> ClusterPlan:
    raw = client.get(key("plan"))
    if raw is None:
        raise CampaignError("no campaign at this URL yet (start one with "
                            "x86lab fuzz --campaign URL)")
    try:
        return ClusterPlan(**{"draw_version": 1, **json.loads(raw)})
    except (TypeError, ValueError):
        raise CampaignError(f"{key('plan')} in Redis is damaged: {raw[:80]!r}") from None


def _make_checkers(path: str, known: PinnedList) -> List[Any]:
    module, function = path.split(":")
    return getattr(importlib.import_module(module), function)(known)


def _store(client: Any, plan: ClusterPlan, batch: int, judged: Tally,
           counts: Dict[str, Any]) -> int:
    """Count one chunk's verdicts (a ``judging.Tally``) into ``counts`` and store its
    divergences at once (the first ``KEEP_PER_SIGNATURE`` of each signature); returns how
    many diverged."""
    found = 0
    for form, count in judged.agreed.items():
        label = f"{form}\t{AGREE}"
        counts["forms"][label] = counts["forms"].get(label, 0) + count
    for one in judged.others:
        label = f"{one.label}\t{one.status}"
        counts["forms"][label] = counts["forms"].get(label, 0) + 1
        if one.status == KNOWN:
            counts["known"][one.known] = counts["known"].get(one.known, 0) + 1
        if one.status not in (DIVERGE, CRASHED):
            continue
        found += 1
        mark = signature(one)
        counts["signatures"][mark] = counts["signatures"].get(mark, 0) + 1
        if client.hincrby(key("kept"), mark, 1) > KEEP_PER_SIGNATURE:
            continue  # counted (at commit), not stored again
        record = {**one.record, "case_seed": one.seed, "campaign_seed": plan.seed,
                  "batch": batch, "index": one.index, "signature": mark}
        if client.hsetnx(key("divergences"), f"{batch}:{one.index}", json.dumps(record)):
            client.rpush(key("found"), one.line)
    return found


def run_batch_job(batch: int) -> Dict[str, Any]:
    """RQ job: judge batch ``batch`` chunk by chunk, storing each chunk's divergences as
    soon as they are known, then commit the batch's counts (once)."""
    from rq import get_current_job

    job = get_current_job()
    client = job.connection
    worker = job.worker_name or f"{socket.gethostname()}:{os.getppid()}"
    client.hincrby(key("runs"), str(batch), 1)
    client.hset(key("running"), str(batch), f"{worker}\t{os.getpid()}")
    plan = load_plan(client)
    started = time.perf_counter()
    try:
        checkers = _make_checkers(plan.checkers, pinned_list(client, plan))
        forms = testable_forms(plan.forms)
    except (ImportError, SyntaxError, PinnedListError) as exc:
        _cannot_judge(client, worker, exc)
        raise
    counts: Dict[str, Any] = {"forms": {}, "known": {}, "signatures": {},
                              "cases": plan.batch_size}
    found = 0
    try:
        for first in range(0, plan.batch_size, CHUNK):
            numbers = range(first, min(first + CHUNK, plan.batch_size))
            judged = judge_keys(checkers, plan.local(), forms, batch, numbers)
            found += _store(client, plan, batch, judged, counts)
        close_checkers(checkers)
    except SandboxError as exc:  # a child (a fork, or a fresh interpreter) could not start?
        if any(name in str(exc) for name in CODE_ERRORS):
            _cannot_judge(client, worker, exc)
        raise
    counts["busy"] = time.perf_counter() - started
    committed = client.eval(_COMMIT, 5, key("done"), key("forms"), key("known"),
                            key("workers"), key("signatures"), str(batch),
                            json.dumps(counts), worker, str(time.time()))
    client.hdel(key("running"), str(batch))
    return {"batch": batch, "divergences": found, "counted": bool(committed)}


def _cannot_judge(client: Any, worker: str, exc: Exception) -> None:
    """The job's code cannot judge at all (the worker's, or its sandbox child's: a fresh
    interpreter, which may run a newer checkout, when the checkout was edited): it cannot
    read the pinned list, or a module does not import (a checkout edited mid-run: the
    last session's scale-out lost 175 batches to one ImportError, each failed after its
    retries). Record that once and stop this worker (RQ's shutdown command): the batch
    goes back to RQ for a worker that can, and this one does not fail batch after batch."""
    from rq.command import send_shutdown_command

    if refuse(client, worker, f"{type(exc).__name__}: {exc}"[:400]):
        send_shutdown_command(client, worker)


def _preload(client: Any) -> None:
    """Import, in the worker, the modules its work horses use, so that every horse (a fork)
    runs the code its worker started with, not a mix with files edited since."""
    plan = load_plan(client)
    for module in (*PRELOAD, plan.checkers.split(":")[0]):
        importlib.import_module(module)


def feed(client: Any, queue: Any, depth: int) -> int:
    """Enqueue new batches until ``depth`` wait. The batch number is taken and its job
    enqueued in one transaction (WATCH/MULTI), so no number is enqueued twice and none is
    taken without its job, even if Redis or this process dies in between. Returns how many
    were added."""
    from redis.exceptions import WatchError
    from rq import Retry

    added = 0
    while queue.count < depth:
        with client.pipeline() as pipe:
            try:
                pipe.watch(key("next-batch"))
                batch = int(pipe.get(key("next-batch")) or 0)
                pipe.multi()
                pipe.set(key("next-batch"), batch + 1)
                queue.enqueue_call(run_batch_job, args=(batch,), job_id=f"batch-{batch}",
                                   timeout=JOB_TIMEOUT, retry=Retry(max=RETRIES),
                                   result_ttl=3600, failure_ttl=-1, pipeline=pipe)
                pipe.execute()
            except WatchError:  # another joiner took this number first: take the next
                continue
        added += 1
    return added


def _worker_process(url: str, name: str, parent: int) -> None:
    """One RQ worker (it forks a work horse per batch); dies with the joiner."""
    from rq import Queue, Worker

    from differential.lifeline import die_with_parent

    die_with_parent(parent)
    client = connect(url)
    try:
        _preload(client)
    except (ImportError, SyntaxError) as exc:
        refuse(client, name, f"{type(exc).__name__}: {exc}"[:400])
        raise SystemExit(2) from None
    Worker([Queue(QUEUE, connection=client)], connection=client, name=name).work(
        logging_level="WARNING", with_scheduler=False)


def _stop(client: Any, processes: List[Any], names: List[str]) -> None:
    """RQ's warm shutdown (SIGTERM): a running batch finishes. A worker idle in its dequeue
    can sit there long after the signal, so once it runs no batch it gets a second SIGTERM
    (RQ's cold shutdown, which then has no batch to lose)."""
    for process in processes:
        if process.is_alive():
            os.kill(process.pid, signal.SIGTERM)
    deadline = time.time() + JOB_TIMEOUT
    while any(p.is_alive() for p in processes) and time.time() < deadline:
        time.sleep(1.5)  # RQ ignores a second signal within one second of the first
        try:
            busy = {_text(v).split("\t")[0] for v in client.hvals(key("running"))}
        except Exception:  # noqa: BLE001 - Redis away: let the workers end by themselves
            continue
        for process, name in zip(processes, names):
            if process.is_alive() and name not in busy:
                os.kill(process.pid, signal.SIGTERM)
    for process in processes:
        process.join(1)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def join(url: str, plan: ClusterPlan, jobs: int, minutes: float,
         say: Callable[[str], None] = print, known: Optional[PinnedList] = None) -> List[str]:
    """Run ``jobs`` workers on this machine for ``minutes``, keeping the queue fed; returns
    one line per worker that ended badly. Batches still queued at the end stay queued.
    ``known``: the list to pin if this joiner starts the campaign (default: this
    checkout's ``known_divergences.toml``); a campaign always judges with its pinned one.
    A joiner whose code cannot read the pinned list records that in Redis (once) and
    raises ``PinnedListError`` before any worker starts."""
    import multiprocessing

    from rq import Queue

    client = connect(url)
    mine = known if known is not None else PinnedList.read()
    host = socket.gethostname()
    names = [f"{host}-{os.getpid()}-{k}" for k in range(jobs)]
    try:
        stored = open_plan(client, plan, mine)
    except PinnedListError as exc:
        refuse(client, f"{host}-{os.getpid()}", str(exc))
        raise
    if stored.known_sha256 != mine.digest:
        say(f"judging with the campaign's pinned known list (sha256 "
            f"{stored.known_sha256[:12]}), not {mine.where} as it is now "
            f"({mine.digest[:12]}): a campaign keeps the list it started with")
    warning = durability_warning(client)
    if warning:
        say(warning)
    queue = Queue(QUEUE, connection=client)
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_worker_process, args=(url, name, os.getpid()),
                                 daemon=False) for name in names]
    deadline = time.time() + minutes * 60
    feed(client, queue, 2 * jobs)
    for process in processes:
        process.start()
    try:
        while time.time() < deadline and any(p.is_alive() for p in processes):
            try:
                feed(client, queue, 2 * jobs)
            except Exception as exc:  # noqa: BLE001 - Redis away for a moment: try again
                say(f"cannot feed the queue ({type(exc).__name__}: {exc}); retrying")
            time.sleep(0.5)
    finally:
        _stop(client, processes, names)
    # -SIGTERM is our own stop arriving as RQ's worker exits (its handlers gone): the
    # worker was idle or done, nothing is lost (seen in bench --scale-out's 2-worker rounds)
    return [f"worker {k} ended with status {p.exitcode}" for k, p in enumerate(processes)
            if p.exitcode not in (0, None, -signal.SIGTERM)]
