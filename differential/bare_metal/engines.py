"""Running one bare-metal image on an engine and collecting its serial output.

- ``qemu``: ``qemu-system-i386 -kernel IMAGE -cpu pentium3 -accel tcg`` (QEMU's own
  Multiboot loader), COM1 on stdout, ``-no-reboot`` so a triple fault ends the process.
- ``bochs``: Bochs' BIOS boots a FAT disk with SYSLINUX, whose ``mboot.c32`` loads the
  image (the disk is built like ``images.bootdisk``'s: mformat, mcopy, ``syslinux
  --install``, no root), COM1 on a socket, ``harness.engines.bochs.bochsrc`` with a P6
  model (``p3_katmai``, as QEMU's ``pentium3``) and a triple fault ending the process.
- ``v86``: v86 (the version harness/engines/v86 pins) in Node through its own Multiboot
  loader (``v86_runner.mjs``), SeaBIOS as its BIOS. A subject like the reference, not an
  oracle; a Rust panic in its CPU ends the process ("crash").
- ``reference``: the reference PC (``reference.pc.machine.Pc``) in this process. It has
  no BIOS, so this module is its Multiboot loader: the ELF's PT_LOAD segments are copied
  to RAM and the CPU starts at the entry in flat protected mode with EAX = 0x2BADB002,
  the state Multiboot 0.6.96 section 3.2 promises. The image's code then runs on the
  reference exactly as on the others: the same bytes decide every case. Its tests under
  CPython (not PyPy) because cases are assembled with Keystone.

Each returns a ``Raw`` (the text and how the run stopped); ``run_cases`` in
``compare.py`` turns it into results and reruns the cases after one that hung.
"""

from __future__ import annotations

import os
import selectors
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from differential.bare_metal.image import load_segments

ENGINES = ("qemu", "bochs", "reference", "v86")
END_MARK = b"BM END"
QEMU = "qemu-system-i386"
BOCHS_CPU = "p3_katmai"
SYSLINUX_MODULES = Path("/usr/lib/syslinux/modules/bios")
MBOOT_FILES = ("mboot.c32", "libcom32.c32")
MULTIBOOT_EAX = 0x2BADB002


class EngineUnavailable(RuntimeError):
    """The engine cannot run here (a tool or ROM missing); the message says what to
    install."""


@dataclass
class Raw:
    """One run: everything COM1 carried, and why it stopped ("end": the runner printed
    BM END; "exit": the process ended (a triple fault, with -no-reboot); "crash": the
    emulator itself died (v86's CPU panicked); "timeout";
    "shutdown"/"halted"/...: the reference PC's Stop reason)."""

    text: str
    stop: str
    detail: str = ""


def _read_until_end(proc: subprocess.Popen, stream, timeout: float) -> Raw:
    """Read ``stream`` (a file object or socket) until BM END, the process's exit or
    ``timeout`` seconds; the process is killed afterwards in every case."""
    data = bytearray()
    selector = selectors.DefaultSelector()
    selector.register(stream, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    stop = "timeout"
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if not selector.select(min(left, 0.5)):
                if proc.poll() is not None:
                    stop = "exit"
                    break
                continue
            chunk = (stream.recv(65536) if isinstance(stream, socket.socket)
                     else os.read(stream.fileno(), 65536))
            if not chunk:
                stop = "exit"
                break
            data += chunk
            if END_MARK in data:
                stop = "end"
                break
    finally:
        selector.close()
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    return Raw(data.decode("latin-1"), stop, f"status {proc.returncode}")


def run_qemu(image: Path, timeout: float = 60.0) -> Raw:
    if shutil.which(QEMU) is None:
        raise EngineUnavailable(f"{QEMU} not found; install it: apt-get install "
                                "qemu-system-x86")
    argv = [QEMU, "-kernel", str(image), "-cpu", "pentium3", "-accel", "tcg", "-m", "32",
            "-no-reboot", "-serial", "stdio", "-display", "none", "-monitor", "none"]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    return _read_until_end(proc, proc.stdout, timeout)


def _bochs_disk(image: Path, folder: Path):
    """A SYSLINUX disk whose configuration boots ``image`` through mboot.c32."""
    from images.bootdisk import HEADS, SECTORS_PER_TRACK, BootDisk, write_syslinux_disk

    for name in MBOOT_FILES:
        if not (SYSLINUX_MODULES / name).exists():
            raise EngineUnavailable(f"{SYSLINUX_MODULES / name} not found; install it: "
                                    "apt-get install syslinux-common")
    config = folder / "syslinux.cfg"
    config.write_text("DEFAULT bm\nPROMPT 0\nTIMEOUT 0\nLABEL bm\n  KERNEL mboot.c32\n"
                      "  APPEND bm.elf\n")
    files = [(image, "bm.elf"), (config, "syslinux.cfg")] + [
        (SYSLINUX_MODULES / name, name) for name in MBOOT_FILES]
    disk = folder / "disk.img"
    cylinders = write_syslinux_disk(disk, files, "X86LABBM")
    return BootDisk(disk, cylinders, HEADS, SECTORS_PER_TRACK, {})


def run_bochs(image: Path, timeout: float = 120.0) -> Raw:
    from harness.engines.bochs import BOCHS, IPS, bochsrc, missing_bochs
    from images.errors import ImageError

    missing = missing_bochs()
    if missing:
        raise EngineUnavailable(missing)
    with tempfile.TemporaryDirectory(prefix="x86lab-bm-bochs-") as scratch:
        folder = Path(scratch)
        try:
            disk = _bochs_disk(image, folder)
        except ImageError as exc:
            raise EngineUnavailable(f"cannot make the Bochs boot disk: {exc}") from None
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        # A triple fault must end the run rather than reset into the BIOS and rerun.
        extra = [f"cpu: model={BOCHS_CPU}, ips={IPS}, reset_on_triple_fault=0, "
                 "ignore_bad_msrs=0"]
        (folder / "bochsrc").write_text(bochsrc(disk, 32, listener.getsockname()[1],
                                                folder / "redolog", extra))
        (folder / "commands").write_text("c\n")
        proc = subprocess.Popen([BOCHS, "-q", "-f", str(folder / "bochsrc"), "-rc",
                                 str(folder / "commands")], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                cwd=folder)
        try:
            listener.settimeout(30.0)
            connection, _ = listener.accept()
        except socket.timeout:
            proc.kill()
            err = proc.communicate()[1].decode("latin-1", "replace")[-400:]
            raise EngineUnavailable(f"bochs did not connect COM1: {err}") from None
        finally:
            listener.close()
        with connection:
            raw = _read_until_end(proc, connection, timeout)
        if raw.stop == "exit" and proc.stderr is not None:
            raw.detail += ": " + proc.stderr.read().decode("latin-1", "replace")[-300:]
        return raw


V86_RUNNER = Path(__file__).with_name("v86_runner.mjs")
V86_PACKAGE = Path(__file__).parents[2] / "harness" / "engines" / "v86" / "node_modules" / "v86"
SEABIOS = Path("/usr/share/seabios")


def run_v86(image: Path, timeout: float = 60.0) -> Raw:
    if shutil.which("node") is None:
        raise EngineUnavailable("node not found; install Node.js (README: a fresh machine)")
    if not (V86_PACKAGE / "build" / "libv86.mjs").exists():
        raise EngineUnavailable(f"{V86_PACKAGE} missing; run `npm ci` in harness/engines/v86")
    if not (SEABIOS / "bios.bin").exists():
        raise EngineUnavailable("SeaBIOS missing; install it: apt-get install seabios")
    vga = SEABIOS / "vgabios-stdvga.bin"
    proc = subprocess.Popen(["node", str(V86_RUNNER), str(image), str(timeout),
                             str(SEABIOS / "bios.bin"), str(vga) if vga.exists() else ""],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    raw = _read_until_end(proc, proc.stdout, timeout + 10)
    if raw.stop == "exit":
        status = proc.returncode
        err = proc.stderr.read().decode("latin-1", "replace") if proc.stderr else ""
        if status == 3:
            raw.stop = "timeout"
        elif "panicked" in err or status not in (0, None):
            raw.stop = "crash"
            raw.detail = " ".join(err.strip().splitlines()[:2])
    return raw


def run_reference(image: Path, budget: int = 50_000_000) -> Raw:
    from reference.pc.boot_protocol import FLAT_CODE, FLAT_DATA, GDT, enter_protected_mode
    from reference.pc.machine import Pc

    out: List[bytes] = []
    pc = Pc(memory=32 << 20, transmit=out.append)
    cpu = pc.cpu
    elf = image.read_bytes()
    for address, data, size in load_segments(elf):
        cpu.mem.write_bytes(address, data + bytes(size - len(data)))
    # The flat segments a Multiboot loader leaves (the runner loads its own GDT first).
    cpu.mem.write_bytes(GDT, b"".join(v.to_bytes(8, "little")
                                      for v in (0, 0, FLAT_CODE, FLAT_DATA)))
    entry = int.from_bytes(elf[24:28], "little")
    enter_protected_mode(cpu, entry)
    cpu.set_reg("eax", MULTIBOOT_EAX)
    cpu.set_reg("ebx", 0)
    stopped: Optional[str] = None
    detail = ""
    done = 0
    while stopped is None:
        result = pc.run(budget=min(1_000_000, budget - done))
        done += 1_000_000
        if END_MARK in b"".join(out[-64:]):
            stopped = "end"
        elif result.reason != "budget" or done >= budget:
            stopped, detail = ("timeout" if result.reason == "budget" else result.reason,
                               result.detail)
    return Raw(b"".join(out).decode("latin-1"), stopped, detail)


def run_engine(engine: str, image: Path, timeout: Optional[float] = None) -> Raw:
    """The image on ``engine`` (one of ENGINES)."""
    if engine == "qemu":
        return run_qemu(image, timeout or 60.0)
    if engine == "bochs":
        return run_bochs(image, timeout or 120.0)
    if engine == "reference":
        return run_reference(image)
    if engine == "v86":
        return run_v86(image, timeout or 60.0)
    raise ValueError(f"unknown engine {engine!r} (known: {', '.join(ENGINES)})")
