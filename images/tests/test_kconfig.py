"""Fragment check: options Kconfig drops after olddefconfig must fail the build."""

from __future__ import annotations

from images import kconfig
from images.kernel.tiny import FRAGMENT

FRAGMENT_TEXT = """
# a comment
CONFIG_TMPFS=y
CONFIG_NR=4
# CONFIG_IPV6 is not set
CONFIG_NAME="x86lab"
"""


def test_parse_reads_set_unset_and_valued_options():
    assert kconfig.parse(FRAGMENT_TEXT) == {
        "CONFIG_TMPFS": "y",
        "CONFIG_NR": "4",
        "CONFIG_IPV6": "n",
        "CONFIG_NAME": '"x86lab"',
    }


def test_config_honouring_the_fragment_has_no_mismatches():
    config = FRAGMENT_TEXT + "CONFIG_OTHER=y\n"
    assert kconfig.mismatches(kconfig.parse(FRAGMENT_TEXT), kconfig.parse(config)) == []


def test_dropped_option_and_pulled_in_option_are_both_reported():
    config = 'CONFIG_NR=4\nCONFIG_IPV6=y\nCONFIG_NAME="x86lab"\n'  # TMPFS missing: no SHMEM
    problems = kconfig.mismatches(kconfig.parse(FRAGMENT_TEXT), kconfig.parse(config))
    assert problems == ["CONFIG_IPV6: asked n, got y", "CONFIG_TMPFS: asked y, got n"]


def test_option_absent_from_config_counts_as_unset():
    assert kconfig.mismatches({"CONFIG_IPV6": "n"}, {}) == []


def test_repo_fragment_asks_for_what_the_harness_needs():
    options = kconfig.parse(FRAGMENT.read_text())
    for name in (
        "CONFIG_SERIAL_8250_CONSOLE",
        "CONFIG_BLK_DEV_INITRD",
        "CONFIG_TMPFS",
        "CONFIG_SHMEM",
        "CONFIG_NE2K_PCI",
        "CONFIG_VIRTIO_NET",
        "CONFIG_EXT2_FS",
        "CONFIG_MODIFY_LDT_SYSCALL",
        "CONFIG_DEVTMPFS",
        "CONFIG_UNIX",
        "CONFIG_INET",
    ):
        assert options[name] == "y", name
    assert options["CONFIG_IPV6"] == "n" and options["CONFIG_SMP"] == "n"
