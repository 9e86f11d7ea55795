"""Compiled blocks kept on disk between runs (issue 14): a block's generated code is a
pure function of its instruction bytes, the modes it was made for and the reference's
own source, so a second boot of the same image need not generate or compile it again.

Measured on the tiny image's boot (CPython, threshold 300): generating and compiling
about 4,400 blocks is a fifth of the run, almost all of it the AST passes per distinct
instruction and ``compile()``; a boot meets the same blocks every time.

An entry is keyed by a hash of (the source fingerprint, CS.D, SS.B, how memory is
lowered, every instruction's bytes) and holds the code object
(``marshal``: so the interpreter's cache tag is part of the fingerprint) and where each
module-level name of the code comes from (``optimize.ORIGINS``); the instruction's own
objects (``i3``, ``op3_0``) are bound afresh from the block being made. The source
fingerprint is a hash of every module of the ``reference`` package but the PC's
(``reference.pc``: devices and the boot loader make no code), so any change to the
semantics, the decoder or the compiler makes a new cache rather than a stale hit.

Beside the blocks the file keeps a hint for each place a block was made or found: the
modes and the first ``HINT_BYTES`` bytes of memory there (``hint``). ``run()`` asks the
cache for a block when an instruction has run 40 times; in a warm tiny boot ~17,000 of
those ~20,000 questions find nothing, and each cost a gather (decoding ahead) and a key
hash, ~50 us: where no hint matches, ``compile_block`` now answers at once. The hint is a
filter only, never a key: a block is taken only by its full key, so a hint that matches
where no block does costs the old lookup, and one that misses where a block would have
matched (the same code with other bytes after it) costs a block made at the threshold
instead of taken at 40, never a wrong result.

Storage is one SQLite file per fingerprint under ``$X86LAB_CACHE/reference-blocks``
(default ``~/.cache/x86lab``), written in batches; it is only a cache: a file that
cannot be opened or read turns it off for the process with one line on stderr, and
nothing is lost. ``python -m reference.pc`` uses it (``--no-block-cache`` turns it off);
a plain ``Cpu`` does not.
"""

from __future__ import annotations

import hashlib
import importlib
import marshal
import os
import sqlite3
import sys
from pathlib import Path
from types import CodeType
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

HINT_BYTES = 16
"""Bytes of memory at a block's first instruction that its hint holds (fewer where the
page ends): more than most blocks' first two instructions."""
BATCH = 64
"""New entries written in one transaction (a boot makes a few thousand)."""
KEEP = 3
"""Fingerprints kept (the newest by use): each change to the reference starts a new file
of some tens of MB, so older ones are removed when a new one is made."""

_fingerprint: Optional[str] = None


def fingerprint() -> str:
    """A hash of the reference package's modules and this interpreter's bytecode tag."""
    global _fingerprint
    if _fingerprint is None:
        root = Path(__file__).resolve().parent.parent
        digest = hashlib.sha256(sys.implementation.cache_tag.encode())
        for path in sorted(root.rglob("*.py")):
            parts = path.relative_to(root).parts
            if "tests" not in parts and parts[0] != "pc":  # the PC's devices make no code
                digest.update(str(path.relative_to(root)).encode() + b"\0")
                digest.update(path.read_bytes())
        _fingerprint = digest.hexdigest()[:16]
    return _fingerprint


def default_directory() -> Path:
    base = os.environ.get("X86LAB_CACHE") or os.path.join(Path.home(), ".cache", "x86lab")
    return Path(base) / "reference-blocks"


OFF_NOTICE = "reference: block cache"
"""How stderr's line begins when a cache stops working (``BlockCache._off``): the run
goes on making its own blocks (``harness.cost_bench`` refuses to count such a run)."""


class BlockCache:
    """The blocks one fingerprint's runs compiled: ``get`` and ``put`` by key."""

    def __init__(self, directory: Optional[Path] = None) -> None:
        self.path = (directory or default_directory()) / f"{fingerprint()}.sqlite"
        self.pending: Dict[str, bytes] = {}  # put and not yet written: key -> entry
        self.pending_hints: List[bytes] = []
        self.hints: Set[bytes] = set()  # where blocks start: see the module docstring
        self.windows: Set[bytes] = set()  # the hints' memory bytes alone (``window``)
        self.hits = self.misses = 0
        self.db: Optional[sqlite3.Connection] = None
        self.keys: Set[str] = set()  # what the file held when opened, and what we put
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.exists():
                os.utime(self.path)  # used now: what _prune keeps is the newest by use
            else:
                _prune(self.path.parent, KEEP - 1)
            self.db = sqlite3.connect(str(self.path), timeout=10)
            for statement in ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=OFF",
                              "CREATE TABLE IF NOT EXISTS blocks (key TEXT PRIMARY KEY, "
                              "entry BLOB NOT NULL)",
                              "CREATE TABLE IF NOT EXISTS hints (hint BLOB PRIMARY KEY)"):
                self.db.execute(statement).fetchall()  # every cursor done: PyPy keeps
                # an unfinished one open, and a commit then fails
            self.db.commit()
            self.keys = {key for (key,) in self.db.execute("SELECT key FROM blocks")}
            self.hints = {bytes(hint) for (hint,) in self.db.execute("SELECT hint FROM hints")}
            self.windows = {_window_of(hint) for hint in self.hints}
        except (OSError, sqlite3.Error) as error:
            self._off(error)

    def _off(self, error: BaseException) -> None:
        print(f"{OFF_NOTICE} {self.path} off: {error}", file=sys.stderr)
        self.db = None

    @staticmethod
    def key(raws: Sequence[bytes], default_size: int, stack_size: int,
            memory: Optional[str]) -> str:
        digest = hashlib.sha256(f"{default_size} {stack_size} {memory}".encode())
        for raw in raws:
            digest.update(bytes((len(raw),)) + raw)
        return digest.hexdigest()

    @staticmethod
    def window(mem: Any, physical: int) -> Optional[bytes]:
        """The memory bytes a hint at ``physical`` holds (None where the memory there
        cannot be read)."""
        try:
            return mem.read_bytes(physical, min(HINT_BYTES, 0x1000 - (physical & 0xFFF)),
                                  "fetch")
        except Exception:  # noqa: BLE001 - outside RAM, a device: no hint, no lookup
            return None

    @staticmethod
    def hint_of(window: Optional[bytes], default_size: int, stack_size: int,
                memory: Optional[str]) -> Optional[bytes]:
        """The hint of a block whose first bytes are ``window`` (None: memory that could
        not be read, no hint), in these modes: see the module docstring."""
        if window is None:
            return None
        return f"{default_size} {stack_size} {memory} ".encode() + window

    def may_start(self, window: Optional[bytes]) -> bool:
        """Whether a block may start where memory reads ``window``, in any modes: what
        ``run()``'s early lookups ask first, as it needs no modes (``access.mode_of``
        and the hint's text cost more than the test, and most answers are no)."""
        return window is not None and window in self.windows

    def may_have(self, hint: Optional[bytes]) -> bool:
        """Whether a block may start where memory and modes give ``hint``."""
        return hint is not None and hint in self.hints

    def note(self, hint: Optional[bytes]) -> None:
        """Remember that a block starts where memory and modes give ``hint``."""
        if hint is not None and hint not in self.hints and self.db is not None:
            self.hints.add(hint)
            self.windows.add(_window_of(hint))
            self.pending_hints.append(hint)

    def get(self, key: str) -> Optional[Tuple[List[Tuple[str, str, str]], CodeType]]:
        """([(alias, module, name)], code) of a block, or None. A key the file did not
        hold when it was opened is a miss without a query: a warm boot looks up ~17,000
        blocks that no run made (code run 40 times but never 300), 0.08 ms each as
        queries. (Blocks another process writes meanwhile are missed: this run compiles
        its own.)"""
        if self.db is None:
            return None
        if key not in self.keys:
            self.misses += 1
            return None
        try:
            if key in self.pending:
                rows = [(self.pending[key],)]
            else:
                rows = self.db.execute("SELECT entry FROM blocks WHERE key = ?",
                                       (key,)).fetchall()
            entry = unpacked(rows[0][0]) if rows else None
        except (sqlite3.Error, ValueError, EOFError, TypeError) as error:
            self._off(error)
            return None
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        return entry

    def put(self, key: str, origins: List[Tuple[str, str, str]],
            code: CodeType) -> None:
        self.put_entry(key, marshal.dumps((origins, code)))

    def put_entry(self, key: str, entry: bytes) -> None:
        """``put`` an entry already marshalled (what the block maker's child answers)."""
        if self.db is None:
            return
        self.pending[key] = entry
        self.keys.add(key)
        if len(self.pending) >= BATCH:
            self.flush()

    def flush(self) -> None:
        """Write the pending entries (also when the machine stops)."""
        if self.db is None or not (self.pending or self.pending_hints):
            return
        try:
            self.db.executemany("INSERT OR IGNORE INTO blocks VALUES (?, ?)",
                                list(self.pending.items()))
            self.db.executemany("INSERT OR IGNORE INTO hints VALUES (?)",
                                [(hint,) for hint in self.pending_hints])
            self.db.commit()
        except sqlite3.Error as error:
            self._off(error)
        self.pending = {}
        self.pending_hints = []

    def close(self) -> None:
        """Write what is pending and let go of the file."""
        self.flush()
        if self.db is not None:
            self.db.close()
            self.db = None


def unpacked(entry: bytes) -> Tuple[List[Tuple[str, str, str]], CodeType]:
    """An entry as ``put_entry`` stores it: ([(alias, module, name)], code)."""
    origins, code = marshal.loads(entry)
    return [tuple(origin) for origin in origins], code  # type: ignore[misc]


def _prune(directory: Path, keep: int) -> None:
    """Remove all but the ``keep`` most recently used caches in ``directory`` (a file's
    modification time: opening one sets it, since a run that finds every block it needs
    writes nothing; the warm cache of the tree in use was once removed for three newer
    ones that runs of other trees had made)."""
    caches = sorted(directory.glob("*.sqlite"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in caches[keep:]:
        for path in (old, old.with_name(old.name + "-wal"), old.with_name(old.name + "-shm")):
            try:
                path.unlink()
            except FileNotFoundError:
                pass


def resolve(origins: List[Tuple[str, str, str]], namespace: Dict[str, Any]) -> None:
    """Bind each module-level name of a cached block to its object."""
    for alias, module, name in origins:
        namespace[alias] = getattr(importlib.import_module(module), name)


def renamed(code: CodeType, filename: str) -> CodeType:
    """``code`` (and the code objects inside it) as compiled under ``filename``: as it
    is when it already was (a block made for the same address, by the maker or an
    earlier run), which saves walking its constants (~1 % of a cold boot's samples)."""
    if code.co_filename == filename:
        return code
    consts = tuple(renamed(c, filename) if isinstance(c, CodeType) else c
                   for c in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


def _window_of(hint: bytes) -> bytes:
    """A hint's memory bytes: what follows its three modes (``hint_of``; the memory
    mode, ``access.mode_of``, holds no space)."""
    return hint.split(b" ", 3)[3]
