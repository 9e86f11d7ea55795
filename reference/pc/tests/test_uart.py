"""The 16550A against its datasheet (National Semiconductor PC16550D: register map
Table II, reset values and interrupt priorities Table IV) and against Linux's 8250 probe
(drivers/tty/serial/8250/8250_port.c in linux-source-6.1: autoconfig, autoconfig_16550a,
size_fifo, serial8250_do_startup, autoconfig_irq), replayed register access by register
access. Expected values are written here from those documents."""

from __future__ import annotations

from typing import List

from reference.pc.devices.uart import Uart16550
from reference.pc.tests.ticking import Ticker

BASE = 0x3F8
RBR, THR, DLL, IER, DLM, IIR, FCR, LCR, MCR, LSR, MSR, SCR = 0, 0, 0, 1, 1, 2, 2, 3, 4, 5, 6, 7

# One 10-bit character at 115200 baud is 86.806 us: 8680.56 cycles at 100 MHz, floored.
CHAR_115200 = 8680
# At 9600 baud (divisor 12) it is 1.0417 ms: 104166.7 cycles.
CHAR_9600 = 104166


class Rig:
    """A UART at COM1 with its IRQ line and the console it transmits to recorded."""

    def __init__(self) -> None:
        self.ticker = Ticker()
        self.edges: List[bool] = []
        self.sent = bytearray()
        self.uart = Uart16550(self.ticker.clock, irq=self.edges.append, transmit=self.sent.extend)

    def inb(self, offset: int) -> int:
        return self.uart.port_read(BASE + offset, 1)

    def outb(self, offset: int, value: int) -> None:
        self.uart.port_write(BASE + offset, 1, value)

    @property
    def irq(self) -> bool:
        return bool(self.edges) and self.edges[-1]

    def set_divisor(self, divisor: int) -> None:
        lcr = self.inb(LCR)
        self.outb(LCR, 0x80 | lcr)
        self.outb(DLL, divisor & 0xFF)
        self.outb(DLM, divisor >> 8)
        self.outb(LCR, lcr)


# --------------------------------------------------------------------- registers


def test_ports_are_base_to_base_plus_7() -> None:
    assert list(Uart16550.ports(0x3F8)) == [0x3F8 + i for i in range(8)]


def test_reset_values_of_table_iv() -> None:
    r = Rig()
    assert r.inb(IER) == 0x00
    assert r.inb(IIR) == 0x01  # no interrupt pending, FIFOs off
    assert r.inb(LCR) == 0x00
    assert r.inb(MCR) == 0x00
    assert r.inb(LSR) == 0x60  # THRE and TEMT: nothing to send
    # Modem lines of an attached terminal: DCD, DSR, CTS asserted, no deltas.
    assert r.inb(MSR) == 0xB0
    assert r.edges == []


def test_dlab_swaps_in_the_divisor_latch() -> None:
    r = Rig()
    r.outb(IER, 0x05)
    r.outb(LCR, 0x83)
    r.outb(DLL, 0x01)
    r.outb(DLM, 0x02)
    assert (r.inb(DLL), r.inb(DLM)) == (0x01, 0x02)
    assert r.uart.divisor == 0x0201
    r.outb(LCR, 0x03)
    assert r.inb(IER) == 0x05  # IER was not touched by the DLM write
    assert r.sent == b""  # nor THR by the DLL write


def test_ier_keeps_bits_0_to_3_and_mcr_bits_0_to_4() -> None:
    r = Rig()
    r.outb(IER, 0xFF)
    assert r.inb(IER) == 0x0F
    r.outb(MCR, 0xE3)
    assert r.inb(MCR) == 0x03


def test_lcr_and_scratch_are_read_write() -> None:
    r = Rig()
    r.outb(LCR, 0x5A)
    r.outb(SCR, 0xA5)
    assert (r.inb(LCR), r.inb(SCR)) == (0x5A, 0xA5)


def test_iir_bits_6_7_say_fifos_enabled_and_bit_5_stays_0() -> None:
    r = Rig()
    r.outb(FCR, 0x01)
    assert r.inb(IIR) == 0xC1
    r.outb(FCR, 0x21)  # the 16750's 64-byte bit: a 16550A ignores it
    assert r.inb(IIR) == 0xC1
    r.outb(FCR, 0x00)
    assert r.inb(IIR) == 0x01


def test_transmit_is_instantaneous() -> None:
    r = Rig()
    for byte in b"hi\n":
        r.outb(THR, byte)
        assert r.inb(LSR) & 0x60 == 0x60  # THRE and TEMT at once
    assert r.sent == b"hi\n"


# --------------------------------------------------------------------- interrupts


def test_thre_interrupt_set_cleared_by_iir_read_and_by_thr_write() -> None:
    r = Rig()
    r.outb(MCR, 0x08)  # OUT2: the PC lets the IRQ onto the bus
    r.outb(IER, 0x02)  # ETBEI with THR empty: THRE interrupt at once
    assert r.edges == [True]
    assert r.inb(IIR) == 0x02
    assert r.edges == [True, False]  # the IIR read that reported THRE cleared it
    assert r.inb(IIR) == 0x01
    r.outb(THR, ord("x"))  # written and sent at once: THR empty again
    assert r.edges == [True, False, True]
    assert r.inb(IIR) == 0x02


def test_ier_write_rearms_thre_as_linux_startup_expects() -> None:
    r = Rig()
    r.outb(MCR, 0x08)
    r.outb(IER, 0x02)
    assert r.inb(IIR) == 0x02
    r.outb(IER, 0x00)
    r.outb(IER, 0x02)
    assert r.inb(IIR) == 0x02
    assert r.edges == [True, False, True, False]


def test_out2_gates_the_irq_line_but_not_iir() -> None:
    r = Rig()
    r.outb(IER, 0x02)
    assert r.edges == []  # OUT2 clear: the line stays low
    r.outb(MCR, 0x08)
    assert r.edges == [True]
    r.outb(MCR, 0x00)
    assert r.edges == [True, False]
    assert r.inb(IIR) == 0x02  # the chip still has the interrupt pending


def test_received_data_outranks_thre_and_iir_read_does_not_clear_thre() -> None:
    r = Rig()
    r.set_divisor(1)
    r.outb(MCR, 0x08)
    r.outb(IER, 0x03)
    r.uart.receive(b"k")
    r.ticker.advance(CHAR_115200)
    assert r.inb(IIR) == 0x04  # received data available, priority 2
    assert r.inb(IIR) == 0x04  # THRE stays behind it, uncleared
    assert r.inb(RBR) == ord("k")
    assert r.inb(IIR) == 0x02  # now THRE, priority 3
    assert r.inb(IIR) == 0x01


def test_modem_status_interrupt_is_last_and_cleared_by_msr_read() -> None:
    r = Rig()
    r.outb(IER, 0x0A)  # ETBEI and EDSSI
    r.outb(MCR, 0x10)  # loopback: CTS, DSR, DCD all drop -> three deltas
    assert r.inb(IIR) == 0x02  # THRE first (priority 3 above 4)
    assert r.inb(IIR) == 0x00  # then modem status (IIR 0000: bit 0 clear = pending)
    assert r.inb(MSR) == 0x0B  # DCTS, DDSR, DDCD and no lines
    assert r.inb(IIR) == 0x01
    assert r.edges == []  # loopback forces OUT2 inactive: nothing on the bus


# --------------------------------------------------------------------- loopback


def test_loopback_receives_thr_and_does_not_transmit() -> None:
    r = Rig()
    r.outb(MCR, 0x10)
    r.outb(THR, 0x42)
    assert r.sent == b""
    assert r.inb(LSR) == 0x61  # DR, THRE, TEMT
    assert r.inb(RBR) == 0x42
    assert r.inb(LSR) == 0x60


def test_loopback_msr_follows_mcr() -> None:
    r = Rig()
    # MSR bit 4 CTS = RTS (MCR1), 5 DSR = DTR (MCR0), 6 RI = OUT1 (MCR2), 7 DCD = OUT2 (MCR3)
    for mcr, lines in ((0x10, 0x00), (0x11, 0x20), (0x12, 0x10), (0x14, 0x40), (0x18, 0x80),
                       (0x1A, 0x90), (0x1F, 0xF0)):
        r.outb(MCR, mcr)
        assert r.inb(MSR) & 0xF0 == lines, hex(mcr)


def test_loopback_ri_trailing_edge_sets_teri() -> None:
    r = Rig()
    r.outb(MCR, 0x14)  # RI rises; CTS, DSR and DCD drop (DCTS, DDSR, DDCD: 0x0B)
    assert r.inb(MSR) == 0x40 | 0x0B  # the leading edge of RI sets no delta
    r.outb(MCR, 0x10)  # RI falls: trailing edge
    assert r.inb(MSR) == 0x04


def test_fifo_overrun_keeps_the_fifo_and_sets_oe_once() -> None:
    r = Rig()
    r.outb(FCR, 0x07)
    r.outb(IER, 0x04)  # ELSI
    r.outb(MCR, 0x10)
    for byte in range(20):
        r.outb(THR, byte)
    assert r.inb(IIR) == 0xC6  # receiver line status
    assert r.inb(LSR) == 0x63  # DR, OE, THRE, TEMT
    assert r.inb(LSR) == 0x61  # OE is cleared by the read
    assert r.inb(IIR) == 0xC1
    received = []
    while r.inb(LSR) & 0x01:
        received.append(r.inb(RBR))
    assert received == list(range(16))  # the first 16; later ones were lost


def test_16450_mode_overrun_replaces_rbr() -> None:
    r = Rig()
    r.outb(MCR, 0x10)
    r.outb(THR, 1)
    r.outb(THR, 2)
    assert r.inb(LSR) == 0x63
    assert r.inb(RBR) == 2
    assert r.inb(LSR) == 0x60


def test_fifo_reset_empties_the_receiver() -> None:
    r = Rig()
    r.outb(FCR, 0x01)
    r.outb(MCR, 0x10)
    r.outb(THR, 7)
    r.outb(FCR, 0x03)
    assert r.inb(LSR) & 0x01 == 0
    r.outb(THR, 8)
    r.outb(FCR, 0x00)  # leaving FIFO mode empties it too
    assert r.inb(LSR) & 0x01 == 0


def test_fcr_without_bit_0_leaves_fifo_mode() -> None:
    r = Rig()
    r.outb(FCR, 0x01)
    r.outb(MCR, 0x10)
    r.outb(THR, 7)
    r.outb(FCR, 0xC2)  # FCR0 clear: the FIFOs go off (and empty), the rest is ignored
    assert r.inb(IIR) == 0x01
    assert r.inb(LSR) & 0x01 == 0


# --------------------------------------------------------------------- host input


def test_host_input_is_paced_at_the_baud_rate() -> None:
    r = Rig()
    r.set_divisor(1)
    r.outb(FCR, 0x01)
    r.uart.receive(b"ab")
    assert r.ticker.clock.next_event() == CHAR_115200  # a halted guest wakes here
    r.ticker.advance_to(CHAR_115200 - 1)
    assert r.inb(LSR) & 0x01 == 0
    r.ticker.advance_to(CHAR_115200)
    assert r.inb(LSR) & 0x01 == 1
    r.ticker.advance_to(2 * CHAR_115200 - 1)
    assert r.inb(RBR) == ord("a")
    assert r.inb(LSR) & 0x01 == 0
    r.ticker.advance_to(2 * CHAR_115200)
    assert r.inb(RBR) == ord("b")


def test_pace_follows_the_divisor() -> None:
    r = Rig()
    r.set_divisor(12)
    r.uart.receive(b"z")
    assert r.ticker.clock.next_event() == CHAR_9600


def test_a_long_paste_never_overflows() -> None:
    r = Rig()
    r.set_divisor(1)
    r.outb(FCR, 0x07)
    text = bytes(range(256)) * 2
    r.uart.receive(text)
    for _ in range(40):  # the guest is busy for 40 character times
        r.ticker.advance(CHAR_115200)
    assert r.uart.pending_input == len(text) - 16
    got = bytearray()
    while len(got) < len(text):
        lsr = r.inb(LSR)
        assert not lsr & 0x02  # never an overrun
        if lsr & 0x01:
            got.append(r.inb(RBR))
        else:
            r.ticker.advance(CHAR_115200)
    assert bytes(got) == text


def test_host_input_waits_while_in_loopback() -> None:
    r = Rig()
    r.set_divisor(1)
    r.outb(MCR, 0x10)
    r.uart.receive(b"q")
    r.ticker.advance(5 * CHAR_115200)
    assert r.inb(LSR) & 0x01 == 0
    r.outb(MCR, 0x00)
    r.ticker.advance(CHAR_115200)
    assert r.inb(RBR) == ord("q")


def test_trigger_level_and_character_timeout() -> None:
    r = Rig()
    r.set_divisor(1)
    r.outb(FCR, 0x81)  # FIFO on, RX trigger 8
    r.outb(IER, 0x01)
    r.outb(MCR, 0x08)
    r.uart.receive(b"1234567")
    r.ticker.advance(7 * CHAR_115200)
    assert r.inb(IIR) == 0xC1  # 7 < 8 and the line has just gone quiet
    r.ticker.advance(4 * CHAR_115200 - 1)
    assert r.inb(IIR) == 0xC1
    assert r.edges == []
    r.ticker.advance(1)  # four character times without input or reads
    assert r.edges == [True]
    assert r.inb(IIR) == 0xCC
    assert r.inb(RBR) == ord("1")  # a read clears the timeout and starts it again
    assert r.inb(IIR) == 0xC1
    assert r.edges == [True, False]
    r.ticker.advance(4 * CHAR_115200)
    assert r.inb(IIR) == 0xCC
    r.uart.receive(b"89")
    r.ticker.advance(CHAR_115200)
    assert r.inb(IIR) == 0xC1  # seven again: "1" was read
    r.ticker.advance(CHAR_115200)
    assert r.inb(IIR) == 0xC4  # eight bytes: the trigger level


def test_a_clock_run_late_gives_what_exact_events_give() -> None:
    for late_by in (4 * CHAR_115200 - 1, 4 * CHAR_115200):
        r = Rig()
        r.set_divisor(1)
        r.outb(FCR, 0x81)
        r.outb(IER, 0x01)
        r.outb(MCR, 0x08)
        r.uart.receive(b"abc")
        r.ticker.advance(3 * CHAR_115200 + late_by)  # one run_due for all three bytes
        timed_out = late_by == 4 * CHAR_115200  # silence since the third byte, not the first
        assert r.edges == ([True] if timed_out else [])
        assert r.inb(IIR) == (0xCC if timed_out else 0xC1)
        assert [r.inb(RBR) for _ in range(3)] == list(b"abc")


def test_16450_mode_interrupts_on_every_byte() -> None:
    r = Rig()
    r.set_divisor(1)
    r.outb(IER, 0x01)
    r.outb(MCR, 0x08)
    r.uart.receive(b"x")
    r.ticker.advance(CHAR_115200)
    assert r.edges == [True]
    assert r.inb(IIR) == 0x04


def test_reset_restores_table_iv_and_keeps_host_input() -> None:
    r = Rig()
    r.set_divisor(1)
    r.outb(FCR, 0xC1)
    r.outb(IER, 0x0F)
    r.outb(MCR, 0x1F)
    r.outb(LCR, 0x1B)
    r.uart.receive(b"w")
    r.uart.reset()
    assert [r.inb(i) for i in (IER, IIR, LCR, MCR, LSR)] == [0, 0x01, 0, 0, 0x60]
    r.ticker.advance(CHAR_115200)
    assert r.inb(RBR) == ord("w")


# --------------------------------------------------------------------- Linux's probe


class Linux8250:
    """The register accesses of Linux 6.1's 8250 driver for a PC COM port, in order."""

    def __init__(self, rig: Rig) -> None:
        self.r = rig
        self.bugs: List[str] = []

    def autoconfig(self) -> str:
        r = self.r
        scratch = r.inb(IER)
        r.outb(IER, 0)
        scratch2 = r.inb(IER) & 0x0F
        r.outb(IER, 0x0F)
        scratch3 = r.inb(IER) & 0x0F
        r.outb(IER, scratch)
        if scratch2 != 0 or scratch3 != 0x0F:
            return "none (IER test)"
        save_mcr = r.inb(MCR)
        save_lcr = r.inb(LCR)
        r.outb(MCR, 0x10 | 0x0A)  # loopback test
        status1 = r.inb(MSR) & 0xF0
        r.outb(MCR, save_mcr)
        if status1 != 0x90:
            return "none (loopback test)"
        r.outb(LCR, 0xBF)
        r.outb(2, 0)  # EFR
        r.outb(LCR, 0)
        r.outb(FCR, 0x01)
        scratch = r.inb(IIR)
        kind = {0: "8250/16450", 1: "unknown", 2: "16550"}.get(scratch >> 6)
        if kind is None:
            kind = self.autoconfig_16550a()
        r.outb(LCR, save_lcr)
        r.outb(MCR, save_mcr)
        self.clear_fifos()
        r.inb(RBR)
        r.outb(IER, 0)
        return kind

    def autoconfig_16550a(self) -> str:
        r = self.r
        r.outb(LCR, 0x80)
        if r.inb(2) == 0:
            return "16650 or FSL64 (EFR at LCR 0x80)"
        r.outb(LCR, 0xBF)
        if r.inb(2) == 0:
            return "EFR (16650V2/16C950...)"
        r.outb(LCR, 0)
        status1 = r.inb(MCR)
        r.outb(LCR, 0xE0)
        status2 = r.inb(2)  # EXCR1 on a NatSemi part
        if not ((status2 ^ status1) & 0x10):
            r.outb(LCR, 0)
            r.outb(MCR, status1 ^ 0x10)
            r.outb(LCR, 0xE0)
            status2 = r.inb(2)
            r.outb(LCR, 0)
            r.outb(MCR, status1)
            if (status2 ^ status1) & 0x10:
                return "NS16550A"
        r.outb(LCR, 0)
        r.outb(FCR, 0x21)
        status1 = r.inb(IIR) >> 5
        r.outb(FCR, 0x01)
        r.outb(LCR, 0x80)
        r.outb(FCR, 0x21)
        status2 = r.inb(IIR) >> 5
        r.outb(FCR, 0x01)
        r.outb(LCR, 0)
        if status1 == 6 and status2 == 7:
            return "16750"
        iersave = r.inb(IER)
        r.outb(IER, iersave & ~0x40)
        if not r.inb(IER) & 0x40:
            r.outb(IER, iersave | 0x40)
            if r.inb(IER) & 0x40:
                return "XScale"
        r.outb(IER, iersave)
        self.fifo_size = self.size_fifo()
        if self.fifo_size == 64:
            return "U6_16550A"
        return "16550A"

    def size_fifo(self) -> int:
        r = self.r
        old_lcr = r.inb(LCR)
        r.outb(LCR, 0)
        old_fcr = r.inb(FCR)  # reads IIR: what the driver does
        old_mcr = r.inb(MCR)
        r.outb(FCR, 0x07)
        r.outb(MCR, 0x10)
        r.outb(LCR, 0x80)
        old_dl = r.inb(DLL) | r.inb(DLM) << 8
        r.outb(DLL, 1)
        r.outb(DLM, 0)
        r.outb(LCR, 0x03)
        for count in range(256):
            r.outb(THR, count)
        r.ticker.advance(2_000_000)  # mdelay(20)
        count = 0
        while r.inb(LSR) & 0x01 and count < 256:
            r.inb(RBR)
            count += 1
        r.outb(FCR, old_fcr)
        r.outb(MCR, old_mcr)
        r.outb(LCR, 0x80)
        r.outb(DLL, old_dl & 0xFF)
        r.outb(DLM, old_dl >> 8)
        r.outb(LCR, old_lcr)
        return count

    def clear_fifos(self) -> None:
        self.r.outb(FCR, 0x01)
        self.r.outb(FCR, 0x07)
        self.r.outb(FCR, 0x00)

    def autoconfig_irq(self) -> bool:
        """True when exactly this UART's IRQ fired in the probe window."""
        r = self.r
        save_mcr = r.inb(MCR)
        save_ier = r.inb(IER)
        r.outb(MCR, 0x04 | 0x08)
        edges_before = len(r.edges)  # probe_irq_on
        r.outb(MCR, 0)
        r.ticker.advance(1000)  # udelay(10)
        r.outb(MCR, 0x01 | 0x02 | 0x08)
        r.outb(IER, 0x0F)
        r.inb(LSR)
        r.inb(RBR)
        r.inb(IIR)
        r.inb(MSR)
        r.outb(THR, 0xFF)
        r.ticker.advance(2000)  # udelay(20)
        fired = True in r.edges[edges_before:]  # probe_irq_off: an edge was latched
        r.outb(MCR, save_mcr)
        r.outb(IER, save_ier)
        return fired

    def startup(self) -> None:
        r = self.r
        self.clear_fifos()
        for reg in (LSR, RBR, IIR, MSR):
            r.inb(reg)
        assert r.inb(LSR) != 0xFF  # "LSR safety check"
        # THRE test (port->irq set, no UPF_NO_THRE_TEST)
        while not r.inb(LSR) & 0x20:  # wait_for_xmitr(UART_LSR_THRE)
            pass
        r.outb(IER, 0x02)
        iir1 = r.inb(IIR)
        r.outb(IER, 0)
        r.outb(IER, 0x02)
        iir = r.inb(IIR)
        r.outb(IER, 0)
        if not iir1 & 0x01 and iir & 0x01:
            self.bugs.append("UART_BUG_THRE")
        r.outb(LCR, 0x03)
        r.outb(MCR, 0x08 | 0x02 | 0x01)  # OUT2 ("most PC uarts need OUT2"), RTS, DTR
        # TXEN test
        r.outb(IER, 0x02)
        lsr = r.inb(LSR)
        iir = r.inb(IIR)
        r.outb(IER, 0)
        if lsr & 0x40 and iir & 0x01:
            self.bugs.append("UART_BUG_TXEN")
        for reg in (LSR, RBR, IIR, MSR):
            r.inb(reg)
        r.outb(IER, 0x04 | 0x01)  # up->ier = UART_IER_RLSI | UART_IER_RDI

    def set_termios_115200(self) -> None:
        r = self.r
        r.outb(LCR, 0x80 | 0x03)
        r.outb(DLL, 1)
        r.outb(DLM, 0)
        r.outb(LCR, 0x03)
        r.outb(FCR, 0x01 | 0x80)  # uart_config[PORT_16550A].fcr: FIFO, trigger 8


def test_linux_detects_a_16550a_with_a_16_byte_fifo() -> None:
    r = Rig()
    linux = Linux8250(r)
    assert linux.autoconfig() == "16550A"
    assert linux.fifo_size == 16
    assert r.sent == b""  # size_fifo's 256 bytes stayed in loopback
    assert r.inb(IER) == 0 and r.inb(LCR) == 0 and r.inb(MCR) == 0


def test_linux_finds_the_irq_and_no_bugs() -> None:
    r = Rig()
    linux = Linux8250(r)
    linux.autoconfig()
    assert linux.autoconfig_irq()
    linux.startup()
    assert linux.bugs == []
    assert not r.irq  # nothing left pending after the probe
    linux.set_termios_115200()
    # The console at work: a typed line raises the character timeout interrupt.
    r.uart.receive(b"ls\n")
    start = r.ticker.cpu.tsc
    r.ticker.advance_to(r.ticker.clock.next_event())
    assert r.ticker.cpu.tsc == start + CHAR_115200
    while r.ticker.clock.next_event() is not None and not r.irq:
        r.ticker.advance_to(r.ticker.clock.next_event())
    assert r.irq
    assert r.ticker.cpu.tsc == start + 3 * CHAR_115200 + 4 * CHAR_115200
    assert r.inb(IIR) == 0xCC
    line = bytearray()
    while r.inb(LSR) & 0x01:
        line.append(r.inb(RBR))
    assert line == b"ls\n"
    assert r.inb(IIR) == 0xC1 and not r.irq
    r.outb(THR, ord("$"))
    assert r.sent == b"\xff$"  # autoconfig_irq's 0xFF went out too, as on hardware


def test_console_interrupt_reaches_the_pic_as_irq4() -> None:
    """Through the 8259A pair on the I/O bus, programmed as Linux does (IRQ0 at vector
    0x30, ISA_IRQ_VECTOR): a typed character ends as vector 0x34."""
    from reference.pc.bus import IoBus
    from reference.pc.devices.pic import PicPair

    ticker = Ticker()
    intr: List[bool] = []
    pic = PicPair(output=intr.append)
    sent = bytearray()
    uart = Uart16550(ticker.clock, irq=lambda level: pic.set_irq(4, level), transmit=sent.extend)
    bus = IoBus()
    bus.claim(PicPair.PORTS, pic)
    bus.claim(Uart16550.ports(BASE), uart)
    for port, value in ((0x20, 0x11), (0x21, 0x30), (0x21, 0x04), (0x21, 0x01),
                        (0xA0, 0x11), (0xA1, 0x38), (0xA1, 0x02), (0xA1, 0x01),
                        (0x21, 0xEF), (0xA1, 0xFF),  # only IRQ4 unmasked
                        (BASE + LCR, 0x83), (BASE + DLL, 1), (BASE + DLM, 0),
                        (BASE + LCR, 0x03), (BASE + FCR, 0x81), (BASE + IER, 0x05)):
        bus.write(port, 1, value)
    uart.receive(b"x")
    ticker.advance(5 * CHAR_115200)  # one character, then four of silence
    assert intr == []  # MCR OUT2 is still clear: the PIC sees nothing
    bus.write(BASE + MCR, 1, 0x0B)  # DTR, RTS, OUT2
    assert intr == [True]
    assert pic.acknowledge() == 0x34
    assert bus.read(BASE + IIR, 1) == 0xCC
    assert bus.read(BASE + RBR, 1) == ord("x")
    assert bus.read(BASE + IIR, 1) == 0xC1
