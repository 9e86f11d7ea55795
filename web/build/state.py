"""The saved state: v86 boots the image once in Node (``save_state.mjs``) up to the shell
prompt and snapshots the machine; zstd shrinks the snapshot (v86 recognises zstd frames and
decompresses them itself). The page restores it and is at the prompt in about a second
instead of a full boot.

A snapshot is only valid for the v86 build that wrote it and the same memory sizes and
devices, so it is cached under the gate key (image hashes, v86 version, memory) and the
manifest records what it was made with; the page cold-boots when anything differs.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Dict, Optional

from ground.cache import cache_dir
from harness.engines.v86 import BIOS, NET_DEVICE, VGA_BIOS
from images.contract import DISK_MOUNT, PROMPT
from web.build.assets import V86_PACKAGE
from web.build.errors import BuildError

SAVER = Path(__file__).resolve().parent / "save_state.mjs"
ZSTD_ARGS = ("-19", "-T2", "-q", "-f")
"""Level 19 costs ~1 min once per image (cached); the page downloads the result often."""
QUIET_MS = 500
PREPARE = "busybox --install -s; clear"
"""Run at the prompt before the snapshot: the applets' links, which /init makes in the
background after the prompt, so a state never lacks them whatever the timing."""
DISK_WAIT = f"until grep -q ' {DISK_MOUNT} ' /proc/mounts; do sleep 0.1; done; "
"""Put before PREPARE when the disk is attached: /init mounts it in the background, after
the prompt (images/contract.py), and the page restored from the state must find it
mounted, not still being probed. A disk that never mounts holds the state's boot until
BOOT_TIMEOUT_S, which then fails the build with the console's tail."""
ZERO_ON_FREE = "init_on_free=1"
"""Added to the command line of the boot that makes the state only: the kernel zeroes
every page it frees, so free memory holds zeros, not the compressed kernel v86 loaded at
1 MiB or the unpacked initramfs (random-looking bytes zstd cannot shrink). Filling free
memory with zeros from the shell before the snapshot did most of that, but the page
allocator hands out the first 16 MiB (where the compressed kernel lies) last, so ~450 of
its pages, ~0.8 MB of the tiny state, stayed as they were. The cold boot does without:
zeroing costs guest time there and gains nothing."""
BOOT_TIMEOUT_S = 600


def _run(argv: list, what: str, timeout: int) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise BuildError(f"{argv[0]} not found; install it (scripts/setup.sh)") from None
    except subprocess.TimeoutExpired:
        raise BuildError(f"{what} took over {timeout} s") from None
    if done.returncode != 0:
        raise BuildError(f"{what} failed: {(done.stderr or done.stdout).strip()[-400:]}")


def ensure_state(key: str, kernel: Path, initrd: Path, cmdline: str, memory_mib: int,
                 vga_memory_mib: int, hda: Optional[Path] = None, hda_sha256: str = "") -> Path:
    """The zstd-compressed state for this image and configuration, made if not cached.

    ``hda``: the page's lazy disk, attached while booting (a state restores only into the
    device set it was made with; the snapshot waits until /init has mounted it).
    """
    folder = cache_dir("web") / "states"
    folder.mkdir(parents=True, exist_ok=True)
    prepare = f"{DISK_WAIT}{PREPARE}" if hda is not None else PREPARE
    recipe = hashlib.sha256(SAVER.read_bytes() + repr((ZSTD_ARGS, prepare, ZERO_ON_FREE,
                                                      QUIET_MS, hda_sha256, cmdline,
                                                      NET_DEVICE)).encode()).hexdigest()
    key = f"{key}-{recipe[:12]}"
    final = folder / f"{key}.bin.zst"
    if final.exists():
        return final
    raw = folder / f".{key}.bin"
    config: Dict[str, object] = {
        "v86_module": str(V86_PACKAGE / "build" / "libv86.mjs"),
        "wasm": str(V86_PACKAGE / "build" / "v86.wasm"),
        "bios": str(BIOS), "vga_bios": str(VGA_BIOS), "bzimage": str(kernel),
        "initrd": str(initrd), "cmdline": f"{cmdline} {ZERO_ON_FREE}", "memory_mib": memory_mib,
        "vga_memory_mib": vga_memory_mib, "prompt": PROMPT, "quiet_ms": QUIET_MS,
        "timeout_s": BOOT_TIMEOUT_S, "prepare": prepare, "out": str(raw),
        "net_device": {"type": NET_DEVICE},
    }
    if hda is not None:
        config["hda"] = {"path": str(hda), "size": hda.stat().st_size}
    try:
        _run(["node", str(SAVER), json.dumps(config)], "booting v86 in Node for the state",
             BOOT_TIMEOUT_S + 60)
        partial = folder / f".{key}.bin.zst"
        _run(["zstd", *ZSTD_ARGS, str(raw), "-o", str(partial)], "zstd", 900)
        shutil.move(str(partial), final)
    finally:
        raw.unlink(missing_ok=True)
    return final
