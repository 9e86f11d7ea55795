"""The PC as a whole (``reference.pc.machine.Pc``) running tiny guests written here in
machine code: the timer interrupt through the 8259A and the 8254 on the virtual clock,
replay, the console, every way ``run`` stops, and ``python -m reference.pc``.

Each guest runs in flat protected mode as the boot protocol leaves it (CS 0x10, data
0x18), with a GDT and IDT built from the SDM's figures by ``reference.tests.system_tables``.
Expected counts come from the datasheets' arithmetic written in each test: the 8254's
input clock is 1,193,182 Hz and the virtual CPU retires 100,000,000 instructions a second.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, List, Optional

import pytest

from reference.pc import boot_protocol as bp
from reference.pc.machine import Pc, Stop
from reference.pc.tests.test_boot_protocol import fake_bzimage
from reference.tests.system_tables import (
    CODE_XR,
    DATA_RW,
    INT_GATE32,
    descriptor,
    gate,
    table_bytes,
)

RAM = 2 << 20         # 2 MiB: small enough to hash, past 1 MiB like a real PC
CODE = 0x1000         # the guest's program
HANDLER = 0x1100      # the IRQ 0 handler
DATA = 0x2000         # the guest's variables
IDT = 0x7000
STACK_TOP = 0x9000
IRQ0_VECTOR = 0x20    # where ICW2 below puts the master 8259A's IRQ 0
PIT_HZ = 1_193_182    # 8254 input clock on the PC (datasheet, IBM PC/AT reference)
CPU_HZ = 100_000_000  # virtual instructions per second (reference/pc/clock.py)
REPO = Path(__file__).resolve().parents[3]


def le32(value: int) -> bytes:
    return struct.pack("<I", value)


def pit_program(count: int) -> bytes:
    """Program the master 8259A (ICW1-4, only IRQ 0 unmasked) and 8254 counter 0 in mode
    2 (rate generator) with ``count``, then STI."""
    return bytes([
        0xB0, 0x11, 0xE6, 0x20,  # mov al, 11h; out 20h, al   ICW1: edge, cascade, ICW4 follows
        0xB0, 0x20, 0xE6, 0x21,  # mov al, 20h; out 21h, al   ICW2: IRQ 0-7 -> vectors 20h-27h
        0xB0, 0x04, 0xE6, 0x21,  # mov al, 04h; out 21h, al   ICW3: a slave on IRQ 2
        0xB0, 0x01, 0xE6, 0x21,  # mov al, 01h; out 21h, al   ICW4: 8086 mode, normal EOI
        0xB0, 0xFE, 0xE6, 0x21,  # mov al, FEh; out 21h, al   OCW1: mask all but IRQ 0
        0xB0, 0x34, 0xE6, 0x43,  # mov al, 34h; out 43h, al   counter 0, LSB then MSB, mode 2
        0xB0, count & 0xFF, 0xE6, 0x40,  # mov al, lsb; out 40h, al
        0xB0, count >> 8, 0xE6, 0x40,    # mov al, msb; out 40h, al
        0xFB,                    # sti
    ])


HALT_LOOP = bytes([
    0xF4,        # loop: hlt
    0xEB, 0xFD,  #       jmp loop (EIP after it - 3)
])

COUNTING_HANDLER = bytes([
    0xFF, 0x05, *le32(DATA),  # inc dword [DATA]        one more IRQ 0
    0x50,                     # push eax
    0xB0, 0x20, 0xE6, 0x20,   # mov al, 20h; out 20h, al  OCW2: non-specific EOI
    0x58,                     # pop eax
    0xCF,                     # iretd
])


def machine(code: bytes, handler: bytes = b"",
            transmit: Callable[[bytes], None] = lambda data: None) -> Pc:
    """A Pc with ``code`` at CODE entered as the boot protocol enters a kernel, ESP at
    STACK_TOP, and an IDT whose only present gate is IRQ 0's, to ``handler``."""
    pc = Pc(RAM, transmit=transmit)
    ram = pc.cpu.mem
    ram.write_bytes(bp.GDT, table_bytes({
        bp.BOOT_CS: descriptor(0, 0xFFFFF, CODE_XR, g=1),
        bp.BOOT_DS: descriptor(0, 0xFFFFF, DATA_RW, g=1),
    }))
    bp.enter_protected_mode(pc.cpu, CODE)
    ram.write_bytes(CODE, code)
    ram.write_bytes(HANDLER, handler)
    ram.write_bytes(IDT + 8 * IRQ0_VECTOR, gate(bp.BOOT_CS, HANDLER, INT_GATE32))
    pc.cpu.idtr = (IDT, 8 * 256 - 1)
    pc.cpu.set_reg("esp", STACK_TOP)
    return pc


def dword(pc: Pc, address: int) -> int:
    return pc.cpu.mem.read_int(address, 4)


# (a) the timer ----------------------------------------------------------------------

@pytest.mark.parametrize("count", [1193, 5000, 65535])
def test_irq0_arrives_at_the_pit_rate_and_idle_time_is_skipped(count):
    pc = machine(pit_program(count) + HALT_LOOP, COUNTING_HANDLER)
    budget = 60_000_000  # 0.6 s of virtual time
    stop = pc.run(budget)
    assert stop.reason == "budget"
    cycles = pc.cpu.tsc
    assert cycles == budget
    period = count * CPU_HZ / PIT_HZ  # cycles between two rising edges of OUT0
    interrupts = dword(pc, DATA)
    assert abs(interrupts - cycles / period) <= 1, (interrupts, cycles / period)
    # Each interrupt costs HLT, JMP and the handler's 6 instructions; setup is 17.
    retired = cycles - pc.clock.skipped
    assert retired <= 17 + 8 * (interrupts + 1)
    assert pc.clock.skipped >= cycles - retired and pc.clock.skipped > 0.99 * cycles


# (b) replay -------------------------------------------------------------------------

# A loop that samples the timer between halts: counter 0's latched count, then RDTSC,
# summed into memory. Any host time leaking into the clock would change the sums.
SAMPLING_LOOP = bytes([
    0xB0, 0x00, 0xE6, 0x43,        # loop: mov al, 0; out 43h, al   latch counter 0
    0xE4, 0x40, 0x88, 0xC1,        # in al, 40h; mov cl, al          LSB
    0xE4, 0x40, 0x88, 0xC5,        # in al, 40h; mov ch, al          MSB
    0x01, 0x0D, *le32(DATA + 4),   # add [DATA+4], ecx
    0x0F, 0x31,                    # rdtsc
    0x01, 0x05, *le32(DATA + 8),   # add [DATA+8], eax
    0xF4,                          # hlt
    0xEB, 0xE3,                    # jmp loop (29 bytes back: -29 = E3)
])


def run_sampler() -> Pc:
    pc = machine(pit_program(3000) + SAMPLING_LOOP, COUNTING_HANDLER)
    assert pc.run(20_000_000).reason == "budget"
    return pc


def test_two_machines_replay_the_same_program_exactly():
    first, second = run_sampler(), run_sampler()
    assert dword(first, DATA) > 50  # it did take interrupts and sample between them
    assert dword(first, DATA + 4) != 0
    assert first.cpu.tsc == second.cpu.tsc
    assert first.clock.skipped == second.clock.skipped
    assert first.cpu.regs == second.cpu.regs
    assert first.cpu.eip == second.cpu.eip
    assert first.cpu.flags.value == second.cpu.flags.value
    digest = [hashlib.sha256(bytes(pc.cpu.mem.ram)).hexdigest() for pc in (first, second)]
    assert digest[0] == digest[1]


# (c) the console --------------------------------------------------------------------

LSR = 0x3FD
THR = RBR = 0x3F8


def writer(message: int) -> bytes:
    """Write the NUL-terminated string at ``message`` to COM1, polling THRE; CLI; HLT."""
    return bytes([
        0xBE, *le32(message),          # mov esi, message
        0x66, 0xBA, 0xFD, 0x03,        # next: mov dx, 3FDh (LSR)
        0xEC,                          # wait: in al, dx
        0xA8, 0x20,                    # test al, 20h   THRE
        0x74, 0xFB,                    # jz wait (-5)
        0xAC,                          # lodsb
        0x84, 0xC0,                    # test al, al
        0x74, 0x07,                    # jz done (+7)
        0x66, 0xBA, 0xF8, 0x03,        # mov dx, 3F8h (THR)
        0xEE,                          # out dx, al
        0xEB, 0xEB,                    # jmp next (-21)
        0xFA, 0xF4,                    # done: cli; hlt
    ])


def test_the_guest_writes_to_com1_and_transmit_gets_the_bytes():
    sent: List[bytes] = []
    pc = machine(writer(DATA), transmit=sent.append)
    pc.cpu.mem.write_bytes(DATA, b"hi\n\0")
    stop = pc.run(100_000)
    assert stop.reason == "halted"
    assert b"".join(sent) == b"hi\n"


def test_the_guest_reads_host_input_and_echoes_it():
    program = bytes([
        0x66, 0xBA, 0xFD, 0x03,        # mov dx, 3FDh (LSR)
        0xEC,                          # poll: in al, dx
        0xA8, 0x01,                    # test al, 01h   DR
        0x74, 0xFB,                    # jz poll (-5)
        0x66, 0xBA, 0xF8, 0x03,        # mov dx, 3F8h
        0xEC,                          # in al, dx      RBR
        0x88, 0xC3,                    # mov bl, al
        0x66, 0xBA, 0xFD, 0x03,        # mov dx, 3FDh
        0xEC,                          # wait: in al, dx
        0xA8, 0x20,                    # test al, 20h   THRE
        0x74, 0xFB,                    # jz wait (-5)
        0x88, 0xD8,                    # mov al, bl
        0x66, 0xBA, 0xF8, 0x03,        # mov dx, 3F8h
        0xEE,                          # out dx, al     THR
        0xFA, 0xF4,                    # cli; hlt
    ])
    sent: List[bytes] = []
    pc = machine(program, transmit=sent.append)
    pc.uart.receive(b"x")
    assert pc.run(1_000_000).reason == "halted"
    assert b"".join(sent) == b"x"
    assert pc.cpu.regs[3] & 0xFF == ord("x")  # BL: what RBR gave


# (d) every way run stops ------------------------------------------------------------

def run_to_stop(code: bytes, budget: int = 10_000) -> Stop:
    return machine(code).run(budget)


def test_a_triple_fault_is_a_shutdown_that_names_the_faulting_eip():
    pc = machine(bytes([0x90, 0x90, 0x0F, 0x0B]))  # nop; nop; ud2
    pc.cpu.idtr = (IDT, 0)  # no gate at all: #UD -> #GP -> #DF -> shutdown
    stop = pc.run(1000)
    assert stop.reason == "shutdown"
    assert "triple fault" in stop.detail
    assert f"eip={CODE + 2:08x}" in stop.detail  # the UD2 (a fault leaves EIP on it)


def test_hlt_with_interrupts_disabled_is_halted_for_good():
    stop = run_to_stop(bytes([0xFA, 0xF4]))  # cli; hlt
    assert stop.reason == "halted"
    assert f"{CODE + 2:#010x}" in stop.detail  # EIP after the HLT


def test_hlt_with_interrupts_enabled_and_no_timer_is_halted():
    stop = run_to_stop(bytes([0xFB, 0xF4]))  # sti; hlt, nothing programmed
    assert stop.reason == "halted" and "no timer" in stop.detail


def test_an_access_past_the_end_of_ram_is_unmapped_with_its_address():
    address = RAM + 0x1000
    stop = run_to_stop(bytes([0xA1, *le32(address)]))  # mov eax, [address]
    assert stop.reason == "unmapped"
    assert f"{address:#x}" in stop.detail


def test_the_i8042_pulse_command_resets_the_machine():
    stop = run_to_stop(bytes([
        0xB0, 0xFE, 0xE6, 0x64,  # mov al, FEh; out 64h, al   pulse output port bit 0: reset
        0xEB, 0xFE,              # jmp $
    ]))
    assert stop.reason == "reset"


def test_a_gap_in_the_emulator_stops_with_gap():
    # Every form in reference.isa.table.FORMS has semantics and every documented
    # mechanism a PC reaches is modelled (IRET to virtual-8086 mode, once this test's
    # gap, is now), so the gap is made here: a CPU without its I/O bus
    # (reference.semantics.misc.port_in raises Unimplemented then).
    pc = machine(bytes([0x90, 0xE4, 0x80]))  # nop; in al, 80h
    del pc.cpu.io_in
    stop = pc.run(10_000)
    assert stop.reason == "gap"
    assert "no I/O bus" in stop.detail and f"{CODE + 1:#010x}" in stop.detail


def test_a_budget_stops_a_loop_after_exactly_that_many_instructions():
    pc = machine(bytes([0xEB, 0xFE]))  # jmp $
    stop = pc.run(12_345)
    assert stop.reason == "budget" and pc.cpu.tsc == 12_345


# (e) python -m reference.pc --------------------------------------------------------

def pc_command(*args: str) -> List[str]:
    return [sys.executable, "-m", "reference.pc", *args]


def pc_env() -> dict:
    return dict(os.environ, PYTHONPATH=str(REPO))


def metrics(stderr: str) -> List[dict]:
    return [json.loads(line[len("X86LAB "):]) for line in stderr.splitlines()
            if line.startswith("X86LAB ")]


def test_a_file_that_is_not_a_kernel_exits_2_with_the_reason(tmp_path):
    kernel = tmp_path / "notakernel"
    kernel.write_bytes(b"MZ" + bytes(8190))
    done = subprocess.run(pc_command("--kernel", str(kernel)), env=pc_env(),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert "cannot boot" in done.stderr and "not a bzImage" in done.stderr
    missing = subprocess.run(pc_command("--kernel", str(tmp_path / "absent")), env=pc_env(),
                             stdin=subprocess.DEVNULL, capture_output=True, text=True,
                             timeout=60)
    assert missing.returncode == 2 and "cannot boot" in missing.stderr
    too_much = subprocess.run(pc_command("--kernel", str(kernel), "--memory", "4096"),
                              env=pc_env(), stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=60)
    assert too_much.returncode == 2 and "overlap the PCI hole" in too_much.stderr


@pytest.fixture
def looping_kernel(tmp_path) -> Path:
    """A bzImage whose protected-mode part is ``jmp $`` (EB FE) at 1 MiB."""
    path = tmp_path / "bzImage"
    path.write_bytes(fake_bzimage(payload=b"\xeb\xfe"))
    return path


def test_budget_ends_the_run_with_a_stop_line_and_exit_0(looping_kernel):
    done = subprocess.run(pc_command("--kernel", str(looping_kernel), "--memory", "16",
                                     "--budget", "50000"),
                          env=pc_env(), stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    records = metrics(done.stderr)
    assert records[0]["event"] == "started"
    last = records[-1]
    assert last["event"] == "stop" and last["reason"] == "budget"
    assert last["instructions"] == last["cycles"] == 50000
    assert done.stdout == ""


class Reader:
    """The X86LAB lines of a running process's stderr, as they come."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, args=(process,), daemon=True).start()

    def _read(self, process: subprocess.Popen) -> None:
        for line in process.stderr:
            self.lines.put(line)

    def next_event(self, event: str, timeout: float = 20.0) -> Optional[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line.startswith("X86LAB "):
                record = json.loads(line[len("X86LAB "):])
                if record["event"] == event:
                    return record
        return None


def test_signals_report_the_counter_and_where_the_guest_loops(looping_kernel):
    process = subprocess.Popen(pc_command("--kernel", str(looping_kernel), "--memory", "16"),
                               env=pc_env(), stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        reader = Reader(process)
        assert reader.next_event("started") is not None
        process.send_signal(signal.SIGUSR1)
        counter = reader.next_event("counter")
        assert counter is not None and counter["instructions"] > 0
        process.send_signal(signal.SIGUSR2)
        where = reader.next_event("where")
        assert where is not None
        assert len(where["trace"]) == 20
        assert all(line.startswith("0010:00100000 ") and line.endswith("eb fe")
                   for line in where["trace"]), where["trace"]
        process.send_signal(signal.SIGTERM)
        stop = reader.next_event("stop")
        assert stop is not None and stop["reason"] == "stopped"
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_exit_at_stage_stops_once_the_console_shows_it(tmp_path):
    # The payload runs at code32_start, 1 MiB: the writer (28 bytes), then its message.
    entry = 0x100000
    message = b"booted\r\n$ \0"
    kernel = tmp_path / "bzImage"
    kernel.write_bytes(fake_bzimage(payload=writer(entry + 28) + message))
    command = pc_command("--kernel", str(kernel), "--memory", "16",
                         "--stage", "banner=booted", "--stage", "prompt=$ ",
                         "--exit-at-stage", "banner")
    done = subprocess.run(command, env=pc_env(), stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"booted\r\n$ "
    records = metrics(done.stderr.decode())
    assert [r["name"] for r in records if r["event"] == "stage"] == ["banner", "prompt"]
    assert records[-1]["event"] == "stop" and records[-1]["reason"] == "stopped"
    assert "banner" in records[-1]["detail"]
    unknown = subprocess.run(command[:-1] + ["nosuchstage"], env=pc_env(),
                             stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    assert unknown.returncode == 2 and b"no --stage of that name" in unknown.stderr


HOT_LOOP = bytes.fromhex(
    "b9a0860100"  # mov ecx, 100000
    "01c8"        # add eax, ecx   <- loop
    "31c3"        # xor ebx, eax
    "49"          # dec ecx
    "75f9"        # jnz loop
    "ebfe")       # jmp $


def test_blocks_come_from_a_second_process_unless_told_otherwise(tmp_path):
    """The stop record says what the block maker did (reference.blocks.background);
    with ``--no-block-maker`` there is none. The threshold is given: PyPy's default is
    no blocks at all."""
    kernel = tmp_path / "bzImage"
    kernel.write_bytes(fake_bzimage(payload=HOT_LOOP))
    stops = {}
    for extra in ((), ("--no-block-maker",)):
        env = dict(pc_env(), X86LAB_CACHE=str(tmp_path / f"cache{len(extra)}"))
        done = subprocess.run(pc_command("--kernel", str(kernel), "--memory", "16",
                                         "--budget", "100000", "--block-threshold", "300",
                                         *extra),
                              env=env, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        stops[extra] = metrics(done.stderr)[-1]
    made = stops[()]["block_maker"]
    assert made["requested"] >= 1 and made["answered"] <= made["requested"]
    assert made["failed"] == 0 and not made["stopped"]
    assert "block_maker" not in stops[("--no-block-maker",)]
    assert stops[()]["instructions"] == stops[("--no-block-maker",)]["instructions"] == 100000


def test_the_started_record_says_how_blocks_are_made_and_found(tmp_path):
    """``--cache-lookups`` sets when the block cache is asked (``Cpu.cached_threshold``)
    and the started record says so, with the threshold and whether the cache and the
    maker are on; without blocks there is neither; a negative count is bad input."""
    from reference.cpu import CACHED_THRESHOLD

    kernel = tmp_path / "bzImage"
    kernel.write_bytes(fake_bzimage(payload=HOT_LOOP))
    env = dict(pc_env(), X86LAB_CACHE=str(tmp_path / "cache"))
    started, in_blocks = {}, {}
    for extra in (("--block-threshold", "300", "--cache-lookups", "40"),
                  ("--block-threshold", "300"), ("--block-threshold", "0")):
        done = subprocess.run(pc_command("--kernel", str(kernel), "--memory", "16",
                                         "--budget", "2000", *extra),
                              env=env, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        records = metrics(done.stderr)
        started[extra] = records[0]["blocks"]
        in_blocks[extra] = (records[-1]["in_blocks"], records[-1]["instructions"])
    assert in_blocks[("--block-threshold", "0")][0] == 0
    assert all(0 <= inside <= retired for inside, retired in in_blocks.values())
    assert list(started.values()) == [
        {"threshold": 300, "cache_lookups": 40, "cache": True, "maker": True},
        {"threshold": 300, "cache_lookups": CACHED_THRESHOLD, "cache": True, "maker": True},
        {"threshold": 0, "cache_lookups": CACHED_THRESHOLD, "cache": False, "maker": False}]
    refused = subprocess.run(pc_command("--kernel", str(kernel), "--cache-lookups", "-1"),
                             env=env, stdin=subprocess.DEVNULL, capture_output=True,
                             text=True, timeout=60)
    assert refused.returncode == 2 and "--cache-lookups -1" in refused.stderr


def test_the_block_makers_requests_can_be_recorded_for_replay(tmp_path):
    """``--record-blocks FILE`` writes each request the maker gets, which
    ``reference.blocks.replay`` reads back; without the maker there is nothing to record,
    and asking for it is bad input."""
    from reference.blocks import replay

    kernel = tmp_path / "bzImage"
    kernel.write_bytes(fake_bzimage(payload=HOT_LOOP))
    record = tmp_path / "blocks.rec"
    env = dict(pc_env(), X86LAB_CACHE=str(tmp_path / "cache"))
    done = subprocess.run(pc_command("--kernel", str(kernel), "--memory", "16", "--budget",
                                     "20000", "--block-threshold", "3", "--record-blocks",
                                     str(record)),
                          env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    with open(record, "rb") as source:
        requests = replay.read_requests(source)
    asked = metrics(done.stderr)[-1]["block_maker"]["requested"]
    assert len(requests) == asked > 0
    assert replay.replay(requests)["failed"] == 0
    refused = subprocess.run(pc_command("--kernel", str(kernel), "--no-block-maker",
                                        "--record-blocks", str(record)),
                             env=env, stdin=subprocess.DEVNULL, capture_output=True,
                             text=True, timeout=60)
    assert refused.returncode == 2 and "--record-blocks" in refused.stderr


def test_collecting_inside_batches_changes_nothing_the_guest_sees(monkeypatch):
    """``Pc.collect`` (the block maker's, ``reference.blocks.background``) is called
    between pieces of a batch (here of 7 instructions, so most batches are cut); the
    timer-sampling program must end in the same state as without it: batches, and so
    the events' instructions, stay where they were."""
    from reference.pc import machine as pc_machine

    plain = run_sampler()
    monkeypatch.setattr(pc_machine, "COLLECT_EVERY", 7)
    calls = []
    pc = machine(pit_program(3000) + SAMPLING_LOOP, COUNTING_HANDLER)
    pc.collect = lambda: calls.append(pc.cpu.tsc)
    assert pc.run(20_000_000).reason == "budget"
    assert len(calls) > 2 * dword(pc, DATA) > 100  # more pieces than interrupts
    assert (pc.cpu.tsc, pc.clock.skipped, pc.cpu.regs, pc.cpu.eip, pc.cpu.flags.value) == (
        plain.cpu.tsc, plain.clock.skipped, plain.cpu.regs, plain.cpu.eip,
        plain.cpu.flags.value)
    assert bytes(pc.cpu.mem.ram) == bytes(plain.cpu.mem.ram)


@pytest.mark.parametrize("code, ran", [(b"\xeb\xfe", 50_000),           # jmp $
                                       (b"\x90" * 30 + b"\xf4", 31)])  # 30 NOPs, HLT
def test_a_batch_cut_into_pieces_runs_what_one_run_would(monkeypatch, code, ran):
    """What makes collecting invisible to the guest: ``_run_cpu`` runs the whole batch
    (or stops where one ``cpu.run`` would, here at HLT) whatever the pieces."""
    from reference.pc import machine as pc_machine

    monkeypatch.setattr(pc_machine, "COLLECT_EVERY", 7)
    pc = machine(code)
    calls = []
    pc.collect = lambda: calls.append(1)
    result = pc._run_cpu(50_000)
    assert pc.cpu.tsc == ran and len(calls) == -(-ran // 7)
    assert (result is None) == (ran == 50_000)


def test_pieces_count_an_interrupt_taken_as_a_step_as_one_run_does(monkeypatch):
    """An interrupt delivered through the IDT in the middle of a run is a step that
    retires no instruction: pieces counted by retired instructions would run one more
    instruction than the one run (the tiny boot's prompt moved by 69)."""
    from reference.pc import machine as pc_machine

    monkeypatch.setattr(pc_machine, "COLLECT_EVERY", 7)
    ends = []
    for pieces in (False, True):
        pc = machine(pit_program(65535) + b"\xeb\xfe", COUNTING_HANDLER)  # then jmp $
        assert pc._run_cpu(100) is None  # the setup, STI included
        pc.pic.set_irq(0, True)  # IRQ 0 now: the next run takes it
        pc.pic.set_irq(0, False)
        if pieces:
            pc.collect = lambda: None
        assert pc._run_cpu(50) is None
        ends.append((pc.cpu.tsc, pc.cpu.eip, dword(pc, DATA)))
    assert ends[0] == ends[1] and ends[0][2] == 1  # the handler ran once in both
