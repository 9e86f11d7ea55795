"""What the image's /init promises the harness, in one place both sides import."""

BOOT_MARKER = "x86lab-init: userspace ready"
PROMPT = "x86lab# "
HOSTNAME = "x86lab"
SERIAL_CONSOLE = "ttyS0"
DISK_FLAG = "x86lab.disk"
"""Kernel command-line word that makes /init load the disk modules (Debian kernel: ata_piix,
sd_mod, ext4 and their dependencies) and mount /dev/sda. Loading them costs the Debian
image about 0.7 G guest instructions (signature checks and relocations of ~3 MB of
modules), so only a boot with a disk attached (the web demo's page and saved state) pays."""
