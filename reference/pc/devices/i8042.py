"""The i8042 keyboard controller, with no keyboard and no mouse plugged in.

Shaped like the IBM PC AT / PS/2 technical references for the 8042 keyboard controller:
a status register and a command register at 0x64, the data buffer at 0x60, 32 bytes of
controller RAM whose byte 0 is the command byte (CTR), an output port whose bit 0 is
the CPU reset line and bit 1 the A20 gate.

Modelled (the commands Linux issues, drivers/input/serio/i8042.c, and its boot code):
- status: OBF, IBF (always 0: the controller answers at once), system flag (CTR bit 2),
  command/data (what the last write was), keyboard not inhibited (no key lock), AUX data
  (the byte in the buffer came from the mouse side), time-out;
- 0x20-0x3F read RAM (0x20: the command byte), 0x60-0x7F write RAM; 0xA7/0xA8 disable /
  enable the AUX port and 0xAD/0xAE the keyboard port (CTR bits 5 and 4); 0xA9 and 0xAB
  interface tests answer 0x00 (no error: the lines are fine, nothing is attached); 0xAA
  self-test answers 0x55 and sets the system flag; 0xD0/0xD1 read / write the output
  port; 0xD2/0xD3 echo the next data byte as keyboard / AUX data (Linux's AUX loop and
  MUX tests); 0xD4 sends the next data byte to the AUX device; 0xF0-0xFF pulse the
  output port bits whose command bit is 0: bit 0 is the reset line, so 0xFE resets the
  machine (``reset()``) and 0xFF pulses nothing; 0xD1 with bit 0 clear resets it too;
- no device attached: a byte sent to the keyboard (a data write with no command waiting)
  or to the mouse (0xD4) is answered with 0xFE and the time-out bit, at once (a real
  controller gives up after about 15 ms of no clock from the device). Linux's libps2
  reads 0xFE as a NAK (atkbd retries once, then gives up) and psmouse aborts on the
  time-out flag, so both probes end at once with nothing found;
- IRQ 1 while a keyboard-side byte waits and CTR bit 0 is set, IRQ 12 for an AUX byte
  with CTR bit 1 (``irq1`` / ``irq12``, optional).

With these answers Linux finds the controller, an AUX port (the 0xD3 loop and its IRQ
12 work), no active multiplexer (the third 0xD3 loop byte comes back unchanged) and no
device on either port.

Not modelled: keyboards, mice, scan code translation (CTR bit 6 is storage), the
multiplexer commands (0x90-0x93 are ignored, like every command not listed above),
parity errors, the input port (0xC0), password and other vendor commands, the time the
controller takes, and A20 masking (the gate bit is kept and read back only).
"""

from __future__ import annotations

from collections import deque
from typing import Callable, Deque, Optional, Tuple

from reference.pc.bus import ByteWide

DATA_PORT = 0x60
COMMAND_PORT = 0x64  # status when read

# Status register
OBF = 0x01
IBF = 0x02
SYSTEM_FLAG = 0x04
COMMAND_DATA = 0x08  # 1: the last write was a command (0x64)
NOT_INHIBITED = 0x10  # the key lock switch is open
AUX_DATA = 0x20  # PS/2 mode: the output buffer holds a byte from the AUX device
TIMEOUT = 0x40
PARITY_ERROR = 0x80

# Command byte (controller RAM byte 0)
KBD_INTERRUPT = 0x01
AUX_INTERRUPT = 0x02
CTR_SYSTEM_FLAG = 0x04
KBD_DISABLED = 0x10
AUX_DISABLED = 0x20
TRANSLATE = 0x40

# Output port
RESET_LINE = 0x01  # active low: 0 holds the CPU in reset
A20_GATE = 0x02
OUT_KBD_IRQ = 0x10
OUT_AUX_IRQ = 0x20

SELF_TEST_PASSED = 0x55
INTERFACE_OK = 0x00
DEVICE_TIMEOUT = 0xFE

POWER_ON_CTR = TRANSLATE | CTR_SYSTEM_FLAG | KBD_INTERRUPT
"""What a PC BIOS leaves in the command byte after POST: scan code translation on,
self-test passed, keyboard interrupt on; the reference boots Linux without a BIOS."""

# Commands that take the next byte written to the data port.
WRITE_OUTPUT_PORT = 0xD1
WRITE_KBD_BUFFER = 0xD2
WRITE_AUX_BUFFER = 0xD3
WRITE_TO_AUX = 0xD4


class I8042(ByteWide):
    """The controller. ``reset()`` is the CPU reset line; ``irq1``/``irq12(level)`` are
    called when the level of those IRQ lines changes."""

    PORTS = (DATA_PORT, COMMAND_PORT)

    def __init__(
        self,
        reset: Callable[[], None],
        irq1: Optional[Callable[[bool], None]] = None,
        irq12: Optional[Callable[[bool], None]] = None,
    ) -> None:
        self._reset = reset
        self._irq1 = irq1
        self._irq12 = irq12
        self.ram = bytearray(32)
        self.ram[0] = POWER_ON_CTR
        self.output_port = RESET_LINE | A20_GATE
        self._output: Deque[Tuple[int, int]] = deque()
        """Bytes for the host, each with its status bits (AUX_DATA, TIMEOUT); the first
        is in the output buffer, the others wait in the controller."""
        self._last = 0
        self._pending: Optional[int] = None  # a command waiting for its data byte
        self._last_was_command = False
        self._lines = (False, False)

    @property
    def ctr(self) -> int:
        """The command byte."""
        return self.ram[0]

    @property
    def a20(self) -> bool:
        """The A20 gate bit of the output port (kept, not applied to memory)."""
        return bool(self.output_port & A20_GATE)

    # ----------------------------------------------------------------- host side

    def read_byte(self, port: int) -> int:
        if port == COMMAND_PORT:
            return self._status()
        if port == DATA_PORT:
            if self._output:
                self._last = self._output.popleft()[0]
                self._update_irqs()
            return self._last  # an empty buffer reads its last byte again
        return 0xFF  # 0x61-0x63, 0x65-0x67 in a wide access: not ours

    def write_byte(self, port: int, value: int) -> None:
        if port == COMMAND_PORT:
            self._last_was_command = True
            self._pending = None  # a new command replaces one still waiting for data
            self._command(value)
        elif port == DATA_PORT:
            self._last_was_command = False
            pending, self._pending = self._pending, None
            if pending is None:
                self._to_keyboard(value)
            else:
                self._command_data(pending, value)

    def _status(self) -> int:
        status = NOT_INHIBITED
        if self.ctr & CTR_SYSTEM_FLAG:
            status |= SYSTEM_FLAG
        if self._last_was_command:
            status |= COMMAND_DATA
        if self._output:
            status |= OBF | self._output[0][1]
        return status

    # ----------------------------------------------------------------- commands

    def _command(self, command: int) -> None:
        if 0x20 <= command <= 0x3F:
            self._put(self.ram[command & 0x1F])
        elif 0x60 <= command <= 0x7F or command in (
            WRITE_OUTPUT_PORT, WRITE_KBD_BUFFER, WRITE_AUX_BUFFER, WRITE_TO_AUX,
        ):
            self._pending = command
        elif command == 0xA7:
            self._set_ctr(self.ctr | AUX_DISABLED)
        elif command == 0xA8:
            self._set_ctr(self.ctr & ~AUX_DISABLED)
        elif command in (0xA9, 0xAB):  # AUX / keyboard interface test
            self._put(INTERFACE_OK)
        elif command == 0xAA:  # controller self-test
            self._set_ctr(self.ctr | CTR_SYSTEM_FLAG)
            self._put(SELF_TEST_PASSED)
        elif command == 0xAD:
            self._set_ctr(self.ctr | KBD_DISABLED)
        elif command == 0xAE:
            self._set_ctr(self.ctr & ~KBD_DISABLED)
        elif command == 0xD0:
            self._put(self._read_output_port())
        elif command >= 0xF0:
            if not command & RESET_LINE:  # a 0 bit in the command pulses that line
                self._reset()

    def _command_data(self, command: int, value: int) -> None:
        if command <= 0x7F:
            if command == 0x60:
                self._set_ctr(value)
            else:
                self.ram[command & 0x1F] = value
        elif command == WRITE_OUTPUT_PORT:
            self.output_port = value | RESET_LINE
            if not value & RESET_LINE:  # the line goes low: the CPU resets
                self._reset()
        elif command == WRITE_KBD_BUFFER:
            self._put(value)
        elif command == WRITE_AUX_BUFFER:
            self._put(value, AUX_DATA)
        elif command == WRITE_TO_AUX:
            self._put(DEVICE_TIMEOUT, AUX_DATA | TIMEOUT)  # no mouse answers

    def _to_keyboard(self, value: int) -> None:
        """A byte for the keyboard: none is attached, so the transfer times out."""
        self._put(DEVICE_TIMEOUT, TIMEOUT)

    def _read_output_port(self) -> int:
        value = self.output_port & ~(OUT_KBD_IRQ | OUT_AUX_IRQ)
        kbd, aux = self._lines
        return value | (OUT_KBD_IRQ if kbd else 0) | (OUT_AUX_IRQ if aux else 0)

    # ----------------------------------------------------------------- output buffer

    def _put(self, value: int, flags: int = 0) -> None:
        self._output.append((value & 0xFF, flags))
        self._update_irqs()

    def _set_ctr(self, value: int) -> None:
        self.ram[0] = value & 0xFF
        self._update_irqs()

    def _update_irqs(self) -> None:
        kbd = aux = False
        if self._output:
            from_aux = bool(self._output[0][1] & AUX_DATA)
            kbd = not from_aux and bool(self.ctr & KBD_INTERRUPT)
            aux = from_aux and bool(self.ctr & AUX_INTERRUPT)
        old_kbd, old_aux = self._lines
        self._lines = (kbd, aux)
        if kbd != old_kbd and self._irq1 is not None:
            self._irq1(kbd)
        if aux != old_aux and self._irq12 is not None:
            self._irq12(aux)
