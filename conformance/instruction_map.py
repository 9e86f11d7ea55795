"""Where each instruction of a static binary starts and how long it is, from objdump.

``guest/skipill.c`` (linked into test-i386) steps over an instruction that raises SIGILL on
an engine, so one missing instruction does not hide the rest of the program's results. It
needs the instruction's length; the host's objdump decodes the binary once, and the map
travels into the guest beside the program. The format is the one skipill.c reads:
``u32 count``, ``u32 address[count]`` ascending, ``u8 length[count]``, little-endian.
"""

from __future__ import annotations

import re
import struct
import subprocess
from pathlib import Path
from typing import Dict, List, Tuple

# "  8049a2c:\tdf 2c 24             \tfild ..." (one line per instruction with a wide
# --insn-width, so no instruction's bytes wrap onto a second line)
LINE = re.compile(r"^\s*([0-9a-f]+):\t((?:[0-9a-f]{2} )+)\s*\t")


class MapError(RuntimeError):
    """objdump could not decode the binary."""


def instructions(binary: Path) -> List[Tuple[int, int]]:
    """(address, length) of every instruction in the binary's executable sections."""
    try:
        done = subprocess.run(["objdump", "-d", "--insn-width=16", "-M", "i386",
                               str(binary)], capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MapError(f"objdump on {binary}: {exc}") from None
    if done.returncode != 0:
        raise MapError(f"objdump on {binary} failed: {done.stderr.strip()[-300:]}")
    found: Dict[int, int] = {}
    for line in done.stdout.splitlines():
        match = LINE.match(line)
        if match:
            found[int(match.group(1), 16)] = len(match.group(2).split())
    return sorted(found.items())


def encode(entries: List[Tuple[int, int]]) -> bytes:
    addresses = [address for address, _ in entries]
    return struct.pack(f"<I{len(entries)}I", len(entries), *addresses) + \
        bytes(length for _, length in entries)


def decode(data: bytes) -> List[Tuple[int, int]]:
    (count,) = struct.unpack_from("<I", data)
    addresses = struct.unpack_from(f"<{count}I", data, 4)
    return list(zip(addresses, data[4 + 4 * count:]))


def write_map(binary: Path) -> Path:
    """``BINARY.insnmap`` beside the binary, made once."""
    target = binary.with_name(binary.name + ".insnmap")
    if not target.exists():
        partial = target.with_name(target.name + ".tmp")
        partial.write_bytes(encode(instructions(binary)))
        partial.replace(target)
    return target
