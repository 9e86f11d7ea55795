"""``python -m differential.draw_digest``: one hash of every field of the cases some seeds
draw (through ``StreamDraw``, as campaigns do), for checking that a change made for speed
(issue 18) draws the same cases: run it before and after the change and compare the two
lines. The rows cover the generator's shapes (ModRM and SIB, immediates, moffs, far
pointers, strings, shifts and BSF with their undefined flags and destinations, the
stack), and random prefixed bytes are drawn too.

Not pinned in a test: what a seed draws may change on purpose, and the tests check what
matters at any version (``tests/test_draw_digest.py``: a seed draws the same cases in any
process, whatever its hash seed, which campaigns that span machines rely on).
"""

from __future__ import annotations

import argparse
import hashlib
from typing import Optional, Sequence

ROWS = ("ADD_Ev_Gv", "ADD_Ev_Iz", "SHLD_Ev_Gv_CL", "BSF_Gv_Ev", "MOVS_Yv_Xv", "LEA_Gv_M",
        "JMPF_Ap", "XLAT", "ENTER_Iw_Ib", "CMPXCHG8B_Mq", "SHL_Ev_1", "RCR_Ev_Ib", "POPA",
        "MOV_Sw_Ew", "LES_Gv_Mp", "MOV_eAX_Ov", "DIV_Ev", "IMUL_Gv_Ev_Ibs")


def draw_digest(seeds: int = 40) -> str:
    """sha256 of the cases ``seeds`` seeds draw for each of ROWS in each of its modes,
    and of the random-bytes cases five times as many seeds draw."""
    from differential.draw import StreamDraw
    from differential.generator import bytes_case, form_case
    from reference import BY_NAME

    out = hashlib.sha256()

    def add(case: object) -> None:
        out.update(repr((case.name, case.mode, case.code,  # type: ignore[attr-defined]
                         sorted(case.regs.items()),  # type: ignore[attr-defined]
                         case.form, case.undefined_flags,  # type: ignore[attr-defined]
                         case.undefined_dest)).encode())  # type: ignore[attr-defined]
        for base, data in case.memory.items():  # type: ignore[attr-defined]
            out.update(base.to_bytes(4, "little") + data)

    for name in ROWS:
        form = BY_NAME[name]
        for mode in form.modes:
            for seed in range(seeds):
                add(form_case(form, mode, StreamDraw(b"%d" % seed)))
    for seed in range(seeds * 5):
        add(bytes_case(("real16", "prot32")[seed % 2], StreamDraw(b"%d" % seed),
                       lambda _m, _c: None))
    return out.hexdigest()


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m differential.draw_digest",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=40, help="seeds per row and mode")
    print(draw_digest(parser.parse_args(argv).seeds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
