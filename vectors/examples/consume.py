#!/usr/bin/env python3
"""Replay x86lab vectors through your emulator: a stand-alone example (stdlib only).

    python3 consume.py vectors/corpus/prot32        # files or folders

Replace ``ToyCpu`` with an adapter around your own CPU: load the initial state, run
one instruction, return registers and memory. This toy knows only a few flag-only
instructions (NOP, CLC, STC, CMC, CLD, STD) and skips every other vector.
"""
import gzip
import json
import pathlib
import sys

CF, DF = 1 << 0, 1 << 10
TOY = {0x90: lambda f: f, 0xF8: lambda f: f & ~CF, 0xF9: lambda f: f | CF,
       0xF5: lambda f: f ^ CF, 0xFC: lambda f: f & ~DF, 0xFD: lambda f: f | DF}


class ToyCpu:
    """A stand-in for your emulator: one-byte instructions, no memory writes."""

    def __init__(self, regs, memory):
        self.regs, self.memory = dict(regs), memory   # memory: {address: byte}

    def step(self):
        cs_base = self.regs.get("cs", 0) * 16          # 0 in prot32: flat segments
        opcode = self.memory[cs_base + self.regs["eip"]]
        self.regs["eflags"] = TOY[opcode](self.regs["eflags"])
        wrap = 0xFFFF if "cs" in self.regs else 0xFFFFFFFF   # IP wraps at 64 KiB in real16
        self.regs["eip"] = (self.regs["eip"] + 1) & wrap


def replay(vector):
    """True/False for a vector the toy can run, None for one it cannot."""
    if len(vector["bytes"]) != 1 or vector["bytes"][0] not in TOY:
        return None
    if "system" in vector["initial"] or "delivery" in vector:
        return None  # version 2: system state (FORMAT.md); the toy has only version 1's machine
    start = vector["initial"]
    memory = {page + i: start.get("fill", 0) for page in start["pages"] for i in range(4096)}
    memory.update(dict(start.get("ram", [])))           # bytes that differ from the fill
    cpu = ToyCpu(start["regs"], memory)
    cpu.step()
    want = vector["final"]
    mask = ~vector.get("undefined_flags", 0)           # undefined flags may differ
    regs_ok = all((cpu.regs[name] ^ value) & (mask if name == "eflags" else -1) == 0
                  for name, value in want["regs"].items())
    ram_ok = all(cpu.memory[addr] == byte for addr, byte in want.get("ram", []))
    return regs_ok and ram_ok and want.get("exception") is None


def main(paths):
    counts = {True: 0, False: 0, None: 0}
    files = [f for p in map(pathlib.Path, paths)
             for f in (sorted(p.rglob("*.jsonl.gz")) if p.is_dir() else [p])]
    for path in files:
        with gzip.open(path, "rt") as lines:
            for number, line in enumerate(lines, 1):
                vector = json.loads(line)
                if "format" in vector:                     # the header line
                    continue
                result = replay(vector)
                counts[result] += 1
                if result is False:
                    print(f"FAIL {path}:{number} {vector['name']}")
    print(f"passed {counts[True]}, failed {counts[False]}, skipped {counts[None]}")
    return 1 if counts[False] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
