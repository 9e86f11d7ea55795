"""The PC's devices, one datasheet each: 8259A PIC pair, 8254 PIT, MC146818 CMOS/RTC,
16550A UART, i8042, PCI configuration mechanism #1. Each is a ``PortDevice``
(``reference.pc.bus``); time comes only from ``reference.pc.clock.VirtualClock``.
"""
