"""Intel 8259A programmable interrupt controllers: the PC/AT's master + slave pair.

The master sits at ports 0x20/0x21 and takes IRQ0-7, the slave at 0xA0/0xA1 takes IRQ8-15
and drives the master's IR2. The PIIX-style edge/level control registers (ELCR) sit at
0x4D0 (IRQ0-7) and 0x4D1 (IRQ8-15). Section names below are the datasheet's ("8259A
Programmable Interrupt Controller", Intel 231468).

Modelled:
  - ICW1-ICW4: LTIM (level mode for all eight inputs), SNGL, IC4; ICW2 vector base; ICW3
    cascade; ICW4 AEOI, SFNM (special fully nested mode). The ICW1 reset of the datasheet's
    "Initialization Command Words" (mask cleared, IR7 lowest priority, special mask mode
    off, status read = IRR, ICW4 functions zero when IC4 = 0); IRR and ISR are cleared too.
  - OCW1 mask; OCW2 non-specific / specific EOI, rotate on (non-)specific EOI, set
    priority, rotate in AEOI; OCW3 read IRR/ISR, poll command, special mask mode.
  - Edge mode: a rising edge of an IR line latches IRR; the bit stays until acknowledged
    (a line that falls before INTA still interrupts, as QEMU and Bochs behave; the
    datasheet's "must stay high until INTA" is not required). Level mode (LTIM or ELCR):
    IRR follows the line, so a request that drops before INTA gives the spurious IR7.
  - INTA (``acknowledge``): highest-priority request -> ISR (unless AEOI), IRR cleared in
    edge mode, cascade through the slave; spurious IRQ7 (master) / IRQ15 (slave: master's
    ISR2 is set, the slave's ISR is not) when no request is left.
  - The master's cascade input (IR2 with ICW3 bit 2) follows the slave's INT level, not its
    edges, so a second slave request waiting behind an acknowledged one is never lost.
  - ELCR bits for IRQ0, 1, 2, 8 and 13 are hard-wired to edge (read as 0), as on PIIX.
Not modelled: 8080/8085 mode (ICW4 uPM = 0 still returns an 8086 vector), buffered mode
(ICW4 BUF/M/S), the ICW1 address interval (ADI), and the timing of the INTA pulses.
"""

from __future__ import annotations

from typing import Callable, Optional

from reference.pc.bus import ByteWide

SPURIOUS_IR = 7
"""The IR the 8259A reports when INTA finds no request (datasheet: "default IR7")."""


def _bit(ir: int) -> int:
    return 1 << ir


class Pic8259:
    """One 8259A: registers and priority logic; no ports (``PicPair`` decodes those)."""

    def __init__(self, name: str, on_change: Callable[[], None]) -> None:
        self.name = name
        self.is_master = name == "master"
        self._on_change = on_change  # the pair re-evaluates INT after every change
        self.irr = 0
        self.isr = 0
        self.imr = 0xFF  # masked until the BIOS/kernel initialises it
        self.lines = 0  # current IR input levels (for edge detection)
        self.elcr = 0  # per-IR level triggering from the ELCR
        self.vector_base = 0x08 if name == "master" else 0x70  # the PC BIOS's values
        self.ltim = False
        self.single = False
        self.cascade = 0x04 if name == "master" else 0x02  # ICW3
        self.auto_eoi = False
        self.rotate_on_aeoi = False
        self.special_fully_nested = False
        self.special_mask = False
        self.lowest = 7  # the IR with the lowest priority (IR7 after ICW1)
        self.read_isr = False
        self.poll = False
        self._icw_next = 0  # 0: operating; 2, 3, 4: the ICW expected next
        self._icw4_expected = False

    # --- the request side --------------------------------------------------------------

    def level_triggered(self, ir: int) -> bool:
        return self.ltim or bool(self.elcr & _bit(ir))

    def set_line(self, ir: int, level: bool) -> None:
        """An IR input changed level: latch IRR on a rising edge (edge mode) or follow the
        line (level mode)."""
        bit = _bit(ir)
        was = bool(self.lines & bit)
        self.lines = self.lines | bit if level else self.lines & ~bit
        if self.level_triggered(ir):
            self.irr = self.irr | bit if level else self.irr & ~bit
        elif level and not was:
            self.irr |= bit
        self._on_change()

    # --- priority resolution ----------------------------------------------------------

    def _highest(self, bits: int) -> Optional[int]:
        """The highest-priority IR set in ``bits``, or None."""
        for offset in range(8):
            ir = (self.lowest + 1 + offset) & 7
            if bits & _bit(ir):
                return ir
        return None

    def _rank(self, ir: int) -> int:
        """0 for the highest-priority IR, 7 for the lowest."""
        return (ir - self.lowest - 1) & 7

    def pending(self) -> Optional[int]:
        """The IR the 8259A would interrupt for now: an unmasked request of higher priority
        than everything in service ("Priority Resolver"), or None."""
        requests = self.irr & ~self.imr
        request = self._highest(requests)
        if request is None:
            return None
        blocking = self.isr
        if self.special_mask:  # a level masked while in service stops inhibiting the others
            blocking &= ~self.imr
        if self.special_fully_nested and self.is_master and not self.single:
            # A slave's request of higher priority than the one in service must pass
            # through the cascade IR that is itself in service.
            blocking &= ~(self.cascade & requests)
        in_service = self._highest(blocking)
        if in_service is not None and self._rank(request) >= self._rank(in_service):
            return None
        return request

    def int_output(self) -> bool:
        return self.pending() is not None

    # --- acknowledge and end of interrupt ---------------------------------------------

    def accept(self, ir: int) -> None:
        """INTA for ``ir``: set ISR (or AEOI), clear an edge request."""
        bit = _bit(ir)
        if not self.level_triggered(ir):
            self.irr &= ~bit
        if self.auto_eoi:
            if self.rotate_on_aeoi:
                self.lowest = ir
        else:
            self.isr |= bit

    def _eoi(self, ir: Optional[int], rotate: bool) -> None:
        if ir is None:
            return
        self.isr &= ~_bit(ir)
        if rotate:
            self.lowest = ir

    def _poll(self) -> int:
        """OCW3 poll: the read that follows is an INTA: 0x80 | IR, or 0 for no request."""
        self.poll = False
        ir = self.pending()
        if ir is None:
            return 0x00
        self.accept(ir)
        self._on_change()
        return 0x80 | ir

    # --- the two ports of one chip ----------------------------------------------------

    def read(self, a0: int) -> int:
        if self.poll:
            return self._poll()
        if a0:
            return self.imr
        return self.isr if self.read_isr else self.irr

    def write(self, a0: int, value: int) -> None:
        if a0 == 0 and value & 0x10:
            self._icw1(value)
        elif a0 == 0 and value & 0x08:
            self._ocw3(value)
        elif a0 == 0:
            self._ocw2(value)
        elif self._icw_next:
            self._icw(value)
        else:
            self.imr = value  # OCW1
        self._on_change()

    def _icw1(self, value: int) -> None:
        self.ltim = bool(value & 0x08)
        self.single = bool(value & 0x02)
        self._icw4_expected = bool(value & 0x01)
        self.imr = 0
        self.isr = 0
        self.irr = self.lines if self.ltim else 0  # the edge sense latch is reset
        self.irr |= self.lines & self.elcr
        self.lowest = 7
        self.special_mask = False
        self.read_isr = False
        self.poll = False
        if not self._icw4_expected:
            self.auto_eoi = self.rotate_on_aeoi = self.special_fully_nested = False
        self._icw_next = 2

    def _icw(self, value: int) -> None:
        if self._icw_next == 2:
            self.vector_base = value & 0xF8
            self._icw_next = 4 if self.single else 3
        elif self._icw_next == 3:
            self.cascade = value
            self._icw_next = 4
        else:
            self.auto_eoi = bool(value & 0x02)
            self.special_fully_nested = bool(value & 0x10)
            self._icw_next = 0
            return
        if self._icw_next == 4 and not self._icw4_expected:
            self._icw_next = 0

    def _ocw2(self, value: int) -> None:
        command, level = value >> 5, value & 7
        if command == 0b001:  # non-specific EOI
            self._eoi(self._highest(self.isr), rotate=False)
        elif command == 0b011:  # specific EOI
            self._eoi(level, rotate=False)
        elif command == 0b101:  # rotate on non-specific EOI
            self._eoi(self._highest(self.isr), rotate=True)
        elif command == 0b111:  # rotate on specific EOI
            self._eoi(level, rotate=True)
        elif command == 0b110:  # set priority
            self.lowest = level
        elif command in (0b100, 0b000):  # set / clear rotate in AEOI mode
            self.rotate_on_aeoi = command == 0b100
        # 0b010: no operation

    def _ocw3(self, value: int) -> None:
        if value & 0x40:  # ESMM: SMM selects
            self.special_mask = bool(value & 0x20)
        if value & 0x04:
            self.poll = True
        if value & 0x02:  # RR: RIS selects
            self.read_isr = bool(value & 0x01)


class PicPair(ByteWide):
    """The PC/AT's two cascaded 8259As (slave on master IR2) and the ELCR."""

    PORTS = (0x20, 0x21, 0xA0, 0xA1, 0x4D0, 0x4D1)
    ELCR_WRITABLE = (0xF8, 0xDE)
    """Master: IRQ0-2 are edge-only; slave: IRQ8 and IRQ13 are edge-only (PIIX ELCR)."""

    def __init__(self, output: Callable[[bool], None]) -> None:
        self._output = output
        self._level = False
        self.master = Pic8259("master", self._update)
        self.slave = Pic8259("slave", self._update)

    # --- what the machine calls ---------------------------------------------------------

    def set_irq(self, irq: int, level: bool) -> None:
        """IRQ line ``irq`` (0-15) is now at ``level``. IRQ2 is the cascade on the PC (the
        ISA bus's IRQ2 pin arrives as IRQ9), so devices never drive it."""
        if irq < 8:
            self.master.set_line(irq, level)
        else:
            self.slave.set_line(irq - 8, level)

    def acknowledge(self) -> int:
        """The CPU's INTA cycle: the vector of the request being serviced."""
        master, slave = self.master, self.slave
        ir = master.pending()
        if ir is None:
            vector = master.vector_base + SPURIOUS_IR
        elif self._cascaded(ir):
            master.accept(ir)
            slave_ir = slave.pending()
            if slave_ir is None:
                vector = slave.vector_base + SPURIOUS_IR
            else:
                slave.accept(slave_ir)
                vector = slave.vector_base + slave_ir
        else:
            master.accept(ir)
            vector = master.vector_base + ir
        self._update()
        return vector

    @property
    def level(self) -> bool:
        """The master's INT output."""
        return self._level

    # --- ports --------------------------------------------------------------------------

    def read_byte(self, port: int) -> int:
        if port in (0x4D0, 0x4D1):
            return self._chip(port).elcr
        return self._chip(port).read(port & 1)

    def write_byte(self, port: int, value: int) -> None:
        if port in (0x4D0, 0x4D1):
            chip = self._chip(port)
            chip.elcr = value & self.ELCR_WRITABLE[port & 1]
            chip.irr = (chip.irr & ~chip.elcr) | (chip.lines & chip.elcr)
            self._update()
        else:
            self._chip(port).write(port & 1, value)

    def _chip(self, port: int) -> Pic8259:
        if port in (0x20, 0x21) or port == 0x4D0:
            return self.master
        return self.slave

    def _cascaded(self, ir: int) -> bool:
        return not self.master.single and bool(self.master.cascade & _bit(ir))

    def _update(self) -> None:
        """Carry the slave's INT to the master's cascade IR, then the master's INT out."""
        master, slave = self.master, self.slave
        slave_int = slave.int_output()
        for ir in range(8):
            if self._cascaded(ir):
                bit = _bit(ir)
                master.lines = master.lines | bit if slave_int else master.lines & ~bit
                master.irr = master.irr | bit if slave_int else master.irr & ~bit
        level = master.int_output()
        if level != self._level:
            self._level = level
            self._output(level)
