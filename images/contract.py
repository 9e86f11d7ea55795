"""What the image's /init promises the harness, in one place both sides import."""

BOOT_MARKER = "x86lab-init: userspace ready"
PROMPT = "x86lab# "
HOSTNAME = "x86lab"
SERIAL_CONSOLE = "ttyS0"
