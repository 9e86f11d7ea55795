"""``python -m reference.blocks.show``: the Python source the block compiler makes for
the block at an address, so what is generated can be read (issue 14).

Either from a Linux boot on the reference PC (``--kernel K [--initrd I] [--append L]
--after N``: run N instructions, then translate at ``--at ADDRESS``, a linear address in
the guest's current mapping; default: where the guest is), or from raw 32-bit code
(``--code HEX``, placed at 0x1000 with a HLT after it, so a block goes no further than
the code, translated at its start). ``--plain`` shows the
semantics inlined as they are, before the optimising passes (helpers inlined, constants
folded, dead flag updates dropped), which read closest to the SDM.
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from reference.blocks.compiler import block_source


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reference.blocks.show",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--kernel", help="a bzImage to boot on the reference PC")
    source.add_argument("--code", help="32-bit machine code in hex")
    parser.add_argument("--initrd")
    parser.add_argument("--append", default="console=ttyS0")
    parser.add_argument("--after", type=int, default=0,
                        help="instructions to run before translating (with --kernel)")
    parser.add_argument("--at", type=lambda text: int(text, 0),
                        help="linear address of the block (default: the current EIP)")
    parser.add_argument("--plain", action="store_true",
                        help="before the optimising passes (what the semantics say, inlined)")
    args = parser.parse_args(argv)
    if args.code:
        from reference import Cpu
        from reference.memory import FlatMemory

        try:
            code = bytes.fromhex(args.code)
        except ValueError as error:
            parser.error(f"--code: {error}")
        memory = FlatMemory(0x100000)  # RAM, as the PC has: its accesses are lowered
        memory.write_bytes(0x1000, code + b"\xf4")  # HLT: no block goes past the code
        cpu = Cpu(memory, mode="prot32")
        linear = 0x1000 if args.at is None else args.at
    else:
        from reference.pc.boot_protocol import BootError, load, read_files
        from reference.pc.machine import Pc

        pc = Pc()
        try:
            image, initrd = read_files(args.kernel, args.initrd)
            load(pc.cpu, pc.memory, image, initrd, args.append)
        except (OSError, BootError) as error:
            print(f"cannot boot {args.kernel}: {error}", file=sys.stderr)
            return 2
        if args.after:
            pc.run(args.after)
        cpu = pc.cpu
        linear = args.at if args.at is not None else (cpu.seg_base[1] + cpu.eip) & 0xFFFFFFFF
    text = block_source(cpu, linear, optimize=not args.plain)
    if text is None:
        print(f"no block starts at {linear:#x}: its first instruction is one the step "
              "loop runs alone (I/O, system, x87, string, a far transfer...)", file=sys.stderr)
        return 1
    print(f"# block at linear {linear:#010x}")
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
