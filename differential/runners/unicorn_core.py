"""Build and load ``unicorn_core.c``: a differential case on Unicorn in one native call.

The C file says why it exists. It is compiled on first use with the machine's C compiler
(``cc``; ``scripts/apt-packages.txt`` installs gcc) against the very ``libunicorn.so.2``
the Python binding loaded, and kept in the cache (``ground.cache``, part ``native``)
under the hash of the source and that library (path, size, time), so a checkout or a
new virtualenv builds its own and a warm cache compiles nothing (a build takes ~0.3 s).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
from pathlib import Path

from unicorn.unicorn_py3.unicorn import uclib

SOURCE = Path(__file__).with_name("unicorn_core.c")
COMPILER = os.environ.get("CC", "cc")

BACK_AT_START = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_uint64, ctypes.c_uint64)
"""The code hook's question to Python when an instruction comes back to its own address:
the answer is STOP, GO_ON or RESTARTED."""
STOP, GO_ON, RESTARTED = 0, 1, 2  # the same numbers as the enum in unicorn_core.c
REPORT_FIELDS = ("status", "steps", "interrupt", "refused", "refused_page", "changed")
"""What ``x86lab_core_run`` reports in its int64 array, in order (-1: no interrupt, no
refused access)."""


class CoreBuildError(RuntimeError):
    """The C core could not be compiled here (no compiler, or it failed): the message
    carries the command and the compiler's output."""


def library_path() -> Path:
    """The ``libunicorn.so.2`` the binding loaded (the core must link to the same one)."""
    return Path(uclib._name).resolve()


def built() -> Path:
    """The compiled core for this source and this Unicorn, built now if the cache has
    none (``ground.cache.compile_into``: builds racing each other each finish whole)."""
    from ground.cache import BuildFailed, cache_file, compile_into

    unicorn = library_path()
    found = unicorn.stat()  # a library replaced at the same path gets a build of its own
    named = f"{unicorn}\0{found.st_size}\0{found.st_mtime_ns}".encode()
    key = hashlib.sha256(SOURCE.read_bytes() + b"\0" + named).hexdigest()[:16]
    target = cache_file("native", f"unicorn_core-{key}.so")
    try:
        return compile_into(target, lambda out: [COMPILER, "-O2", "-shared", "-fPIC", "-Wall",
                                                 "-o", out, SOURCE, unicorn,
                                                 f"-Wl,-rpath,{unicorn.parent}"], timeout=120)
    except BuildFailed as failed:
        raise CoreBuildError(f"building the Unicorn core failed: {failed}") from failed


_LIBRARY = None


def core_library() -> ctypes.CDLL:
    """The loaded core with its functions' signatures declared (loaded once a process)."""
    global _LIBRARY
    if _LIBRARY is None:
        lib = ctypes.CDLL(str(built()))
        pointer, u64 = ctypes.c_void_p, ctypes.c_uint64
        lib.x86lab_core_new.restype = pointer
        lib.x86lab_core_new.argtypes = [pointer, pointer, ctypes.c_int, ctypes.c_int,
                                        ctypes.c_int, ctypes.c_int, pointer, pointer,
                                        pointer, BACK_AT_START]
        lib.x86lab_core_free.restype = None
        lib.x86lab_core_free.argtypes = [pointer]
        lib.x86lab_core_hook.restype = ctypes.c_int
        lib.x86lab_core_hook.argtypes = [pointer] + [ctypes.c_int] * 4
        lib.x86lab_core_rounds.restype = ctypes.c_int
        lib.x86lab_core_rounds.argtypes = [pointer, u64, ctypes.c_char_p, ctypes.c_uint32, u64]
        lib.x86lab_core_run.restype = ctypes.c_int
        lib.x86lab_core_run.argtypes = [pointer, ctypes.c_char_p, ctypes.c_uint32,
                                        ctypes.c_char_p, u64, u64, u64, pointer, pointer]
        _LIBRARY = lib
    return _LIBRARY
