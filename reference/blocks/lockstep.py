"""Run a Linux boot on two reference PCs in lockstep, one interpreting and one with
compiled blocks, and compare their whole state at checkpoints (issue 14: "a test
compares whole-run traces (final state every N instructions) of the two paths").

``python -m reference.blocks.lockstep --kernel K [--initrd I] [--append L]
--instructions N --every M`` prints one JSON line per checkpoint and exits 1 at the
first difference, naming it. Standard library only (runs under PyPy and CPython).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from typing import List, Optional

from reference.pc.boot_protocol import load, read_files
from reference.pc.machine import Pc

CHECK_THRESHOLD = 40
"""Lower than CPython's default (300), so more of the boot runs in blocks and more
blocks are made: the check is of the blocks, not of the speed."""


def snapshot(pc: Pc, memory: bool) -> dict:
    cpu = pc.cpu
    state = {"regs": list(cpu.regs), "eip": cpu.eip, "eflags": cpu.flags.value,
             "sregs": list(cpu.sregs), "cycles": cpu.tsc, "cr": [cpu.cr0, cpu.cr2, cpu.cr3,
                                                                 cpu.cr4]}
    if memory:
        state["ram_sha256"] = hashlib.sha256(pc.ram.ram).hexdigest()
    return state


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reference.blocks.lockstep",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kernel", required=True)
    parser.add_argument("--initrd")
    parser.add_argument("--append", default="console=ttyS0")
    parser.add_argument("--instructions", type=int, default=20_000_000)
    parser.add_argument("--every", type=int, default=1_000_000)
    parser.add_argument("--memory-every", type=int, default=5,
                        help="compare a digest of RAM every this many checkpoints")
    args = parser.parse_args(argv)
    image, initrd = read_files(args.kernel, args.initrd)
    consoles = (bytearray(), bytearray())
    machines = []
    for threshold, console in zip((0, CHECK_THRESHOLD), consoles):
        pc = Pc(transmit=console.extend)
        pc.cpu.block_threshold = threshold
        load(pc.cpu, pc.memory, image, initrd, args.append)
        machines.append(pc)
    interpreted, compiled = machines
    checkpoints = args.instructions // args.every
    for number in range(1, checkpoints + 1):
        stops = [pc.run(args.every).reason for pc in machines]
        memory = number % args.memory_every == 0 or number == checkpoints
        states = [snapshot(pc, memory) for pc in machines]
        same = states[0] == states[1] and consoles[0] == consoles[1] and stops[0] == stops[1]
        print(json.dumps({"checkpoint": number, "cycles": states[0]["cycles"],
                          "same": same, "stop": stops[0]}), flush=True)
        if not same:
            for key in states[0]:
                if states[0][key] != states[1][key]:
                    print(f"differs in {key}: interpreter {states[0][key]} blocks "
                          f"{states[1][key]}", file=sys.stderr)
            if consoles[0] != consoles[1]:
                print("the consoles differ", file=sys.stderr)
            return 1
        if stops[0] != "budget":
            break
    return 0


if __name__ == "__main__":
    sys.exit(main())
