"""Initramfs contents: the skeleton, user extras (--overlay, --add) and the memory budget."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from images import contract, rootfs
from images.build import initramfs_bytes
from images.errors import ImageError
from images.kernel import Kernel

NO_KERNEL = Kernel("tiny", Path("/nonexistent/bzImage"))


def test_skeleton_has_busybox_shell_init_and_console():
    entries = {e.path: e for e in rootfs.base_entries(b"\x7fELF-busybox")}
    assert entries["bin/busybox"].data == b"\x7fELF-busybox"
    assert entries["bin/sh"].data == b"busybox" and stat.S_ISLNK(entries["bin/sh"].mode)
    assert stat.S_IMODE(entries["init"].mode) == 0o755
    assert stat.S_ISCHR(entries["dev/console"].mode) and entries["dev/console"].rdev == (5, 1)


def test_module_list_follows_the_given_order():
    entries = {e.path: e for e in rootfs.module_entries([("b", b"B"), ("a", b"A")])}
    assert entries[rootfs.LOAD_ORDER].data == b"b.ko\na.ko\n"
    assert entries["lib/modules/a.ko"].data == b"A"
    assert rootfs.module_entries([]) == []


def test_disk_modules_go_to_their_own_list_in_the_same_order():
    modules = [("scsi_mod", b"S"), ("ne2k_pci", b"N"), ("ata_piix", b"A")]
    entries = {e.path: e for e in rootfs.module_entries(modules, {"scsi_mod", "ata_piix"})}
    assert entries[rootfs.LOAD_ORDER].data == b"ne2k_pci.ko\n"
    assert entries[rootfs.DISK_LOAD_ORDER].data == b"scsi_mod.ko\nata_piix.ko\n"
    assert rootfs.DISK_LOAD_ORDER not in {
        e.path for e in rootfs.module_entries(modules[1:2], {"ata_piix"})}


@pytest.mark.skipif(shutil.which("sh") is None, reason="no host sh")
def test_init_loads_and_mounts_the_disk_only_with_the_flag_and_in_the_background(tmp_path):
    """Run /init's module and disk lines with stand-in insmod and mount, and files for
    /proc/cmdline, /proc/sys/kernel/printk and the disk's node (a plain file stands for
    the block device: ``-b`` becomes ``-e``). The disk's first module waits for a file the
    script makes after those lines: were the disk attached in the foreground, it would
    give up waiting and say so."""
    text = rootfs.render_init(rootfs.INIT_TEMPLATE.read_text())
    start = text.index("load_modules() {")
    stop = text.index("esac", start) + len("esac")
    root = tmp_path / "root"
    (root / "lib" / "modules").mkdir(parents=True)
    (root / "lib" / "modules" / "load-order").write_text("ne2k_pci.ko\n")
    (root / "lib" / "modules" / "load-order-disk").write_text("scsi_mod.ko\next4.ko\n")
    (root / "sda").write_text("")
    snippet = (text[start:stop].replace("/lib/modules", f"{root}/lib/modules")
               .replace("/proc/cmdline", f"{root}/cmdline")
               .replace("/proc/sys/kernel/printk", f"{root}/printk")
               .replace("-b /dev/sda", f"-e {root}/sda").replace("/dev/sda", f"{root}/sda"))
    stand_ins = (
        'insmod() {\n'
        '    case "$1" in *scsi_mod.ko)\n'
        f'        i=0; until [ -e {root}/prompt ]; do\n'
        '            i=$((i + 1)); [ "$i" -gt 500 ] && { echo waited-in-vain; break; }\n'
        '            sleep 0.01\n'
        '        done ;;\n'
        '    esac\n'
        f'    read -r seen _ < {root}/printk\n'
        '    echo "insmod ${1##*/} level=$seen"\n'
        '}\n'
        'mkdir() { :; }\n'
        'mount() { echo "mount $*"; }\n'
    )
    runs = []
    for cmdline in ("console=ttyS0 panic=-1", f"console=ttyS0 {contract.DISK_FLAG}"):
        (root / "cmdline").write_text(cmdline + "\n")
        (root / "printk").write_text("7\t4\t1\t7\n")
        (root / "prompt").unlink(missing_ok=True)
        script = f"{stand_ins}{snippet}\necho prompt; : > {root}/prompt; wait\n"
        done = subprocess.run(["sh", "-c", script], capture_output=True, text=True,
                              check=True, timeout=60)
        runs.append((done.stdout.splitlines(), (root / "printk").read_text().split()[0]))
    assert runs[0] == (["insmod ne2k_pci.ko level=7", "prompt"], "7")
    assert runs[1] == ([
        "insmod ne2k_pci.ko level=7", "prompt", "insmod scsi_mod.ko level=4",
        "insmod ext4.ko level=4", f"mount -o ro {root}/sda {contract.DISK_MOUNT}",
    ], "7")


def test_overlay_keeps_layout_modes_and_symlinks(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "motd").write_text("hello\n")
    (tmp_path / "run.sh").write_text("#!/bin/sh\n")
    (tmp_path / "run.sh").chmod(0o750)
    (tmp_path / "link").symlink_to("run.sh")
    entries = {e.path: e for e in rootfs.overlay_entries([str(tmp_path)])}
    assert sorted(entries) == ["etc", "etc/motd", "link", "run.sh"]
    assert entries["etc/motd"].data == b"hello\n"
    assert stat.S_IMODE(entries["run.sh"].mode) == 0o750
    assert entries["link"].data == b"run.sh"


def test_add_places_a_file_with_its_parent_folders(tmp_path):
    host = tmp_path / "probe"
    host.write_bytes(b"\x01\x02")
    entries = {e.path: e for e in rootfs.add_entries([f"{host}:/usr/local/bin/probe"])}
    assert sorted(entries) == ["usr", "usr/local", "usr/local/bin", "usr/local/bin/probe"]
    assert entries["usr/local/bin/probe"].data == b"\x01\x02"


@pytest.mark.parametrize("spec", ["nocolon", "file:relative/path", "file:/"], ids=repr)
def test_malformed_add_is_a_clear_error(tmp_path, spec):
    with pytest.raises(ImageError, match="expected HOST:GUEST"):
        rootfs.parse_add(spec)


def test_add_collapses_doubled_slashes_in_the_guest_path(tmp_path):
    host = tmp_path / "probe"
    host.write_bytes(b"")
    assert rootfs.parse_add(f"{host}://usr//bin/probe/") == (host, "usr/bin/probe")


def test_add_error_stays_on_one_line_whatever_the_host_name(tmp_path):
    with pytest.raises(ImageError) as raised:
        rootfs.parse_add(f"{tmp_path}/a\nb\x85c:/x")
    assert len(str(raised.value).splitlines()) == 1


def test_add_of_missing_host_file_names_it(tmp_path):
    with pytest.raises(ImageError, match="does not exist"):
        rootfs.parse_add(f"{tmp_path}/absent:/x")


def test_overlay_that_is_not_a_folder_is_an_error(tmp_path):
    with pytest.raises(ImageError, match="not a folder"):
        rootfs.overlay_entries([str(tmp_path / "absent")])


def test_extras_digest_changes_with_content_only(tmp_path):
    (tmp_path / "f").write_text("one")
    first = rootfs.digest(rootfs.overlay_entries([str(tmp_path)]))
    assert first == rootfs.digest(rootfs.overlay_entries([str(tmp_path)]))
    (tmp_path / "f").write_text("two")
    assert first != rootfs.digest(rootfs.overlay_entries([str(tmp_path)]))


def test_initramfs_over_budget_is_refused_with_sizes():
    with pytest.raises(ImageError, match=r"initramfs is 0\.1 MiB, over the 0\.0 MiB"):
        initramfs_bytes(b"\0" * 100_000, NO_KERNEL, [], budget=4096)


def test_initramfs_is_reproducible():
    assert initramfs_bytes(b"bb", NO_KERNEL, [], 1 << 20) == initramfs_bytes(
        b"bb", NO_KERNEL, [], 1 << 20
    )


def test_fstab_mounts_onto_folders_the_image_has():
    """/init's `mount -a` fails for a mount point the archive lacks (nothing creates it)."""
    mounts = [line.split() for line in rootfs.FSTAB.read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    assert sorted(m[1] for m in mounts) == ["/dev", "/proc", "/sys", "/tmp"]
    folders = {e.path for e in rootfs.base_entries(b"") if stat.S_ISDIR(e.mode)}
    assert {m[1].lstrip("/") for m in mounts} <= folders
    assert "etc/fstab" in {e.path for e in rootfs.base_entries(b"")}
