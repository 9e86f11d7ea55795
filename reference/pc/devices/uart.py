"""NS16550A UART (COM1 is the Linux console, ``console=ttyS0``).

Shaped like the National Semiconductor PC16550D datasheet: eight registers at
``base + 0..7`` (Table II), the Line Control Register's DLAB bit swapping the divisor
latch (DLL/DLM) in for RBR/THR and IER, 16-byte FIFOs switched on by FCR bit 0, and the
four interrupt sources by priority (Table IV): receiver line status, received data
available / character timeout, transmitter holding register empty, modem status.

Modelled:
- every register and its reset value; IER keeps bits 0-3 only, MCR bits 0-4, IIR bits
  6-7 read 11 while the FIFOs are on and bits 4-5 read 0 (what Linux's ``autoconfig``
  needs to call the chip a 16550A rather than a 16750, an XScale or a NatSemi part);
- FCR: FIFO enable (changing it empties both FIFOs), RX/TX FIFO reset, RX trigger level
  1/4/8/14; bits other than 0 are programmed only with bit 0 set (datasheet, FCR0);
- the THRE interrupt: set when THR empties, cleared by reading IIR while it is the
  reported source or by writing THR, and set again by raising IER bit 1 while THR is
  empty (the rising edge, as QEMU and Bochs do; Linux's startup tests that
  ``UART_BUG_THRE`` and ``UART_BUG_TXEN`` are not needed rely on it);
- the character timeout (IIR 0x0C): FIFO mode, data below the trigger level, nothing put
  in or taken out for four character times;
- MCR loopback: bytes written to THR come back into the receiver at once (overrunning
  as the datasheet says: a full FIFO keeps its bytes and sets OE, the 16450 mode
  overwrites RBR), ``transmit`` is not called, host input waits, and MSR's CTS/DSR/RI/DCD
  follow MCR's RTS/DTR/OUT1/OUT2 with their delta bits;
- the PC's IRQ wiring: the chip's INTR reaches the bus only while MCR OUT2 is set (the
  board gates the IRQ with the OUT2 pin); in loopback the datasheet forces the OUT pins
  inactive, so no IRQ reaches the bus then, although IIR still reports sources.

Timing, all in virtual cycles (``reference.pc.clock``), never the host's clock:
- transmit is instantaneous: ``transmit`` gets each byte written to THR and THRE/TEMT
  are set again at once;
- host input (``receive``) waits in an unbounded queue and is paced at the programmed
  rate, one byte every ``10 * divisor * frequency // 115200`` cycles (10 bits per
  character at 115200 / divisor baud) through clock events, so a halted guest wakes on
  time. A full receiver holds the sender off (as RTS/CTS flow control would): host input
  is never lost.

Not modelled: word length, parity, stop bits and break (LCR is storage; PE, FE, BI and
LSR bit 7 never set), the modem input lines (a terminal is always attached and ready:
CTS, DSR and DCD asserted, RI not), the DMA mode pins (FCR bit 3), the TX FIFO's
contents (it is always empty) and the factory test uses of writing LSR/MSR (ignored).
"""

from __future__ import annotations

from collections import deque
from typing import Callable, Deque, Optional, Sequence

from reference.pc.bus import ByteWide
from reference.pc.clock import Timer, VirtualClock

# Register offsets from the base port (datasheet Table II); DLAB = LCR bit 7.
RBR_THR = 0  # DLL while DLAB is set
IER = 1  # DLM while DLAB is set
IIR_FCR = 2
LCR = 3
MCR = 4
LSR = 5
MSR = 6
SCR = 7

# IER
ERBFI = 0x01  # received data available (and character timeout)
ETBEI = 0x02  # transmitter holding register empty
ELSI = 0x04  # receiver line status
EDSSI = 0x08  # modem status

# IIR: bit 0 is 0 while an interrupt is pending; bits 1-3 say which.
NO_INTERRUPT = 0x01
IIR_LINE_STATUS = 0x06
IIR_RECEIVED_DATA = 0x04
IIR_CHARACTER_TIMEOUT = 0x0C
IIR_THR_EMPTY = 0x02
IIR_MODEM_STATUS = 0x00
IIR_FIFOS_ENABLED = 0xC0

# FCR
FIFO_ENABLE = 0x01
RX_FIFO_RESET = 0x02
TX_FIFO_RESET = 0x04
TRIGGER_LEVELS = (1, 4, 8, 14)  # FCR bits 7-6

DLAB = 0x80  # LCR

# MCR
DTR = 0x01
RTS = 0x02
OUT1 = 0x04
OUT2 = 0x08
LOOP = 0x10

# LSR
DR = 0x01
OE = 0x02
THRE = 0x20
TEMT = 0x40

# MSR: deltas in bits 0-3, the lines in bits 4-7.
DCTS = 0x01
DDSR = 0x02
TERI = 0x04
DDCD = 0x08
CTS = 0x10
DSR = 0x20
RI = 0x40
DCD = 0x80

FIFO_DEPTH = 16
BAUD_BASE = 115200
"""The PC's 1.8432 MHz crystal over the 16x sampling clock: baud = 115200 / divisor."""
BITS_PER_CHARACTER = 10
"""Start bit, eight data bits, stop bit (8N1, what Linux's console programs)."""


class Uart16550(ByteWide):
    """One 16550A. ``irq(level)`` is called when the level on the bus changes;
    ``transmit(bytes)`` gets what the guest writes to THR."""

    MODEM_INPUTS = CTS | DSR | DCD
    """The modem lines outside loopback: a terminal attached and ready."""

    @staticmethod
    def ports(base: int) -> Sequence[int]:
        """The eight ports of a UART at ``base`` (0x3F8 COM1, 0x2F8 COM2...)."""
        return range(base, base + 8)

    def __init__(
        self,
        clock: VirtualClock,
        irq: Callable[[bool], None],
        transmit: Callable[[bytes], None],
    ) -> None:
        self.clock = clock
        self._irq = irq
        self._transmit = transmit
        self._host: Deque[int] = deque()
        """Host input not yet received: unbounded, never dropped."""
        self._arrival: Optional[Timer] = None
        self._line_free_at = 0
        """The cycle the last host byte finished arriving (the next starts after it)."""
        self._timeout: Optional[Timer] = None
        self._line = False
        self.divisor = 12  # 9600 baud until the guest programs it; MR leaves it alone
        self.scr = 0
        self.reset()

    def reset(self) -> None:
        """Master reset: the register values of datasheet Table IV. DLL/DLM and SCR keep
        their contents; host input still queued stays queued."""
        self.ier = 0
        self.lcr = 0
        self.mcr = 0
        self.fifo_enabled = False
        self.trigger = 1
        self._rx: Deque[int] = deque()
        self._rbr = 0
        self._overrun = False
        self._thre_pending = False
        self._rx_activity = self.clock.now()
        self._msr_deltas = 0
        self._lines = self._modem_lines()
        if self._timeout is not None:
            self._timeout.cancel()
            self._timeout = None
        self._update_irq()
        self._pace()

    # ----------------------------------------------------------------- host side

    def receive(self, data: bytes) -> None:
        """Host input (the harness typing on the console): queued, received in order at
        the programmed baud rate."""
        self._host.extend(data)
        self._pace()

    @property
    def pending_input(self) -> int:
        """Host bytes not yet in the receiver."""
        return len(self._host)

    def character_cycles(self) -> int:
        """Cycles one 10-bit character takes at 115200 / divisor baud (a divisor of 0,
        which the datasheet does not allow, counts as 1)."""
        return BITS_PER_CHARACTER * max(1, self.divisor) * self.clock.frequency // BAUD_BASE

    # ----------------------------------------------------------------- registers

    def read_byte(self, port: int) -> int:
        offset = port & 7  # COM ports sit on 8-port boundaries
        if offset == RBR_THR:
            return self.divisor & 0xFF if self.lcr & DLAB else self._read_rbr()
        if offset == IER:
            return self.divisor >> 8 if self.lcr & DLAB else self.ier
        if offset == IIR_FCR:
            return self._read_iir()
        if offset == LCR:
            return self.lcr
        if offset == MCR:
            return self.mcr
        if offset == LSR:
            return self._read_lsr()
        if offset == MSR:
            return self._read_msr()
        return self.scr

    def write_byte(self, port: int, value: int) -> None:
        offset = port & 7
        if offset == RBR_THR:
            if self.lcr & DLAB:
                self.divisor = (self.divisor & 0xFF00) | value
            else:
                self._write_thr(value)
        elif offset == IER:
            if self.lcr & DLAB:
                self.divisor = (self.divisor & 0x00FF) | (value << 8)
            else:
                self._write_ier(value)
        elif offset == IIR_FCR:
            self._write_fcr(value)
        elif offset == LCR:
            self.lcr = value
        elif offset == MCR:
            self._write_mcr(value)
        elif offset == SCR:
            self.scr = value
        # LSR and MSR writes are the factory's test path: ignored.

    def _read_rbr(self) -> int:
        if self._rx:
            self._rbr = self._rx.popleft()
            self._rx_touched()
            self._pace()  # there is room now
            self._update_irq()
        return self._rbr  # an empty receiver reads its last byte again

    def _read_iir(self) -> int:
        source = self._interrupt_source()
        if source == IIR_THR_EMPTY:  # reading IIR clears THRE when it is the source
            self._thre_pending = False
            self._update_irq()
        return source | (IIR_FIFOS_ENABLED if self.fifo_enabled else 0)

    def _read_lsr(self) -> int:
        value = THRE | TEMT  # transmit is instantaneous: always empty
        if self._rx:
            value |= DR
        if self._overrun:
            value |= OE
            self._overrun = False  # reading LSR clears the error bits
            self._update_irq()
        return value

    def _read_msr(self) -> int:
        value = self._msr_deltas | self._lines
        if self._msr_deltas:
            self._msr_deltas = 0  # reading MSR clears the deltas
            self._update_irq()
        return value

    def _write_thr(self, value: int) -> None:
        self._thre_pending = False  # writing THR clears THRE...
        if self.mcr & LOOP:
            self._receive_character(value)
        else:
            self._transmit(bytes((value,)))
        self._thre_pending = True  # ...and the byte has left: THR is empty again
        self._update_irq()

    def _write_ier(self, value: int) -> None:
        rising = value & ~self.ier & ETBEI
        self.ier = value & 0x0F
        if rising:  # THR is always empty: enabling ETBEI raises THRE at once
            self._thre_pending = True
        self._update_irq()

    def _write_fcr(self, value: int) -> None:
        enable = bool(value & FIFO_ENABLE)
        # switching modes empties both FIFOs; the TX FIFO is always empty here
        clear = enable != self.fifo_enabled or (enable and value & RX_FIFO_RESET)
        self.fifo_enabled = enable
        if enable:  # the other bits are programmed only together with FCR0
            self.trigger = TRIGGER_LEVELS[value >> 6]
        if clear:
            self._rx.clear()
            self._rx_touched()
            self._pace()
        self._update_irq()

    def _write_mcr(self, value: int) -> None:
        self.mcr = value & 0x1F
        lines = self._modem_lines()
        changed = lines ^ self._lines
        if changed & CTS:
            self._msr_deltas |= DCTS
        if changed & DSR:
            self._msr_deltas |= DDSR
        if changed & DCD:
            self._msr_deltas |= DDCD
        if changed & self._lines & RI:  # the trailing edge of RI
            self._msr_deltas |= TERI
        self._lines = lines
        self._pace()  # leaving loopback reconnects the host
        self._update_irq()

    def _modem_lines(self) -> int:
        if not self.mcr & LOOP:
            return self.MODEM_INPUTS
        lines = 0
        if self.mcr & RTS:
            lines |= CTS
        if self.mcr & DTR:
            lines |= DSR
        if self.mcr & OUT1:
            lines |= RI
        if self.mcr & OUT2:
            lines |= DCD
        return lines

    # ----------------------------------------------------------------- receiver

    def _capacity(self) -> int:
        return FIFO_DEPTH if self.fifo_enabled else 1

    def _receive_character(self, value: int, when: Optional[int] = None) -> None:
        """A character has been assembled in the receiver shift register (at cycle
        ``when``, by default now)."""
        if len(self._rx) < self._capacity():
            self._rx.append(value)
        else:
            self._overrun = True
            if not self.fifo_enabled:  # 16450 mode: the new character replaces RBR
                self._rx[-1] = value
        self._rx_touched(when)

    def _rx_touched(self, when: Optional[int] = None) -> None:
        """A character went into or out of the receiver: the timeout starts again."""
        self._rx_activity = self.clock.now() if when is None else when
        if self._timeout is not None:
            self._timeout.cancel()
            self._timeout = None
        if self.fifo_enabled and self._rx:
            deadline = self._rx_activity + 4 * self.character_cycles()
            self._timeout = self.clock.at(deadline, self._timeout_due)

    def _timeout_due(self) -> None:
        self._timeout = None
        if self.fifo_enabled and self._rx and not self._timed_out():
            # the divisor grew since the deadline was set: wait for the new one
            deadline = self._rx_activity + 4 * self.character_cycles()
            self._timeout = self.clock.at(deadline, self._timeout_due)
        self._update_irq()

    def _timed_out(self) -> bool:
        return self.clock.now() >= self._rx_activity + 4 * self.character_cycles()

    def _pace(self) -> None:
        """Start the next host byte on the line if one waits and the receiver listens."""
        if self._arrival is None and self._host and self._can_take_host_byte():
            start = max(self.clock.now(), self._line_free_at)
            self._schedule_arrival(start + self.character_cycles())

    def _schedule_arrival(self, when: int) -> None:
        def arrive() -> None:
            self._arrival = None
            at = when
            # Every byte due by now: one, unless the clock ran past several arrivals.
            # A full receiver holds the sender off until there is room again.
            while self._host and self._can_take_host_byte() and at <= self.clock.now():
                self._line_free_at = at
                self._receive_character(self._host.popleft(), at)
                at += self.character_cycles()
            self._update_irq()
            if self._host and self._can_take_host_byte():  # characters back to back
                self._schedule_arrival(at)

        self._arrival = self.clock.at(when, arrive)

    def _can_take_host_byte(self) -> bool:
        return not self.mcr & LOOP and len(self._rx) < self._capacity()

    # ----------------------------------------------------------------- interrupts

    def _interrupt_source(self) -> int:
        """The IIR identification of the highest-priority pending source."""
        if self.ier & ELSI and self._overrun:
            return IIR_LINE_STATUS
        if self.ier & ERBFI and self._rx:
            if not self.fifo_enabled or len(self._rx) >= self.trigger:
                return IIR_RECEIVED_DATA
            if self._timed_out():
                return IIR_CHARACTER_TIMEOUT
        if self.ier & ETBEI and self._thre_pending:
            return IIR_THR_EMPTY
        if self.ier & EDSSI and self._msr_deltas:
            return IIR_MODEM_STATUS
        return NO_INTERRUPT

    def _update_irq(self) -> None:
        """Drive the bus line: INTR gated by OUT2 (the OUT pins are inactive in loopback)."""
        level = (
            self.mcr & (OUT2 | LOOP) == OUT2 and self._interrupt_source() != NO_INTERRUPT
        )
        if level != self._line:
            self._line = level
            self._irq(level)

    @property
    def irq_level(self) -> bool:
        """The level this UART drives on its IRQ line now."""
        return self._line
