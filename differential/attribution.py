"""Name the FORMS row a string of bytes encodes (for random-bytes cases and reports).

Matching reads only the table's own opcode column (opcode bytes, ``+r``, ``/digit``): the
reference's decoder is the code under test and is not asked. Capstone's mnemonic is kept
beside it in the case name, as a second opinion.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from differential.encoding import split_prefixes

_INDEX: Dict[int, List[object]] = {}  # by first opcode byte; 0x0F rows by 0x100 + second


def _index() -> Dict[int, List[object]]:
    """Candidate rows by opcode byte: the two-byte map (119 rows behind 0F) is split by its
    second byte, so a random 0F xx is matched against its few rows, not all of them."""
    if not _INDEX:
        from reference import FORMS

        for form in FORMS:
            opcode = form.enc.opcode
            at = 1 if opcode[0] == 0x0F and len(opcode) > 1 else 0
            key = opcode[at] + (0x100 if at else 0)
            plus_r = form.enc.plus_r and len(opcode) == at + 1
            for byte in range(key, key + 8) if plus_r else (key,):
                _INDEX.setdefault(byte, []).append(form)
    return _INDEX


def _match(form, body: bytes) -> Optional[Tuple[int, int]]:
    """(opcode length, exactness) if ``body`` starts with ``form``'s opcode, else None."""
    enc = form.enc
    length = len(enc.opcode)
    if len(body) < length:
        return None
    for i, byte in enumerate(enc.opcode):
        last = i == length - 1
        got = body[i] & 0xF8 if (last and enc.plus_r) else body[i]
        if got != byte:
            return None
    if enc.digit is not None:
        if len(body) <= length or (body[length] >> 3) & 7 != enc.digit:
            return None
    return length, 0 if enc.plus_r else 1


def attribute(mode: str, code: bytes):
    """The ``Form`` whose encoding ``code`` uses (longest, most exact opcode wins), or None.
    ``mode`` is accepted for symmetry with the decoders; no form differs by mode."""
    _prefixes, body = split_prefixes(code)
    if not body:
        return None
    best = None
    best_rank: Tuple[int, int] = (0, 0)
    key = 0x100 + body[1] if body[0] == 0x0F and len(body) > 1 else body[0]
    for form in _index().get(key, ()):
        rank = _match(form, body)
        if rank is not None and rank > best_rank:
            best, best_rank = form, rank
    return best
