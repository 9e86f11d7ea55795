"""The i8042 against the IBM PC AT / PS/2 keyboard controller references (status bits,
command byte, commands 0x20/0x60/0xA7-0xAE/0xD0-0xD4/0xF0-0xFF) and against Linux 6.1's
probe (drivers/input/serio/i8042.c: i8042_controller_check, _selftest, _init,
i8042_check_aux, i8042_set_mux_mode; libps2 and atkbd/psmouse for what a device write
returns), with nothing plugged in. Expected values are written here from those sources."""

from __future__ import annotations

from typing import List, Optional

from reference.pc.devices.i8042 import I8042

DATA, COMMAND = 0x60, 0x64
OBF, IBF, SYS, CMD, UNLOCKED, AUX, TIMEOUT = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40


class Rig:
    def __init__(self) -> None:
        self.resets = 0
        self.irq1: List[bool] = []
        self.irq12: List[bool] = []
        self.kbc = I8042(reset=self._reset, irq1=self.irq1.append, irq12=self.irq12.append)

    def _reset(self) -> None:
        self.resets += 1

    def status(self) -> int:
        return self.kbc.port_read(COMMAND, 1)

    def read(self) -> int:
        return self.kbc.port_read(DATA, 1)

    def command(self, value: int) -> None:
        self.kbc.port_write(COMMAND, 1, value)

    def write(self, value: int) -> None:
        self.kbc.port_write(DATA, 1, value)

    def ask(self, command: int, data: Optional[int] = None) -> int:
        """A command answered with one byte: the byte (asserting it is there)."""
        self.command(command)
        if data is not None:
            self.write(data)
        assert self.status() & OBF
        return self.read()


def test_ports() -> None:
    assert tuple(I8042.PORTS) == (0x60, 0x64)


def test_power_on_status_and_command_byte() -> None:
    r = Rig()
    # Output buffer empty, input buffer empty, system flag (POST passed), not inhibited.
    assert r.status() == UNLOCKED | SYS
    assert r.ask(0x20) == 0x45  # translate, system flag, keyboard interrupt
    assert r.status() == UNLOCKED | SYS | CMD  # the last write went to 0x64


def test_command_byte_round_trip_and_data_flag() -> None:
    r = Rig()
    r.command(0x60)
    r.write(0x30)  # both ports disabled, no interrupts, system flag clear
    assert r.status() == UNLOCKED  # data written last; the system flag follows CTR bit 2
    assert r.ask(0x20) == 0x30


def test_controller_ram() -> None:
    r = Rig()
    r.command(0x65)
    r.write(0xA5)
    assert r.ask(0x25) == 0xA5
    assert r.ask(0x20) == 0x45  # byte 0 untouched


def test_self_test_and_interface_tests() -> None:
    r = Rig()
    assert r.ask(0xAA) == 0x55
    assert r.ask(0xAB) == 0x00
    assert r.ask(0xA9) == 0x00


def test_port_disable_enable_bits() -> None:
    r = Rig()
    r.command(0xAD)
    r.command(0xA7)
    assert r.ask(0x20) == 0x45 | 0x10 | 0x20
    r.command(0xAE)
    assert r.ask(0x20) == 0x45 | 0x20
    r.command(0xA8)
    assert r.ask(0x20) == 0x45


def test_loop_commands_echo_with_the_right_source() -> None:
    r = Rig()
    r.command(0xD2)
    r.write(0x12)
    assert r.status() & (OBF | AUX) == OBF
    assert r.read() == 0x12
    r.command(0xD3)
    r.write(0x34)
    assert r.status() & (OBF | AUX) == OBF | AUX
    assert r.read() == 0x34
    assert r.status() & OBF == 0


def test_nothing_attached_answers_fe_with_timeout() -> None:
    r = Rig()
    r.write(0xF2)  # to the keyboard: identify
    assert r.status() & (OBF | AUX | TIMEOUT) == OBF | TIMEOUT
    assert r.read() == 0xFE
    r.command(0xD4)
    r.write(0xF2)  # to the mouse
    assert r.status() & (OBF | AUX | TIMEOUT) == OBF | AUX | TIMEOUT
    assert r.read() == 0xFE
    assert r.status() & (OBF | TIMEOUT) == 0


def test_irq_lines_follow_obf_and_the_command_byte() -> None:
    r = Rig()
    r.write(0xFF)  # keyboard byte with CTR bit 0 set: IRQ 1
    assert r.irq1 == [True]
    r.read()
    assert r.irq1 == [True, False]
    r.command(0xD3)
    r.write(0x00)  # AUX byte, CTR bit 1 clear: no IRQ 12
    assert r.irq12 == []
    r.command(0x60)
    r.write(0x47)  # AUX interrupt on while the byte waits
    assert r.irq12 == [True]
    r.read()
    assert r.irq12 == [True, False]
    assert r.irq1 == [True, False]


def test_bytes_wait_their_turn() -> None:
    r = Rig()
    r.command(0xAA)
    r.command(0x20)
    assert [r.read(), r.read()] == [0x55, 0x45]


def test_pulse_output_port_bit_0_resets() -> None:
    r = Rig()
    r.command(0xFF)  # pulses nothing: Linux's "null command" after A20
    assert r.resets == 0
    r.command(0xFE)  # bit 0 low: reset
    assert r.resets == 1
    r.command(0xF0)  # bits 0-3 low: reset too
    assert r.resets == 2
    r.command(0xFD)
    assert r.resets == 2


def test_output_port_a20_and_reset_line() -> None:
    r = Rig()
    r.command(0xD1)
    r.write(0xDD)  # A20 off, reset line high
    assert not r.kbc.a20 and r.resets == 0
    assert r.ask(0xD0) & 0x03 == 0x01
    r.command(0xD1)
    r.write(0xDF)  # what Linux's i8042_platform_init writes
    assert r.kbc.a20 and r.resets == 0
    assert r.ask(0xD0) & 0x03 == 0x03
    r.command(0xD1)
    r.write(0xDE)  # bit 0 low: the CPU is reset
    assert r.resets == 1


def test_a_new_command_cancels_a_waiting_one() -> None:
    r = Rig()
    r.command(0x60)
    r.command(0xAE)
    r.write(0x00)  # now a keyboard byte, not a command byte
    assert r.read() == 0xFE
    assert r.ask(0x20) == 0x45


def test_wide_access_reads_ones_beyond_our_ports() -> None:
    r = Rig()
    assert r.kbc.port_read(COMMAND, 2) == 0xFF00 | UNLOCKED | SYS


# --------------------------------------------------------------------- Linux's probe


class LinuxI8042:
    """i8042.c's command protocol and probe, register access by register access."""

    CTL_TIMEOUT = 10000  # I8042_CTL_TIMEOUT polls of the status register

    def __init__(self, rig: Rig) -> None:
        self.r = rig
        self.ctr = 0

    def wait_read(self) -> bool:
        return any(self.r.status() & OBF for _ in range(self.CTL_TIMEOUT))

    def wait_write(self) -> bool:
        return any(not self.r.status() & IBF for _ in range(self.CTL_TIMEOUT))

    def flush(self) -> bool:
        count = 0
        while self.r.status() & OBF:
            count += 1
            if count > 16:
                return False
            self.r.read()
        return True

    def command(self, command: int, params: List[int]) -> Optional[List[int]]:
        if not self.wait_write():
            return None
        self.r.command(command & 0xFF)
        for i in range((command >> 12) & 0xF):
            if not self.wait_write():
                return None
            self.r.write(params[i])
        out = []
        for _ in range((command >> 8) & 0xF):
            if not self.wait_read():
                return None
            if command == 0x11D3 and not self.r.status() & AUX:
                return None
            out.append(self.r.read())
        return out

    def probe(self) -> dict:
        found = {}
        assert self.flush()  # i8042_controller_check
        assert self.command(0x01AA, []) == [0x55]  # i8042_controller_selftest
        ctr = [self.command(0x0120, [])[0] for _ in range(2)]  # i8042_controller_init
        assert ctr[0] == ctr[1]  # "stable CTR read"
        self.ctr = ctr[0]
        self.ctr = (self.ctr | 0x10) & ~0x01
        found["keylock"] = not self.r.status() & UNLOCKED
        assert self.command(0x1060, [self.ctr]) == []
        self.flush()
        found["aux"] = self.check_aux()
        found["mux"] = found["aux"] and self.set_mux_mode(True)
        return found

    def check_aux(self) -> bool:
        self.flush()
        param = self.command(0x11D3, [0x5A])
        if param != [0x5A]:
            test = self.command(0x01A9, [])
            if test is None or test[0] not in (0x00, 0xFA, 0xFF):
                return False
        for on in (False, True):  # i8042_toggle_aux
            assert self.command(0x00A8 if on else 0x00A7, []) == []
            assert bool(self.command(0x0120, [])[0] & 0x20) != on
        self.ctr = (self.ctr & ~0x20) | 0x02  # i8042_enable_aux_port
        assert self.command(0x1060, [self.ctr]) == []
        edges = len(self.r.irq12)
        assert self.command(0x10D3, [0xA5]) == []  # AUX_LOOP & 0xf0ff: no read back
        delivered = self.r.irq12[edges:] == [True]
        if delivered:  # i8042_aux_test_irq
            status, data = self.r.status(), self.r.read()
            delivered = status & AUX and data == 0xA5
        self.ctr = (self.ctr | 0x20) & ~0x02
        assert self.command(0x1060, [self.ctr]) == []
        return bool(delivered)

    def set_mux_mode(self, multiplex: bool) -> bool:
        self.flush()
        for val, must_match in ((0xF0, True), (0x56 if multiplex else 0xF6, True),
                                (0xA4 if multiplex else 0xA5, False)):
            param = self.command(0x11D3, [val])
            if param is None or (param[0] == val) != must_match:
                return False
        return True

    def ps2_command_fails(self, send: List[int]) -> bool:
        """libps2's ps2_do_sendbyte for the first byte: ACK 0xFA wanted; 0xFE (NAK) is
        retried once; a time-out byte aborts."""
        for _attempt in range(2):
            send(0xF2)  # ATKBD_CMD_GETID / PSMOUSE_CMD_GETID
            assert self.r.status() & OBF  # the answer is there at once: no 200 ms wait
            status, data = self.r.status(), self.r.read()
            if data == 0xFA:
                return False
            if status & TIMEOUT and status & AUX:
                return True  # psmouse: ps2_cmd_aborted
            if data != 0xFE:
                return True
        return True


def test_linux_probe_finds_a_controller_with_an_aux_port_and_no_mux() -> None:
    r = Rig()
    linux = LinuxI8042(r)
    found = linux.probe()
    assert found == {"keylock": False, "aux": True, "mux": False}
    assert r.status() & OBF == 0  # nothing left behind
    assert r.resets == 0


def test_linux_device_probes_end_at_once_with_nothing_found() -> None:
    r = Rig()
    linux = LinuxI8042(r)
    linux.probe()
    linux.ctr = (linux.ctr & ~0x30) | 0x03  # both ports enabled with interrupts
    assert linux.command(0x1060, [linux.ctr]) == []
    kbd_edges, aux_edges = len(r.irq1), len(r.irq12)
    assert linux.ps2_command_fails(r.write)  # atkbd: no keyboard
    assert linux.ps2_command_fails(lambda b: linux.command(0x10D4, [b]))  # psmouse
    assert r.status() & OBF == 0
    assert r.irq1[kbd_edges:] == [True, False, True, False]  # a NAK per attempt
    assert r.irq12[aux_edges:] == [True, False]  # the time-out aborts at once
