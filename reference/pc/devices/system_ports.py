"""Two single ports of the PC: 0x80 (the POST code port) and 0x92 (System Control Port A).

Port 0x80: on the PC AT it is one of the sixteen registers of the DMA page register
file (a 74LS612 at 0x80-0x8F) that no DMA channel uses, so BIOSes write their POST
progress codes there for a diagnostic card to show, and Linux writes it as a short I/O
delay (``outb_p``, ``io_delay``; the 8250 probe writes it to defeat bus float). Writes
are kept in ``post_code``; reads give back the last write, as the AT's register file
does (QEMU's dummy port reads 0xFF instead).

Port 0x92, System Control Port A (IBM PS/2 and the Intel PIIX/ICH southbridges):
- bit 0, fast reset: a 0-to-1 transition pulses the CPU reset line (``reset()``); the
  bit reads back as written, so software clears it before the next reset;
- bit 1, alternate A20 gate: kept and read back (``a20``). A20 masking is not modelled:
  memory never wraps at 1 MiB whatever this bit (or the i8042's) says;
- the other bits (PS/2 security lock, watchdog status, disk LEDs) are not implemented
  and read 0, as on the PIIX.

At power-on ``a20`` is set: the reference boots Linux without a BIOS, and a BIOS leaves
A20 enabled.
"""

from __future__ import annotations

from typing import Callable

from reference.pc.bus import ByteWide

POST_PORT = 0x80
CONTROL_PORT_A = 0x92

FAST_RESET = 0x01
A20_GATE = 0x02


class SystemPorts(ByteWide):
    """Ports 0x80 and 0x92; ``reset()`` is the CPU reset line."""

    PORTS = (POST_PORT, CONTROL_PORT_A)

    def __init__(self, reset: Callable[[], None]) -> None:
        self._reset = reset
        self.post_code = 0
        """The last byte written to port 0x80."""
        self.control_a = A20_GATE

    @property
    def a20(self) -> bool:
        return bool(self.control_a & A20_GATE)

    def read_byte(self, port: int) -> int:
        if port == POST_PORT:
            return self.post_code
        if port == CONTROL_PORT_A:
            return self.control_a
        return 0xFF  # a wide access running past our port: nothing there

    def write_byte(self, port: int, value: int) -> None:
        if port == POST_PORT:
            self.post_code = value
        elif port == CONTROL_PORT_A:
            rising = value & ~self.control_a & FAST_RESET
            self.control_a = value & (FAST_RESET | A20_GATE)
            if rising:
                self._reset()
