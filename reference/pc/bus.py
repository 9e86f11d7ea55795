"""The PC's I/O port space: which device answers which port.

On a PC an I/O read from a port no device decodes floats the data bus high, so it reads
as all ones; a write to it goes nowhere. The bus keeps that behaviour but also remembers
each unclaimed port it saw, so a boot report can say which accesses hit nothing (a device
the reference lacks is then visible, not a silent 0xFF).
"""

from __future__ import annotations

from typing import Dict, Iterable, Set

try:  # Python 3.9 has Protocol in typing
    from typing import Protocol
except ImportError:  # pragma: no cover
    Protocol = object  # type: ignore


class PortDevice(Protocol):
    """What a device on the bus provides. ``size`` is the access width in bytes (1, 2
    or 4); a device decodes the widths it supports, see ``ByteWide``."""

    def port_read(self, port: int, size: int) -> int: ...

    def port_write(self, port: int, size: int, value: int) -> None: ...


class ByteWide:
    """Mixin for 8-bit ISA devices: a 16- or 32-bit access becomes byte accesses to
    consecutive ports, lowest first (what the ISA bus cycle splitter does)."""

    def port_read(self, port: int, size: int) -> int:
        value = 0
        for i in range(size):
            value |= (self.read_byte(port + i) & 0xFF) << (8 * i)
        return value

    def port_write(self, port: int, size: int, value: int) -> None:
        for i in range(size):
            self.write_byte(port + i, (value >> (8 * i)) & 0xFF)

    def read_byte(self, port: int) -> int:  # pragma: no cover - every device overrides
        raise NotImplementedError

    def write_byte(self, port: int, value: int) -> None:  # pragma: no cover
        raise NotImplementedError


class IoBus:
    """Ports 0..0xFFFF; ``claim`` gives ports to a device. ``read``/``write`` are what
    the CPU's IN/OUT call (``cpu.io_in``/``cpu.io_out``)."""

    def __init__(self) -> None:
        self._devices: Dict[int, PortDevice] = {}
        self.unclaimed: Set[int] = set()
        """Ports read or written with no device behind them (for the boot report)."""

    def claim(self, ports: Iterable[int], device: PortDevice) -> None:
        for port in ports:
            if port in self._devices:
                raise ValueError(f"port {port:#x} is already claimed by {self._devices[port]!r}")
            self._devices[port] = device

    def read(self, port: int, size: int) -> int:
        device = self._devices.get(port)
        if device is None:
            self.unclaimed.add(port)
            return (1 << (8 * size)) - 1
        return device.port_read(port, size) & ((1 << (8 * size)) - 1)

    def write(self, port: int, size: int, value: int) -> None:
        device = self._devices.get(port)
        if device is None:
            self.unclaimed.add(port)
            return
        device.port_write(port, size, value)
