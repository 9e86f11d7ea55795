"""``python -m reference.pc``: boot a kernel on the reference PC with the serial console
on this process's stdin/stdout, as ``qemu-system-i386 -serial stdio`` does.

stdout carries the guest's serial line byte for byte; metrics go to stderr as JSON lines
prefixed ``X86LAB `` (the same protocol as the v86 runner, so the harness reads both
alike):
  {"event": "started", "interpreter": ..., "placement": ..., "blocks": ...}
                                       after the loader ("blocks": the thresholds,
                                       whether the disk cache and the maker are on;
                                       "interpreter": which Python, and under PyPy
                                       its GC nursery, "nursery_bytes")
  {"event": "stage", "name": ...}      when the console first shows a stage's text
                                       (stages are matched in the order given)
  {"event": "counter"}                 on SIGUSR1, and with ``--progress N`` each time
                                       another N instructions have run (at the end
                                       of that batch: a warm-up curve)
  {"event": "where", "trace": [...]}   on SIGUSR2: the next 20 instructions the guest
                                       runs and where (what a hung guest is doing)
  {"event": "stop", "reason", "detail", "peak_rss_kib", "in_blocks"}  when the
                                       machine stops (peak_rss_kib: this process's own
                                       VmHWM, not counting the parent's pages before
                                       exec; in_blocks: the instructions retired inside
                                       compiled blocks, the rest were interpreted)
Each carries "instructions" (retired guest instructions), "cycles" (virtual time,
idle included) and "t" (wall seconds since the process started). The exit status is 0
when the guest reset the machine (``panic=-1`` and ``reboot`` end that way) or was
stopped by SIGTERM, 1 for a guest or emulator failure (triple fault, a halt nothing can
end, a gap in the emulator, an access outside RAM), 2 for bad input.

``--exit-at-stage NAME`` stops the machine once stage NAME has been reported (at the end
of that batch) and exits 0 with stop reason "stopped": a replay check boots to a stage
twice and compares the counts and the console bytes.

Under PyPy, set ``PYPY_GC_NURSERY=16M`` (x86lab's own launchers do). PyPy otherwise takes
half the last-level cache the CPU reports, which a virtual machine may report as
hundreds of MiB. That made the boot 1.5x slower (``reference.pypy_gc``), and the PC
warns on stderr when it runs with such a nursery.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import threading
import time
from collections import deque
from typing import Deque, List, Optional, Tuple

from reference.cpu import MAKER_BLOCK_THRESHOLD, Cpu
from reference.pc.boot_protocol import BootError, load, read_files
from reference.pc.clock import FREQUENCY
from reference.pc.machine import DEFAULT_MEMORY, MIB, Pc
from reference.pypy_gc import nursery_bytes, warning

PREFIX = "X86LAB "
IDLE_WAIT_MAX = 0.05
"""Longest wall-clock wait for one idle stretch, so signals and input are seen soon."""
WHERE_STEPS = 20


def interpreter() -> dict:
    """Which Python runs the PC (reports compare CPython and PyPy), and under PyPy the
    size of its GC nursery, which changed the boot's speed by 1.5x (``pypy_gc``)."""
    out = {"name": platform.python_implementation(), "version": platform.python_version(),
           "executable": sys.executable}
    nursery = nursery_bytes()
    if nursery is not None:
        out["nursery_bytes"] = nursery
    return out


class Console:
    """The serial line's host side: output buffered per batch, stage marks found in it,
    input read by a thread and handed to the UART between batches."""

    def __init__(self, stages: List[Tuple[str, bytes]], emit) -> None:
        self.out = bytearray()
        self.stages = list(stages)
        self.seen = b""
        self.emit = emit
        self.total = 0
        self.incoming: Deque[bytes] = deque()
        self.arrived = threading.Event()
        self.eof = False
        self.reached: List[str] = []
        """Names of the stages seen so far, in order."""

    def transmit(self, data: bytes) -> None:
        self.out += data

    def flush(self) -> None:
        if not self.out:
            return
        data = bytes(self.out)
        self.out.clear()
        self.total += len(data)
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        if self.stages:
            self.seen = (self.seen + data)[-4096:]
            while self.stages and self.stages[0][1] in self.seen:
                name, text = self.stages.pop(0)
                self.emit("stage", name=name)
                self.reached.append(name)
                self.seen = self.seen[self.seen.index(text) + len(text):]

    def read_stdin(self) -> None:
        """Thread body: every byte typed goes to the guest, none is dropped."""
        while True:
            try:
                data = os.read(0, 4096)
            except OSError:
                data = b""
            if not data:
                self.eof = True
                return
            self.incoming.append(data)
            self.arrived.set()

    def wait_idle(self, cycles: int) -> None:
        """The guest is halted for ``cycles``: let about that much wall time pass (at most
        IDLE_WAIT_MAX), ending early when input arrives. Short halts (a byte arriving on
        the serial line) are not waited for."""
        if cycles < FREQUENCY // 1000:
            return
        self.flush()
        self.arrived.clear()
        if not self.incoming:
            self.arrived.wait(min(cycles / FREQUENCY, IDLE_WAIT_MAX))


def block_settings(cpu: Cpu) -> dict:
    """How this run makes and finds blocks (``reference.blocks``), for the started
    record: a boot's speed depends on it, and a report that compares two boots must
    know whether they were made alike."""
    return {"threshold": cpu.block_threshold, "cache_lookups": cpu.cached_threshold,
            "cache": cpu.block_cache is not None, "maker": cpu.block_maker is not None}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reference.pc", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kernel", required=True, help="a bzImage")
    parser.add_argument("--initrd", help="an initramfs (any format the kernel reads)")
    parser.add_argument("--append", default="console=ttyS0", help="the kernel command line")
    parser.add_argument("--memory", type=int, default=DEFAULT_MEMORY // MIB,
                        help="guest RAM in MiB (default %(default)s)")
    parser.add_argument("--stage", action="append", default=[], metavar="NAME=TEXT",
                        help="report when TEXT first appears on the console (in order)")
    parser.add_argument("--budget", type=int, help="stop after this many instructions")
    parser.add_argument("--block-threshold", type=int, metavar="N",
                        help="executions of an instruction before a block is compiled from "
                        "it (0: never; default: this interpreter's, see reference.cpu)")
    parser.add_argument("--cache-lookups", type=int, metavar="N",
                        help="executions of an instruction before its block is looked for "
                        "in the block cache, before the threshold (default: "
                        "reference.cpu.CACHED_THRESHOLD; 0: only at the threshold). A warm "
                        "cache with N = the threshold boots as a cold one would with a block "
                        "maker that made each block at once")
    parser.add_argument("--progress", type=int, metavar="N",
                        help="report a counter event every N instructions")
    parser.add_argument("--no-block-cache", action="store_true",
                        help="neither read nor keep compiled blocks in "
                        "$X86LAB_CACHE/reference-blocks (reference.blocks.cache)")
    parser.add_argument("--no-block-maker", action="store_true",
                        help="make blocks in this process instead of a second one that "
                        "works while this one interprets (reference.blocks.background; "
                        "results and instruction counts are the same either way)")
    parser.add_argument("--record-blocks", metavar="FILE",
                        help="write each block the block maker is asked for to FILE, for "
                        "python -m reference.blocks.replay FILE (the maker's speed alone)")
    parser.add_argument("--exit-at-stage", metavar="NAME",
                        help="stop the machine and exit 0 once stage NAME (one of the "
                        "--stage names) has been seen")
    args = parser.parse_args(argv)
    started = time.monotonic()
    pc: Optional[Pc] = None

    def emit(event: str, **fields) -> None:
        record = {"event": event, **fields, "t": round(time.monotonic() - started, 3)}
        if pc is not None:
            record["instructions"] = pc.cpu.tsc - pc.clock.skipped
            record["cycles"] = pc.cpu.tsc
        sys.stderr.write(PREFIX + json.dumps(record) + "\n")
        sys.stderr.flush()

    stages = []
    for spec in args.stage:
        name, sep, text = spec.partition("=")
        if not sep:
            parser.error(f"--stage wants NAME=TEXT, got {spec!r}")
        stages.append((name, text.encode("latin-1")))
    if args.cache_lookups is not None and args.cache_lookups < 0:
        parser.error(f"--cache-lookups {args.cache_lookups}: a count, 0 or more")
    if args.record_blocks is not None and (args.no_block_maker or args.no_block_cache
                                           or args.block_threshold == 0):
        parser.error("--record-blocks records the block maker's requests: it needs the "
                     "maker (no --no-block-maker, --no-block-cache or --block-threshold 0)")
    if args.exit_at_stage is not None and args.exit_at_stage not in dict(stages):
        parser.error(f"--exit-at-stage {args.exit_at_stage}: no --stage of that name")
    console = Console(stages, emit)
    try:
        image, initrd = read_files(args.kernel, args.initrd)
        pc = Pc(args.memory * MIB, transmit=console.transmit)
        if args.block_threshold is not None:
            pc.cpu.block_threshold = max(0, args.block_threshold)
        if args.cache_lookups is not None:
            pc.cpu.cached_threshold = args.cache_lookups
        if pc.cpu.block_threshold and not args.no_block_cache:
            from reference.blocks.cache import BlockCache
            pc.cpu.block_cache = BlockCache()
            if not args.no_block_maker:  # forked before any thread starts
                from reference.blocks.background import Maker
                record = (open(args.record_blocks, "wb")  # noqa: SIM115 - open for the run
                          if args.record_blocks is not None else None)
                maker = pc.cpu.block_maker = Maker(pc.cpu.block_cache, record)
                if args.block_threshold is None:
                    pc.cpu.block_threshold = MAKER_BLOCK_THRESHOLD
                pc.collect = lambda: maker.collect(pc.cpu.block_threshold)
        placement = load(pc.cpu, pc.memory, image, initrd, args.append)
    except (OSError, BootError, ValueError) as error:  # ValueError: RAM over the PCI hole
        sys.stderr.write(f"reference PC: cannot boot {args.kernel}: {error}\n")
        return 2
    # The handlers go in before "started" is reported: a harness that signals as soon as
    # it reads that line must not meet SIGUSR1's default action (termination).
    requests: Deque[str] = deque()
    signal.signal(signal.SIGUSR1, lambda *_: requests.append("counter"))
    signal.signal(signal.SIGUSR2, lambda *_: requests.append("where"))
    signal.signal(signal.SIGTERM, lambda *_: pc.stop("SIGTERM"))
    about = interpreter()
    emit("started", interpreter=about, placement=placement._asdict(),
         memory_mib=args.memory, virtual_clock=True, blocks=block_settings(pc.cpu))
    advice = warning(about.get("nursery_bytes"), os.environ)
    if advice is not None:
        sys.stderr.write(f"reference PC: {advice}\n")
    threading.Thread(target=console.read_stdin, daemon=True).start()

    next_progress = [args.progress or 0]

    maker = pc.cpu.block_maker

    def between() -> None:
        console.flush()
        if args.progress and pc.cpu.tsc - pc.clock.skipped >= next_progress[0]:
            emit("counter")
            next_progress[0] = pc.cpu.tsc - pc.clock.skipped + args.progress
        if args.exit_at_stage in console.reached:
            pc.stop(f"stage {args.exit_at_stage} reached (--exit-at-stage)")
        while console.incoming:
            pc.uart.receive(console.incoming.popleft())
        while requests:
            request = requests.popleft()
            if request == "counter":
                emit("counter")
            else:
                emit("where", trace=where(pc), cpu=pc.describe_cpu())

    pc.idle = console.wait_idle
    stop = pc.run(args.budget, between)
    console.flush()
    if maker is not None:
        maker.close()
        if maker.record is not None:
            maker.record.close()
    if pc.cpu.block_cache is not None:
        pc.cpu.block_cache.close()
    made_elsewhere = {} if maker is None else {"block_maker": maker.figures()}
    emit("stop", reason=stop.reason, detail=stop.detail, peak_rss_kib=own_peak_rss_kib(),
         in_blocks=pc.cpu.in_blocks,
         unclaimed_ports=sorted(pc.bus.unclaimed),
         unclaimed_memory_pages=sorted(pc.ram.unclaimed), console_bytes=console.total,
         **made_elsewhere)
    if stop.reason in ("reset", "stopped", "budget"):
        return 0
    sys.stderr.write(f"reference PC: {stop.reason}: {stop.detail}\n")
    return 1


def own_peak_rss_kib() -> Optional[int]:
    """This process's peak resident set in KiB (Linux's VmHWM of its own address space),
    or None where /proc does not say. ``ru_maxrss`` would also count the parent's pages
    the process held between fork and exec."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def where(pc: Pc) -> List[str]:
    """Step the next instructions one by one and say what they were: a hung guest is in
    a loop, so these show the loop."""
    trace = []
    cpu = pc.cpu
    for _ in range(WHERE_STEPS):
        eip = cpu.eip
        result = cpu.step()
        insn = result.insn
        name = f"{insn.form.name} {insn.raw.hex(' ')}" if insn is not None else "(interrupt)"
        trace.append(f"{cpu.sregs[1]:04x}:{eip:08x} {name}")
        if result.exception is not None and result.exception.kind == "shutdown":
            break
    return trace


def exit_main() -> None:
    sys.exit(main())
