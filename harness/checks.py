"""What every booted guest must do at its shell, as data: pytest parametrises over CHECKS
and ``x86lab report`` runs the same list, so a check is written once.

Expected values come from outside the guest: the host computes hashes and arithmetic with
Python, sizes come from the engine's configuration, constants from the kernel's ABI (a
process killed by SIGTERM exits 128 + 15). Random inputs are drawn from a seeded generator
(``X86LAB_SEED``) so a failure replays.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import time
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

from harness import kernel_log
from harness.console import Console, ConsoleError
from harness.engines import SessionClosed

DEFAULT_SEED = 20240601


class CheckFailed(AssertionError):
    """The guest behaved differently from what the check expects."""


@dataclass
class CheckContext:
    """What a check may use: the console, the configured RAM, a seeded RNG."""

    console: Console
    memory_mib: int
    rng: random.Random


@dataclass(frozen=True)
class Check:
    name: str
    func: Callable[[CheckContext], None]

    @property
    def doc(self) -> str:
        return (self.func.__doc__ or "").strip().split("\n")[0]


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    seconds: float
    message: str = ""

    def to_dict(self) -> dict:
        return {"name": self.name, "passed": self.passed, "seconds": round(self.seconds, 3),
                "message": self.message}


def expect_equal(actual: object, expected: object, what: str) -> None:
    if actual != expected:
        raise CheckFailed(f"{what}: got {actual!r}, expected {expected!r}")


def check_machine(ctx: CheckContext) -> None:
    """``uname -m`` is i686: a 32-bit kernel on a P6-class CPU."""
    expect_equal(ctx.console.run_check("uname -m").strip(), "i686", "uname -m")


def check_arithmetic_and_pipes(ctx: CheckContext) -> None:
    """Shell arithmetic and a three-stage pipe give what Python computes."""
    a, b, c = (ctx.rng.randrange(1, 40000) for _ in range(3))
    out = ctx.console.run_check(f"echo $(( ({a} * {b}) % {c} + {a} - {b} ))")
    expect_equal(int(out), (a * b) % c + a - b, "shell arithmetic")
    words = [f"w{ctx.rng.randrange(10**6)}" for _ in range(20)]
    out = ctx.console.run_check(f"echo {' '.join(words)} | tr ' ' '\\n' | sort | tail -n 1")
    expect_equal(out.strip(), sorted(words)[-1], "echo | tr | sort | tail")


def check_file_round_trip(ctx: CheckContext) -> None:
    """Random bytes written to a fresh tmpfs read back bit-exact; md5sum agrees; rm works."""
    data = bytes(ctx.rng.getrandbits(8) for _ in range(4096 + ctx.rng.randrange(512)))
    folder = f"/tmp/x86lab-check-{ctx.rng.randrange(10**9)}"
    con = ctx.console
    con.run_check(f"mkdir -p {folder} && mount -t tmpfs x86lab {folder}")
    try:
        con.write_file(f"{folder}/blob", data)
        digest = con.run_check(f"md5sum {folder}/blob").split()[0]
        expect_equal(digest, hashlib.md5(data).hexdigest(), "md5sum of the written file")
        expect_equal(con.read_file(f"{folder}/blob"), data, "bytes read back")
        size = con.run_check(f"wc -c < {folder}/blob").strip()
        expect_equal(int(size), len(data), "wc -c")
        con.run_check(f"rm {folder}/blob")
        expect_equal(con.run(f"test -e {folder}/blob").status, 1, "test -e after rm")
    finally:
        con.run(f"umount {folder}; rmdir {folder}")


def check_dd_pipe(ctx: CheckContext) -> None:
    """1 MiB from /dev/zero through dd and a pipe arrives whole."""
    out = ctx.console.run_check("dd if=/dev/zero bs=1024 count=1024 2>/dev/null | wc -c",
                                timeout=120)
    expect_equal(int(out), 1024 * 1024, "bytes through the pipe")


def check_cpuinfo(ctx: CheckContext) -> None:
    """/proc/cpuinfo lists a processor with a vendor and the fpu and tsc flags."""
    text = ctx.console.run_check("cat /proc/cpuinfo")
    fields = dict(re.findall(r"^([a-z_ ]+?)\s*:\s*(.*)$", text, re.MULTILINE))
    for name in ("processor", "vendor_id", "flags"):
        if name not in fields:
            raise CheckFailed(f"/proc/cpuinfo has no {name!r} line:\n{text[:400]}")
    missing = {"fpu", "tsc"} - set(fields["flags"].split())
    if missing:
        raise CheckFailed(f"/proc/cpuinfo flags lack {sorted(missing)}: {fields['flags']}")


def check_meminfo(ctx: CheckContext) -> None:
    """MemTotal lies between 70 % and 100 % of the RAM the engine was given."""
    text = ctx.console.run_check("cat /proc/meminfo")
    match = re.search(r"^MemTotal:\s+(\d+) kB", text, re.MULTILINE)
    if not match:
        raise CheckFailed(f"/proc/meminfo has no MemTotal line:\n{text[:400]}")
    total_kib, configured_kib = int(match.group(1)), ctx.memory_mib * 1024
    if not 0.7 * configured_kib < total_kib <= configured_kib:
        raise CheckFailed(f"MemTotal {total_kib} kB is implausible for {ctx.memory_mib} MiB")


def check_exit_status(ctx: CheckContext) -> None:
    """Exit statuses reach ``$?`` and the driver: true 0, false 1, (exit N) N."""
    code = ctx.rng.randrange(2, 126)
    con = ctx.console
    expect_equal(con.run("true").status, 0, "status of true")
    expect_equal(con.run("false").status, 1, "status of false")
    expect_equal(con.run(f"(exit {code})").status, code, f"status of (exit {code})")
    expect_equal(con.run_check(f"(exit {code}); echo $?").strip(), str(code), "$?")


def check_signal_status(ctx: CheckContext) -> None:
    """A background job killed by SIGTERM reports 128 + 15 = 143 to ``wait``.

    The job signals that it has restored SIGTERM's default action (an interactive shell's
    children start out ignoring it) by creating a file; we busy-wait for that file rather
    than sleep, so this check does not depend on the guest's timers (clock_advances does).
    """
    ready = f"/tmp/.x86lab-job-ready-{ctx.rng.randrange(10**9)}"
    out = ctx.console.run_check(
        f"( trap - TERM; : > {ready}; exec cat /dev/zero > /dev/null ) &\n"
        f"pid=$!; while [ ! -e {ready} ]; do :; done\n"
        f"kill -TERM $pid; wait $pid; echo $?; rm -f {ready}", timeout=60)
    expect_equal(out.split()[-1], "143", "wait status of a SIGTERMed job")


def check_clock_advances(ctx: CheckContext) -> None:
    """``date +%s`` moves forward 1-3 s across a ``sleep 1`` in the guest."""
    out = ctx.console.run_check("a=$(date +%s); sleep 1; b=$(date +%s); echo $((b - a))",
                                timeout=60)
    if not 1 <= int(out) <= 3:
        raise CheckFailed(f"the guest clock moved {out.strip()} s across sleep 1")


def check_dmesg_clean(ctx: CheckContext) -> None:
    """The kernel log has no panic, oops, BUG, WARNING, call trace or segfault."""
    findings = kernel_log.scan(ctx.console.run_check("dmesg").encode())
    if findings:
        raise CheckFailed(f"dmesg shows {findings[0].pattern!r}:\n{findings[0].excerpt}")


CHECKS: Tuple[Check, ...] = tuple(
    Check(func.__name__[len("check_"):], func)
    for func in (
        check_machine, check_arithmetic_and_pipes, check_file_round_trip, check_dd_pipe,
        check_cpuinfo, check_meminfo, check_exit_status, check_signal_status,
        check_clock_advances, check_dmesg_clean,
    )
)


def seed_from_env() -> int:
    return int(os.environ.get("X86LAB_SEED", DEFAULT_SEED))


def context(console: Console, memory_mib: int, name: str, seed: Optional[int] = None
            ) -> CheckContext:
    """A check's context; its RNG depends on the seed and the check name only."""
    seed = seed_from_env() if seed is None else seed
    return CheckContext(console, memory_mib, random.Random(f"{seed}:{name}"))


def run_checks(console: Console, memory_mib: int, seed: Optional[int] = None
               ) -> List[CheckResult]:
    """Run every check, recording failures instead of stopping at the first.

    If the engine itself goes away the remaining checks are reported as not run.
    """
    results: List[CheckResult] = []
    for check in CHECKS:
        start = time.monotonic()
        try:
            check.func(context(console, memory_mib, check.name, seed))
            results.append(CheckResult(check.name, True, time.monotonic() - start))
        except SessionClosed as exc:
            results.append(CheckResult(check.name, False, time.monotonic() - start, str(exc)))
            break
        except (CheckFailed, ConsoleError, ValueError) as exc:
            results.append(CheckResult(check.name, False, time.monotonic() - start, str(exc)))
    ran = {result.name for result in results}
    results += [CheckResult(c.name, False, 0.0, "not run: the engine stopped")
                for c in CHECKS if c.name not in ran]
    return results
