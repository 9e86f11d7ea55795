"""The reference PC: the reference CPU, RAM, the I/O bus with the legacy devices Linux
probes, and the virtual clock, run in batches between timer events.

What is there (each device one file in ``devices/``): an 8259A PIC pair on the CPU's
INTR line, an 8254 PIT (IRQ 0, channel 2 gated through port 0x61), an MC146818 RTC/CMOS
(IRQ 8; port 0x70 bit 7 masks NMI), a 16550A UART as COM1 (IRQ 4; the console), an i8042
with nothing plugged in (its pulse command resets the machine), PCI configuration
mechanism #1 with a host bridge, and ports 0x80/0x92. Physical memory is RAM from 0 and
the PCI hole from 0xC0000000 to 4 GiB, where reads give all ones and writes vanish as on
a PC (``memory_map``). No APIC: the CPU's CPUID says so, and both our kernels then run
on the PIC. No BIOS either: the Linux boot protocol's
32-bit entry needs none (``reference.pc.boot_protocol``).

Determinism: the only inputs are the image, the command line and the bytes typed on
the console; time is the virtual clock's. ``run`` stops with a ``Stop`` that says why
(a reset the guest asked for, a triple fault, a halt that can never end, a gap in the
emulator, an access outside RAM, or the instruction budget).
"""

from __future__ import annotations

from typing import Callable, Optional

from reference.cpu import CR0_RESET, Cpu
from reference.faults import Unimplemented
from reference.flags import IF
from reference.pc.bus import IoBus
from reference.pc.clock import VirtualClock
from reference.pc.devices.cmos import Cmos
from reference.pc.devices.i8042 import I8042
from reference.pc.devices.pci import PciHost
from reference.pc.devices.pic import PicPair
from reference.pc.devices.pit import Pit
from reference.pc.devices.system_ports import SystemPorts
from reference.pc.devices.uart import Uart16550
from reference.pc.memory_map import MemoryMap
from reference.step import StepResult, separate_for_jit
from reference.system.exceptions import SystemDelivery

MIB = 1 << 20
DEFAULT_MEMORY = 128 * MIB
"""What v86 and our QEMU runs give the guest."""
COM1 = 0x3F8
EPOCH = 1_767_225_600
"""The RTC's time at power-on: 2026-01-01 00:00:00 UTC, fixed so boots replay."""
BATCH = 200_000
"""Most instructions run between two looks at the host (console input, the budget)."""
COLLECT_EVERY = 20_000
"""Steps between two calls of ``Pc.collect`` inside a batch: at 200,000 a boot's
early batches took ~0.5 s each, far longer than the second process takes to make a block
(~2 ms)."""
PE = 1


class Stop:
    """Why ``Pc.run`` returned: ``reason`` is one of "reset", "shutdown", "halted",
    "gap", "unmapped", "budget", "stopped"; ``detail`` says more in words."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail

    def __repr__(self) -> str:
        return f"<Stop {self.reason}: {self.detail}>"


class Pc:
    """A PC around the reference CPU. ``transmit`` receives the console's bytes."""

    def __init__(self, memory: int = DEFAULT_MEMORY,
                 transmit: Callable[[bytes], None] = lambda data: None) -> None:
        # A boot runs thousands of instruction shapes, most of them a few hundred times:
        # under PyPy each semantics function is better compiled once on its own than
        # copied into a bridge of the step loop per shape (reference.step.separate_for_jit;
        # a tight loop like reference.benchmark's is faster with the copies, so only the
        # PC asks for this).
        separate_for_jit()
        self.memory = memory
        # called every COLLECT_EVERY instructions inside a batch (the PC's front end sets
        # it to collect blocks a second process made: reference.blocks.background)
        self.collect: Optional[Callable[[], None]] = None
        self.ram = MemoryMap(memory)
        cpu = self.cpu = Cpu(self.ram, "prot32")
        cpu.cr0 = CR0_RESET | PE  # reset value with PE: what a boot loader leaves
        cpu.delivery = SystemDelivery()
        self.clock = VirtualClock(cpu)
        self.bus = bus = IoBus()
        # IN/OUT give their width in bits (8, 16, 32); the bus counts bytes.
        cpu.io_in = lambda port, bits: bus.read(port, bits >> 3)
        cpu.io_out = lambda port, bits, value: bus.write(port, bits >> 3, value)
        self.stop_request: Optional[Stop] = None
        self.idle: Callable[[int], None] = lambda cycles: None
        """Called before halted cycles are skipped. The console runner paces them against
        the wall clock, so a guest waiting at its prompt does not spin a host core; no
        instruction count depends on it (only when typed input arrives)."""

        def intr(level: bool) -> None:
            cpu.intr_requested = level

        self.pic = pic = PicPair(output=intr)
        cpu.intr_controller = pic
        # FERR# (an x87 error with CR0.NE = 0) reaches the PIC as IRQ 13, as on a PC/AT.
        cpu.assert_ferr = lambda: (pic.set_irq(13, True), pic.set_irq(13, False))
        self.pit = Pit(self.clock, irq0=lambda level: pic.set_irq(0, level))
        self.cmos = Cmos(self.clock, irq8=lambda level: pic.set_irq(8, level), start=EPOCH,
                         memory_bytes=memory)
        self.uart = Uart16550(self.clock, irq=lambda level: pic.set_irq(4, level),
                              transmit=transmit)
        self.i8042 = I8042(reset=self.reset, irq1=lambda level: pic.set_irq(1, level),
                           irq12=lambda level: pic.set_irq(12, level))
        self.pci = PciHost()
        self.system_ports = SystemPorts(reset=self.reset)
        bus.claim(PicPair.PORTS, pic)
        bus.claim(Pit.PORTS, self.pit)
        bus.claim(Cmos.PORTS, self.cmos)
        bus.claim(Uart16550.ports(COM1), self.uart)
        bus.claim(I8042.PORTS, self.i8042)
        bus.claim(PciHost.PORTS, self.pci)
        bus.claim(SystemPorts.PORTS, self.system_ports)

    def reset(self) -> None:
        """The guest pulled the CPU's reset line (i8042 pulse, port 0x92): with
        ``panic=-1`` that is how a Linux panic or reboot ends, so the run stops there."""
        self.stop_request = Stop("reset", "the guest reset the machine")

    def stop(self, why: str = "") -> None:
        """Ask ``run`` to return at the next batch boundary (another thread may call it)."""
        self.stop_request = Stop("stopped", why)

    def run(self, budget: Optional[int] = None,
            between: Callable[[], None] = lambda: None) -> Stop:
        """Run until something stops the machine, or for ``budget`` instructions.
        ``between`` is called between batches (where the console is polled)."""
        cpu = self.cpu
        clock = self.clock
        end = None if budget is None else cpu.tsc + budget
        self.stop_request = None
        while self.stop_request is None:
            if end is not None and cpu.tsc >= end:
                return Stop("budget", f"{budget} instructions ran")
            event = clock.next_event()
            if cpu.halted and not self._interrupt_pending():
                if not cpu.flags.value & IF:
                    return Stop("halted", "HLT with interrupts disabled: nothing can wake "
                                f"the CPU (EIP {cpu.eip:#010x})")
                if event is None:
                    return Stop("halted", "HLT with no timer pending: nothing can wake the "
                                "CPU")
                target = event if end is None else min(event, end)
                self.idle(target - cpu.tsc)
                clock.skip_to(target)
                clock.run_due()
                continue
            batch = BATCH if event is None else max(1, min(BATCH, event - cpu.tsc))
            if end is not None:
                batch = min(batch, end - cpu.tsc)
            try:
                result = cpu.step() if cpu.halted else self._run_cpu(batch)
            except Unimplemented as gap:
                return Stop("gap", f"{gap} at EIP {cpu.eip:#010x}")
            clock.run_due()
            between()
            if result is not None and result.exception is not None:
                kind = result.exception.kind
                if kind == "shutdown":
                    return Stop("shutdown", "triple fault: " + self.describe_cpu())
                if kind == "unmapped":
                    return Stop("unmapped", f"access at {result.unmapped_address:#x}, outside "
                                f"the {self.memory >> 20} MiB of RAM and the PCI hole, at EIP "
                                f"{cpu.eip:#010x}")
        return self.stop_request

    def _run_cpu(self, batch: int) -> Optional[StepResult]:
        """``cpu.run(batch)``, in pieces of COLLECT_EVERY steps with ``collect`` called
        between them when it is set. The guest cannot tell: the pieces take as many steps
        as the one run would (``cpu.last_run_steps``: an interrupt delivered is a step
        that retires no instruction), and devices and timers are only looked at between
        batches, so the pieces meet the same events on the same instructions. Where
        batches end is not so innocent: an event that an instruction schedules in the
        middle of a batch is noticed at the batch's end. Two first versions of the block
        maker moved the tiny boot's prompt: shorter batches by 119,986 instructions,
        pieces counted by retired instructions by 69."""
        cpu = self.cpu
        if self.collect is None:
            return cpu.run(batch)
        while True:
            result = cpu.run(min(batch, COLLECT_EVERY))
            self.collect()
            batch -= cpu.last_run_steps
            if result is not None or batch <= 0:
                return result

    def _interrupt_pending(self) -> bool:
        cpu = self.cpu
        return cpu.nmi_requested or (cpu.intr_requested and bool(cpu.flags.value & IF))

    def describe_cpu(self) -> str:
        """The CPU state in one line, for error messages."""
        cpu = self.cpu
        names = ("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi")
        regs = " ".join(f"{n}={v:08x}" for n, v in zip(names, cpu.regs))
        sregs = " ".join(f"{n}={s:04x}" for n, s in zip(("es", "cs", "ss", "ds", "fs", "gs"),
                                                      cpu.sregs))
        return (f"eip={cpu.eip:08x} eflags={cpu.flags.value:08x} {regs} {sregs} "
                f"cr0={cpu.cr0:08x} cr2={cpu.cr2:08x} cr3={cpu.cr3:08x} cr4={cpu.cr4:08x} "
                f"cpl={cpu.cpl} instructions={cpu.tsc}")
