"""Boot each real image in QEMU and check what /init promises (slow: builds if uncached).

A deliberately small console reader (pexpect on QEMU's serial stdio); the harness has the
full console driver. Expected values come from the contract and from QEMU's own
configuration (which network card it was asked to emulate), not from the builder.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import shutil
import subprocess
from typing import Optional

import pytest

from images import contract
from images.build import ensure_image

pexpect = pytest.importorskip("pexpect")

QEMU = "qemu-system-i386"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.boot,
    pytest.mark.skipif(shutil.which(QEMU) is None, reason=f"{QEMU} not installed"),
]
BOOT_TIMEOUT = 120
DONE = "@@done"


def run(console, command: str) -> str:
    """Output of one shell command: everything between the echoed line and the marker.

    The marker is typed as @@"done" so the echo of the command line itself never matches.
    """
    console.sendline(f'{command}; echo @@"done"')
    console.expect(DONE + r"\r*\n", timeout=30)  # QEMU's \r\n passes a pty: \r\r\n
    lines = console.before.replace("\r", "").split("\n")
    return "\n".join(line for line in lines[1:]).strip()


@pytest.fixture(params=["tiny", "debian"])
def image(request):
    return ensure_image(kernel=request.param)


@contextlib.contextmanager
def booted(image, nic: str = "virtio-net-pci", disk: Optional[str] = None):
    """A QEMU console at the contract's prompt; the VM is killed when the block ends.

    ``disk``: a raw image on the first IDE channel, with the command line's disk flag
    (as the web demo's page attaches its tools disk)."""
    command = [
        "-kernel",
        str(image.kernel),
        "-initrd",
        str(image.initrd),
        "-append",
        f"{image.cmdline} {contract.DISK_FLAG}" if disk else image.cmdline,
        "-m",
        "256",
        "-display",
        "none",
        "-serial",
        "stdio",
        "-monitor",
        "none",
        "-no-reboot",
        "-nic",
        f"user,model={nic}",
    ]
    if disk:
        command += ["-drive", f"file={disk},format=raw,if=ide,index=0,media=disk"]
    console = pexpect.spawn(
        QEMU, command, encoding="utf-8", codec_errors="replace", timeout=BOOT_TIMEOUT
    )
    try:
        console.expect_exact(contract.BOOT_MARKER)
        console.expect_exact(contract.PROMPT)
        yield console
    finally:
        console.terminate(force=True)


@pytest.mark.parametrize("nic", ["virtio-net-pci", "ne2k_pci"])
def test_image_boots_to_the_contract_prompt_with_a_network_card(image, nic):
    with booted(image, nic) as console:
        assert run(console, "hostname").endswith(contract.HOSTNAME)
        assert "eth0" in run(console, "ls /sys/class/net").split()
        assert "tmpfs /tmp tmpfs" in run(console, "cat /proc/mounts")
        assert run(console, "echo $((6 * 7))").endswith("42")


def test_overlay_and_added_file_reach_the_guest(tmp_path):
    payload = bytes(range(256)) * 300
    (tmp_path / "blob").write_bytes(payload)
    overlay = tmp_path / "root"
    (overlay / "etc" / "init.d").mkdir(parents=True)
    hook = overlay / "etc" / "init.d" / "S10mark"
    hook.write_text("#!/bin/sh\necho overlay-hook-ran > /tmp/hook\n")
    hook.chmod(0o755)
    image = ensure_image("tiny", overlays=[str(overlay)], adds=[f"{tmp_path}/blob:/opt/blob"])
    with booted(image) as console:
        assert run(console, "md5sum /opt/blob").split()[-2] == hashlib.md5(payload).hexdigest()
        assert run(console, "cat /tmp/hook").endswith("overlay-hook-ran")


PRINTK_LINE = re.compile(r"\d+\s+\d+\s+\d+\s+\d+")
"""/proc/sys/kernel/printk: the console, default, minimum and boot-time default levels."""
KERNEL_LINES = re.compile(r"\b(ata\d|scsi|sd \d|EXT[24]-fs|sda)\b")
"""What the disk's probe and mount print in the kernel log: none of it on the console once
the shell has it (/init keeps only warnings and worse there while it attaches the disk)."""


@pytest.mark.skipif(shutil.which("mke2fs") is None, reason="mke2fs missing: apt-get install "
                    "e2fsprogs")
def test_the_disk_is_mounted_in_the_background_after_the_prompt(image, tmp_path):
    payload = bytes(range(256)) * 64
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "blob").write_bytes(payload)
    disk = tmp_path / "disk.img"
    subprocess.run(["mke2fs", "-q", "-t", "ext2", "-d", str(tmp_path / "tree"), "-F",
                    str(disk), "4M"], check=True, capture_output=True)
    with booted(image, disk=str(disk)) as console:
        # Everything the console shows from the prompt until the disk is mounted.
        waited = run(console, f"until grep -q ' {contract.DISK_MOUNT} ' /proc/mounts; "
                              "do sleep 0.1; done")
        assert KERNEL_LINES.search(console.before) is None, waited
        assert f"/dev/sda {contract.DISK_MOUNT} ext" in run(console, "cat /proc/mounts")
        digest = run(console, f"md5sum {contract.DISK_MOUNT}/blob").split()[-2]
        assert digest == hashlib.md5(payload).hexdigest()
        # The console's log level is back to 7, so a kernel line may come between the
        # command and its output (under load: "clocksource: ... unstable"): the four
        # numbers of /proc/sys/kernel/printk are the line that is only numbers.
        printk = [line.split() for line in
                  run(console, "cat /proc/sys/kernel/printk").splitlines()
                  if PRINTK_LINE.fullmatch(line.strip())]
        assert printk and printk[0][0] == "7", printk
