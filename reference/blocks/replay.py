"""How fast the block maker makes blocks, alone: ``python -m reference.blocks.replay FILE``.

FILE holds the requests one boot sent its block maker (``python -m reference.pc ...
--record-blocks FILE``): for each block, its 4 KiB page, where it starts and the
modes, as ``reference.blocks.background`` sends them. This replays them in this
process through the child's own ``background.make``, in the order they were asked
for, and prints the CPU seconds they took; then replays them again, everything made
once per instruction or shape now kept (``reference.blocks.snippets``), which is what
each block costs of its own (``gather``, assembling, ``compile()``).

Why: the maker's speed decides how soon a cold boot's blocks arrive, and so how low
its threshold may go (``reference.cpu.MAKER_BLOCK_THRESHOLD``); a boot's wall time
swings by a fifth from one run to the next on the machines here, while the same
requests replayed give CPU seconds to compare two versions of the code by (run each
with ``PYTHONPATH`` at its tree).
"""

from __future__ import annotations

import argparse
import json
import marshal
import struct
import sys
import time
from typing import Any, BinaryIO, Dict, List, Optional, Sequence, Tuple

_LENGTH = struct.Struct("<I")


def write_request(out: BinaryIO, payload: bytes) -> None:
    """Append one request (the bytes the maker sends its child) to a record."""
    out.write(_LENGTH.pack(len(payload)))
    out.write(payload)


def read_requests(source: BinaryIO) -> List[Tuple[Any, ...]]:
    """The requests of a record, in order. A record cut short (the PC killed while it
    wrote) ends at its last whole request; bytes that are no request are an error."""
    requests = []
    while True:
        head = source.read(_LENGTH.size)
        if len(head) < _LENGTH.size:
            return requests
        (length,) = _LENGTH.unpack(head)
        payload = source.read(length)
        if len(payload) < length:
            return requests
        request = marshal.loads(payload)
        if not (isinstance(request, tuple) and len(request) == 7):
            raise ValueError(f"request {len(requests) + 1}: not a block request")
        requests.append(request)


def replay(requests: Sequence[Tuple[Any, ...]]) -> Dict[str, Any]:
    """Make each request's block twice (see the module docstring): the figures."""
    from reference.blocks import background, snippets

    def timed() -> Tuple[float, int]:
        failed = 0
        start = time.process_time()
        for request in requests:
            if background.make(*request)[2] is None:
                failed += 1
        return time.process_time() - start, failed

    first, failed = timed()
    again, _ = timed()
    count = max(len(requests), 1)
    return {"requests": len(requests), "failed": failed,
            "cpu_seconds": round(first, 3), "ms_per_block": round(1000 * first / count, 3),
            "again_cpu_seconds": round(again, 3),
            "again_ms_per_block": round(1000 * again / count, 3),
            "byte_strings": len(snippets._snippets),
            "snippets": len({id(piece) for piece in snippets._snippets.values()})}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reference.blocks.replay", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("record", help="a file written by python -m reference.pc "
                        "--record-blocks FILE")
    parser.add_argument("--limit", type=int, metavar="N", help="only the first N requests")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    try:
        with open(args.record, "rb") as source:
            requests = read_requests(source)
    except (OSError, ValueError, EOFError, TypeError) as error:
        print(f"reference.blocks.replay: {args.record}: {error}", file=sys.stderr)
        return 2
    if args.limit is not None:
        requests = requests[:max(args.limit, 0)]
    figures = replay(requests)
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"{figures['requests']} blocks ({figures['failed']} answered with no code): "
              f"{figures['cpu_seconds']:.2f} s CPU, {figures['ms_per_block']:.2f} ms a block; "
              f"again, with every snippet made: {figures['again_cpu_seconds']:.2f} s, "
              f"{figures['again_ms_per_block']:.2f} ms a block. {figures['snippets']} "
              f"snippets for {figures['byte_strings']} instruction byte strings")
    return 0


if __name__ == "__main__":
    sys.exit(main())
