"""The Unicorn adapter reports what the SDM says a single step does; expected values are
computed here in Python."""

from __future__ import annotations

from dataclasses import replace

import pytest

from differential.runners.unicorn_runner import SELF_MODIFIED, UnicornRunner
from differential.tests.handmade import CODE_PAGE, DATA_PAGE, make_case
from ground.case import PAGE_SIZE, Exc

RUNNERS = [UnicornRunner(memory_hooks=False), UnicornRunner(memory_hooks=True)]
ids = ["plain", "memhooks"]


@pytest.mark.parametrize("runner", RUNNERS, ids=ids)
@pytest.mark.parametrize("mode", ["prot32", "real16"])
def test_add_result_and_flags(runner, mode):
    a, b = 0x7FFF, 0x0001  # 16-bit overflow in real16, plain carry-less add in prot32
    out = runner.run(make_case(bytes.fromhex("01c8"), mode, eax=a, ecx=b))  # add eAX, eCX
    assert out.exception is None
    total = a + b
    assert out.regs["eax"] == total
    assert out.regs["eip"] == CODE_PAGE + 2
    of = 1 if mode == "real16" else 0  # 0x7FFF + 1 overflows a signed word only
    assert (out.regs["eflags"] >> 11) & 1 == of
    assert (out.regs["eflags"] >> 4) & 1 == 1  # AF: carry out of bit 3 (0xF + 0x1)


@pytest.mark.parametrize("runner", RUNNERS, ids=ids)
def test_divide_error_is_a_fault_with_state_unchanged_every_time(runner):
    case = make_case(bytes.fromhex("f7f1"), eax=5, ecx=0)  # div ecx by zero
    for _ in range(3):  # a reused engine must not escalate to #DF (unicorn #1883)
        out = runner.run(case)
        assert out.exception == Exc(0, "fault")
        assert dict(out.regs) == dict(case.regs)


@pytest.mark.parametrize("runner", RUNNERS, ids=ids)
@pytest.mark.parametrize("code, vector, length", [("cc", 3, 1), ("cd80", 0x80, 2)])
def test_int3_and_int_n_are_traps_after_the_instruction(runner, code, vector, length):
    out = runner.run(make_case(bytes.fromhex(code)))
    assert out.exception == Exc(vector, "trap")
    assert out.regs["eip"] == CODE_PAGE + length


@pytest.mark.parametrize("runner", RUNNERS, ids=ids)
def test_ud2_and_unmapped_access(runner):
    assert runner.run(make_case(bytes.fromhex("0f0b"))).exception == Exc(6, "fault")
    out = runner.run(make_case(bytes.fromhex("a100500000")))  # mov eax, [0x5000]
    assert out.exception == Exc(-1, "unmapped")
    assert out.regs["eip"] == CODE_PAGE


@pytest.mark.parametrize("runner", RUNNERS, ids=ids)
def test_rep_stosb_completes_in_one_step(runner):
    out = runner.run(make_case(bytes.fromhex("f3aa"), eax=0xAB, ecx=5, edi=DATA_PAGE))
    assert out.regs["ecx"] == 0 and out.regs["edi"] == DATA_PAGE + 5
    assert out.memory[DATA_PAGE][:6] == b"\xab" * 5 + b"\x00"
    assert out.regs["eip"] == CODE_PAGE + 2


@pytest.mark.parametrize("runner", RUNNERS, ids=ids)
def test_jump_to_an_unmapped_target_retires(runner):
    out = runner.run(make_case(bytes.fromhex("e9fb3f0000")))  # jmp 0x5000
    assert out.exception is None
    assert out.regs["eip"] == 0x5000


@pytest.mark.parametrize("runner", RUNNERS, ids=ids)
def test_real_mode_code_at_cs_times_16(runner):
    # CS=0x0F0, IP=0x100: linear 0x1000; mov ax, 0x1234
    out = runner.run(make_case(bytes.fromhex("b83412"), "real16", cs=0xF0, eip=0x100))
    assert out.regs["eax"] == 0x1234 and out.regs["eip"] == 0x103


@pytest.mark.parametrize("runner", RUNNERS, ids=ids)
def test_store_into_its_own_bytes_is_one_step(runner):
    # add byte [ecx], al with ECX = the instruction's own address, AL = 0: the bytes stay
    # the same, the flags come from 0x00 + 0x00 (ZF, PF set)
    out = runner.run(make_case(bytes.fromhex("0001"), eax=0, ecx=CODE_PAGE))
    assert out.regs["eip"] == CODE_PAGE + 2
    assert out.regs["eflags"] & 0x44 == 0x44


def test_memhooks_far_return_keeps_stale_eip():
    """Records the Unicorn bug listed as unicorn-memhooks-real-mode-far-return-eip: if
    this starts failing, Unicorn was fixed and the known entry can go."""
    case = make_case(b"\xcb", "real16", cs=0, eip=0x1000, esp=0x2800)
    page = bytearray(case.memory[DATA_PAGE])
    page[0x800:0x804] = bytes([0x10, 0x00, 0x00, 0x01])  # IP 0x0010, CS 0x0100
    case = type(case)(**{**case.__dict__, "memory": {**case.memory, DATA_PAGE: bytes(page)}})
    plain, hooked = RUNNERS[0].run(case), RUNNERS[1].run(case)
    assert (plain.regs["cs"], plain.regs["eip"]) == (0x100, 0x10)  # SDM: IP then CS popped
    assert (hooked.regs["cs"], hooked.regs["eip"]) == (0x100, 0x1000)


@pytest.mark.parametrize("runner", RUNNERS, ids=ids)
def test_jump_onto_an_earlier_cases_stop_address_is_not_a_debug_trap(runner):
    runner.run(make_case(b"\x90"))  # its stop address: CODE_PAGE + 1
    out = runner.run(make_case(b"\xeb\xef", eip=CODE_PAGE + 0x10))  # jmp CODE_PAGE + 1
    assert out.exception is None
    assert out.regs["eip"] == CODE_PAGE + 1


@pytest.mark.parametrize("runner", RUNNERS, ids=ids)
def test_jump_into_an_earlier_cases_page_retires(runner):
    """A page of an earlier case (its frame now holds another page) is refused: a jump
    there retires, and the failed fetch after it is not part of the case (in campaigns
    Unicorn sometimes reported it as interrupt 1, seen with prot32 66 c3 returning to
    page 0)."""
    runner.run(make_case(b"\x90", memory={0x5000: bytes(4096)}))
    out = runner.run(make_case(bytes.fromhex("e9fb3f0000")))  # jmp 0x5000, not in this case
    assert out.exception is None
    assert out.regs["eip"] == 0x5000


@pytest.mark.parametrize("runner", RUNNERS, ids=ids)
def test_read_from_an_earlier_cases_page_is_unmapped(runner):
    """An earlier case's page must not be readable through a stale TLB entry: the
    earlier cases read it or ran code in it (their stop address is dropped from the code
    cache, which looks that page up again)."""
    runner.run(make_case(bytes.fromhex("a100500000"), memory={0x5000: bytes(4096)}))
    runner.run(make_case(b"\x90", memory={0x5000: bytes(4096)}, eip=0x5000))
    out = runner.run(make_case(bytes.fromhex("a110500000")))  # mov eax, [0x5010]
    assert out.exception == Exc(-1, "unmapped")
    assert out.regs["eip"] == CODE_PAGE


@pytest.mark.parametrize("runner", RUNNERS, ids=ids)
def test_an_access_refused_twice_is_unmapped_twice(runner):
    """The refused access itself must not leave the page readable for the next run."""
    runner.run(make_case(b"\x90", memory={0x5000: bytes(4096)}))
    case = make_case(bytes.fromhex("a110500000"))  # mov eax, [0x5010]
    assert [runner.run(case).exception for _ in range(2)] == [Exc(-1, "unmapped")] * 2


@pytest.mark.parametrize("runner", RUNNERS, ids=ids)
def test_rep_stos_over_its_own_bytes_is_flagged(runner):
    # rep stosb at 0x1010 with EDI = 0x1000, AL = 0x90: iteration 17 overwrites the F3;
    # Unicorn would go on running the new bytes, so the outcome must carry the note
    out = runner.run(make_case(bytes.fromhex("f3aa"), eip=CODE_PAGE + 0x10, eax=0x90,
                               ecx=0x20, edi=CODE_PAGE))
    assert SELF_MODIFIED in out.notes


@pytest.mark.parametrize("runner", RUNNERS, ids=ids)
def test_rep_stos_whose_new_bytes_fault_on_the_refetch_is_flagged(runner):
    """Campaign seed 1205's shape at a user address: rep stosb at 0x5FFE, the last two
    bytes of a page whose successor is unmapped, EDI = 0x5F3E, AL = 0xBD. Iteration 0xC1
    stores BD over the F3; Unicorn refetches BD AA (MOV EBP, imm32), whose immediate lies
    in the unmapped page, and that fetch faults before the code hook runs. The outcome
    must carry the note, not pass as a REP stopped with no exception."""
    case = make_case(bytes.fromhex("f3aa"), eip=0x5FFE, eax=0xBD, ecx=0x1000, edi=0x5F3E,
                     memory={0x5000: bytes(0xFFE) + bytes.fromhex("f3aa")})
    out = runner.run(case)
    assert SELF_MODIFIED in out.notes
    assert out.regs["ecx"] == 0x1000 - 0xC1 and out.regs["edi"] == 0x5FFF


@pytest.mark.parametrize("runner", RUNNERS, ids=ids)
@pytest.mark.parametrize("head", ["3e0f1b00", "f20f1c8870f0", "90"])
def test_bytes_longer_than_their_instruction_do_not_fault_ahead(runner, head):
    """A case's bytes may run on past its instruction (random bytes Capstone cannot
    decode: the campaigns' 3e 0f 1b ... and f2 0f 1c ...). Here 90s follow and a B8 (MOV
    EAX, imm32) at 0x5FFE whose immediate lies in the unmapped page 0x6000; the case's
    bytes are the 15 from 0x5FF0. Only the first instruction runs (its length: prefix,
    opcode, ModRM and displacement by the SDM's tables, Table 2-2: ModRM 00 has none, 88
    a disp32: 4, 8 and 1 bytes), with no fault: the MOV is the next instruction's."""
    code = bytes.fromhex(head) + b"\x90" * (14 - len(bytes.fromhex(head))) + b"\xb8"
    page = bytes(0xFF0) + code + b"\x90"
    out = runner.run(make_case(code, eip=0x5FF0, memory={0x5000: page}))
    length = {"3e0f1b00": 4, "f20f1c8870f0": 8, "90": 1}[head]
    assert out.exception is None and out.regs["eip"] == 0x5FF0 + length


@pytest.mark.parametrize("runner", RUNNERS, ids=ids)
def test_an_instruction_running_off_its_page_still_faults(runner):
    """The other side: ADD [EAX],AL (00 00) with its ModRM byte in the unmapped page
    0x6000 faults on the fetch at every stop the runner tries."""
    base = make_case(b"")
    case = type(base)(**{**base.__dict__, "code": b"\x00\x00",
                         "regs": {**base.regs, "eip": 0x5FFF},
                         "memory": {**base.memory, 0x5000: bytes(0x1000)}})
    out = runner.run(case)
    assert out.exception == Exc(-1, "unmapped") and out.regs["eip"] == 0x5FFF


@pytest.mark.parametrize("runner", RUNNERS, ids=ids)
def test_int_6_comes_back_as_invalid_opcode(runner):
    """Unicorn 2.1.4 turns vector 6 into UC_ERR_INSN_INVALID before its interrupt hook:
    INT 6 looks like a #UD fault (known_divergences.toml), unlike INT 5 and INT 7."""
    out = runner.run(make_case(bytes.fromhex("cd06")))
    assert out.exception == Exc(vector=6, kind="fault") and out.regs["eip"] == CODE_PAGE
    assert runner.run(make_case(bytes.fromhex("cd07"))).exception == Exc(vector=7, kind="trap")


@pytest.mark.parametrize("runner", RUNNERS, ids=ids)
@pytest.mark.parametrize("base, ebp", [(0x5000, 0x5FFE), (0xFFFFF000, 0xFFFFFFFF)],
                         ids=["next-page", "across-4gib"])
def test_an_access_crossing_into_an_earlier_cases_page_is_unmapped(runner, base, ebp):
    """With mapped-but-protected pages Unicorn checked the first page of a split access
    only; each page of the access must be refused on its own (page 0 after 0xfffff000
    too), as it is alone (a campaign found LEAVE with EBP=0xffffffff reading an earlier
    case's page 0)."""
    neighbour = (base + 0x1000) & 0xFFFFFFFF
    leave = make_case(b"\xc9", memory={base: bytes(4096)}, ebp=ebp)  # LEAVE pops [EBP]
    alone = type(runner)(memory_hooks=runner.memory_hooks).run(leave)
    runner.run(make_case(b"\x90", memory={base: bytes(4096), neighbour: bytes(4096)}))
    runner.run(make_case(b"\x90"))
    after = runner.run(leave)
    assert alone.exception == after.exception == Exc(-1, "unmapped")
    assert after.regs == alone.regs


@pytest.mark.parametrize("runner", RUNNERS, ids=ids)
@pytest.mark.parametrize("code, eip", [
    (bytes.fromhex("a310500000"), CODE_PAGE),  # mov [0x5010], eax
    (bytes.fromhex("8b4008"), CODE_PAGE),  # mov eax, [eax+8]
    (bytes.fromhex("0000"), 0x5000)],  # code off the case's pages
                         ids=["write", "read", "fetch"])
def test_every_access_outside_the_case_is_unmapped_with_state_unchanged(runner, code, eip):
    """A write, a read and a fetch outside the case's pages all end as an unmapped access
    (the refused TLB fill, whatever its access type), registers and pages untouched."""
    case = make_case(code, eax=0x7000)
    case = replace(case, regs={**case.regs, "eip": eip})  # the fetch: EIP off the pages
    out = runner.run(case)
    assert out.exception == Exc(-1, "unmapped")
    assert out.regs == case.regs and out.memory == case.memory


@pytest.mark.parametrize("runner", RUNNERS, ids=ids)
def test_each_page_of_a_many_page_case_keeps_its_own_bytes(runner):
    """More pages than any earlier case (more frames are mapped): each linear page reads
    its own contents, and a page another case had in the same frame is not seen."""
    runner.run(make_case(b"\x90", memory={0x9000: b"\x55" * 4096}))
    pages = {0x20000 + 0x1000 * k: bytes([k]) * 4096 for k in range(10)}
    for k in range(10):
        # mov eax, [0x20000 + k * 0x1000]: EAX gets four bytes of value k
        code = bytes.fromhex("a1") + (0x20000 + 0x1000 * k).to_bytes(4, "little")
        out = runner.run(make_case(code, memory=pages))
        assert out.exception is None
        assert out.regs["eax"] == k * 0x01010101


@pytest.mark.parametrize("runner", RUNNERS, ids=ids)
@pytest.mark.parametrize("head, exception, length", [
    ("8c3a", Exc(6, "fault"), 0),  # mov [edx], Sreg7: #UD (SDM MOV: Sreg 6/7 reserved)
    ("90", None, 1),  # nop: retires
    ("c7050020000011223344", Exc(-1, "unmapped"), 0),  # mov [0x2000], imm32: runs off
])
def test_bytes_running_into_an_absent_page_are_judged_by_the_first_instruction(
        runner, head, exception, length):
    """Random bytes are kept whole when Capstone cannot decode them (15 bytes), so the
    bytes after the instruction may run into a page the case lacks (campaign seed 18:
    64 36 8c 3a cd 21 ... at 0x69cfcff9). Unicorn's translator reads ahead up to the
    stop address; the instruction alone decides: #UD, retired, or its own fetch fault."""
    code = bytes.fromhex(head) + bytes(range(0x41, 0x41 + 15 - len(head) // 2))
    eip = 0x2FFA  # six bytes before the end of DATA_PAGE; 0x3000 is not in the case
    case = replace(make_case(code[:6], eip=eip), code=code)
    out = runner.run(case)
    assert out.exception == exception
    assert out.regs["eip"] == eip + length


class _Planted(Exception):
    """Raised inside a hook by the tests below."""


@pytest.mark.parametrize("mode", ["prot32", "real16"])
def test_what_the_code_hook_raises_is_raised_by_run_and_the_next_case_runs(mode):
    """The hooks run in C (``unicorn_core.c``) but for one question the code hook asks
    Python when an instruction comes back to its own address (``_back_at_start``): what
    that raises must stop the run and come out of ``run``, not be printed and ignored
    (what ctypes does with a callback's exception); the engine then runs the next case
    as ever."""
    runner = UnicornRunner()
    rep = make_case(bytes.fromhex("f3aa"), mode, eax=0xAB, ecx=5, edi=DATA_PAGE)
    runner.run(rep)
    engine = runner._engine(mode)

    def broken_read(address, size):
        raise _Planted("code hook")

    engine.native.read = broken_read  # the code hook reads the bytes at REP's 2nd round
    with pytest.raises(_Planted, match="code hook"):
        runner.run(rep)
    del engine.native.read
    out = runner.run(rep)
    assert out.exception is None and out.regs["ecx"] == 0


@pytest.mark.parametrize("runner", RUNNERS, ids=ids)
def test_a_store_into_a_page_past_the_63rd_comes_back(runner):
    """The core reports which pages a run changed as a 64-bit mask whose top bit stands
    for every page from the 63rd on: a store there still comes back, and the untouched
    pages beside it stay the objects loaded."""
    far = {0x100000 + n * PAGE_SIZE: bytes([n]) * PAGE_SIZE for n in range(70)}
    target = 0x100000 + 66 * PAGE_SIZE
    case = make_case(bytes.fromhex("a3") + target.to_bytes(4, "little"), memory=far,
                     eax=0x11223344)  # mov [target], eax
    out = runner.run(case)
    assert out.exception is None
    assert out.memory[target] == bytes.fromhex("44332211") + bytes([66]) * (PAGE_SIZE - 4)
    assert all(out.memory[base] is page for base, page in case.memory.items()
               if base != target)


@pytest.mark.parametrize("mode", ["prot32", "real16"])
def test_register_reads_leave_high_bytes_alone(mode):
    """``_RegisterFile.read`` neither zeroes its slots first nor masks the values: that
    holds only while Unicorn stores at most 4 bytes of each register (2 of a selector)
    into its 8-byte slot. Slots full of 0xAB show what a read stores."""
    import ctypes

    from unicorn.unicorn_py3.unicorn import uclib

    from differential.runners.unicorn_runner import _Engine

    engine = _Engine(mode, memory_hooks=False)
    registers = engine.regs
    ctypes.memset(registers._read, 0xAB, ctypes.sizeof(registers._read))
    assert uclib.uc_reg_read_batch(engine.uc._uch, registers._ids, registers._read_ptrs,
                                   registers._count) == 0
    for name, value in zip(registers.names, registers._read[:]):
        assert value >> 32 == 0xABABABAB, name


@pytest.mark.parametrize("runner", RUNNERS, ids=ids)
def test_unchanged_pages_come_back_as_the_objects_loaded(runner):
    """A page the instruction did not store into is the case's own page object (so the
    comparison with the reference's, which does the same, is by identity); a page it
    stored into holds the new bytes."""
    quiet = make_case(b"\x90")
    assert all(page is quiet.memory[base] for base, page in runner.run(quiet).memory.items())
    case = make_case(bytes.fromhex("a300200000"), eax=0x11223344)  # mov [0x2000], eax
    out = runner.run(case)
    assert out.memory[DATA_PAGE][:4] == bytes.fromhex("44332211")
    assert out.memory[DATA_PAGE][4:] == case.memory[DATA_PAGE][4:]
    assert out.memory[CODE_PAGE] is case.memory[CODE_PAGE]
