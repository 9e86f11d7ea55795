"""What the image's /init promises the harness, in one place both sides import."""

BOOT_MARKER = "x86lab-init: userspace ready"
PROMPT = "x86lab# "
HOSTNAME = "x86lab"
SERIAL_CONSOLE = "ttyS0"
DISK_FLAG = "x86lab.disk"
"""Kernel command-line word that makes /init load the disk modules (Debian kernel: ata_piix,
sd_mod, ext4 and their dependencies; tiny kernel: ata_piix) and mount /dev/sda at
DISK_MOUNT, in the background once the prompt is on its way. Loading them costs the
Debian image about 0.7 G guest instructions (signature checks and relocations of ~3 MB of
modules) and either image libata's port probes (~0.35 s of guest time), so only a boot
with a disk attached (the web demo's page and saved state) pays, and not before its
prompt."""
DISK_MOUNT = "/mnt/disk"
"""Where /init mounts the disk (read-only). It appears a moment after the prompt: a caller
that needs it waits until /proc/mounts lists it."""
