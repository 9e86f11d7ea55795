"""The host CPU as tie-breaker: the stepper reports single steps correctly, and it
confirms the known divergences where Unicorn is said to be wrong."""

from __future__ import annotations

import pytest

from differential.known import load_known
from differential.runners.native_runner import NativeRunner, NativeUnavailable, StepperError
from differential.runners.reference_runner import ReferenceRunner
from differential.runners.unicorn_runner import UnicornRunner
from differential.tests.handmade import CODE_PAGE, DATA_PAGE, make_case
from ground.case import Exc
from ground.compare import compare


@pytest.fixture(scope="module")
def native():
    try:
        return NativeRunner()
    except StepperError as exc:
        pytest.skip(f"no native i386 runner on this host: {exc}")


def _with_dword(case, value):
    page = bytearray(case.memory[DATA_PAGE])
    page[0:4] = value.to_bytes(4, "little")
    return type(case)(**{**case.__dict__, "memory": {**case.memory, DATA_PAGE: bytes(page)}})


def test_single_step_add_matches_python(native):
    out = native.run(make_case(bytes.fromhex("01c8"), eax=0x7FFFFFFF, ecx=1))
    assert out.exception is None
    assert out.regs["eax"] == 0x80000000 and out.regs["eip"] == CODE_PAGE + 2
    assert out.regs["eflags"] & 0x800  # OF: two positives gave a negative


def test_faults_and_rep(native):
    assert native.run(make_case(bytes.fromhex("f7f1"), eax=5)).exception == Exc(0, "fault")
    out = native.run(make_case(bytes.fromhex("f3aa"), eax=0x41, ecx=3, edi=DATA_PAGE))
    assert out.memory[DATA_PAGE][:4] == b"AAA\x00" and out.regs["eip"] == CODE_PAGE + 2


def test_real_mode_is_refused(native):
    with pytest.raises(NativeUnavailable, match="prot32"):
        native.run(make_case(b"\x90", "real16"))


@pytest.mark.parametrize("entry_id, case", [
    ("unicorn-lock-neg-flags",
     _with_dword(make_case(bytes.fromhex("f0f718"), eax=DATA_PAGE), 0x7D65733F)),
    ("unicorn-lock-prefix-not-ud", make_case(bytes.fromhex("2626f006"))),
], ids=["lock-neg", "lock-push-es"])
def test_known_divergence_confirmed_by_the_cpu(native, entry_id, case):
    """The host agrees with the reference and not with Unicorn, on the listed fields."""
    entry = next(e for e in load_known() if e.id == entry_id)
    case = type(case)(**{**case.__dict__, "form": entry.groups[0]})
    host = native.run(case)
    assert compare(case, host, ReferenceRunner().run(case)) == []
    against_unicorn = compare(case, UnicornRunner().run(case), host)
    assert against_unicorn and entry.matches_case(case, against_unicorn, {})


def test_ret_imm16_is_zero_extended_on_the_cpu(native):
    """unicorn-ret-imm16-sign-extended: the host and the reference release 0xFFFF bytes."""
    case = make_case(bytes.fromhex("c2ffff"), esp=DATA_PAGE + 0x8BC)
    case = type(case)(**{**case.__dict__, "form": "RET_Iw"})
    host = native.run(case)
    assert host.regs["esp"] == DATA_PAGE + 0x8BC + 4 + 0xFFFF
    assert compare(case, host, ReferenceRunner().run(case)) == []
    entry = next(e for e in load_known() if e.id == "unicorn-ret-imm16-sign-extended")
    assert entry.matches_case(case, compare(case, UnicornRunner().run(case), host), {})


@pytest.mark.parametrize("code", ["c5dc4fe92e", "262ec5c522"])
def test_c5_register_form_is_ud_on_the_cpu(native, code):
    """unicorn-c4-c5-register-form-executes: the host agrees with the reference (#UD)."""
    case = make_case(bytes.fromhex(code))
    case = type(case)(**{**case.__dict__, "form": "LDS_Gv_Mp"})
    host = native.run(case)
    assert host.exception == Exc(6, "fault")
    assert compare(case, host, ReferenceRunner().run(case)) == []
    entry = next(e for e in load_known() if e.id == "unicorn-c4-c5-register-form-executes")
    assert entry.matches_case(case, compare(case, UnicornRunner().run(case), host), {})



def _running_off_the_page(code: bytes, inside: int):
    """``code`` placed so that only its first ``inside`` bytes lie in a mapped code page
    (0x5000) and the rest in the unmapped page after it; the data page stays mapped."""
    base = make_case(b"", eax=DATA_PAGE)
    page = bytearray(b"\x90" * 0x1000)
    page[0x1000 - inside:] = code[:inside]
    regs = {**base.regs, "eip": 0x6000 - inside}
    return type(base)(name="runs-off", mode="prot32", code=code, regs=regs,
                      memory={0x5000: bytes(page), DATA_PAGE: base.memory[DATA_PAGE]})


@pytest.mark.parametrize("code, inside", [
    ("8e3d00200000", 2),    # mov Sreg7, [0x2000]: reg 7 seen, disp32 in the next page
    ("0fc71500200000", 3),  # 0F C7 /2 (reserved), disp32 in the next page
    ("fe1500200000", 5),    # FE /2 (reserved), only disp32's last byte in the next page
    ("c60d0020000001", 2),  # C6 /1 (reserved), disp32 and imm8 in the next page
])
def test_fetch_fault_outranks_ud_on_the_cpu(native, code, inside):
    """unicorn-ud-before-fetching-the-whole-instruction: an encoding invalid by its ModRM
    whose addressing bytes run into an unmapped page faults on the fetch on the host CPU,
    as in the reference (SDM Vol. 3A, Table 6-2: fetch faults, priority 7, outrank
    invalid opcode, priority 8); Unicorn raises #UD."""
    case = _running_off_the_page(bytes.fromhex(code), inside)
    host = native.run(case)
    assert host.exception == Exc(-1, "unmapped")
    assert compare(case, host, ReferenceRunner().run(case)) == []
    against_unicorn = compare(case, UnicornRunner().run(case), host)
    entry = next(e for e in load_known()
                 if e.id == "unicorn-ud-before-fetching-the-whole-instruction")
    assert against_unicorn and entry.matches_case(case, against_unicorn, {})


def test_an_undefined_opcode_is_ud_without_fetching_its_modrm(native):
    """The other side of the same priority: 0F A6 is undefined by its opcode alone, so the
    reference and Unicorn raise #UD although its ModRM byte lies in the unmapped page.
    How many bytes a CPU fetches for an opcode the SDM leaves undefined is the vendor's
    choice: an AMD EPYC (family 25) raises #UD, an Intel Xeon (family 6 model 167)
    fetches a ModRM for 0F A6 (the 386's XBTS had one) and faults on that fetch. Either
    answer is the host's own; where it is #UD, both engines must agree with it."""
    case = _running_off_the_page(bytes.fromhex("0fa6c0"), 2)
    host = native.run(case)
    assert host.exception in (Exc(6, "fault"), Exc(-1, "unmapped"))
    reference, unicorn = ReferenceRunner().run(case), UnicornRunner().run(case)
    assert reference.exception == Exc(6, "fault")
    assert compare(case, reference, unicorn) == []
    if host.exception == Exc(6, "fault"):
        assert compare(case, host, reference) == []


def _nop_then_a_crossing_instruction(nop: bytes):
    """``nop`` at 0x5FF0 with 90s after it and B8 (MOV EAX, imm32) at 0x5FFE, whose
    immediate lies in the unmapped page 0x6000; the case's code is the 15 bytes from
    0x5FF0, as a random-bytes case keeps them when Capstone cannot decode the first."""
    base = make_case(b"", eax=DATA_PAGE)
    code = nop + b"\x90" * (14 - len(nop)) + b"\xb8"
    page = bytearray(b"\x90" * 0x1000)
    page[0xFF0:0xFFF] = code
    return type(base)(name="nop-then-crossing", mode="prot32", code=code,
                      regs={**base.regs, "eip": 0x5FF0},
                      memory={0x5000: bytes(page), DATA_PAGE: base.memory[DATA_PAGE]})


@pytest.mark.parametrize("nop", ["3e0f1b00", "f20f1c00"])
def test_a_reserved_nop_retires_before_the_next_fetch_faults(native, nop):
    """Issue 18's reserved-NOP findings (3e 0f 1b ..., f2 0f 1c ...): the NOP's own
    bytes (prefix, 0F 1x, ModRM 00: 4 bytes) are all mapped, so the CPU retires it and
    EIP moves to 0x5FF4; the MOV crossing into the unmapped page is a later instruction
    (SDM Vol. 3A, Table 6-2: fetching the *next* instruction). The reference agrees, and
    so does the Unicorn runner, whose translator read on into that page and faulted
    before the NOP ran until the runner learnt to stop the block at the instruction's
    end (UnicornRunner.run)."""
    case = _nop_then_a_crossing_instruction(bytes.fromhex(nop))
    host = native.run(case)
    assert host.exception is None and host.regs["eip"] == 0x5FF0 + 4
    assert compare(case, host, ReferenceRunner().run(case)) == []
    assert compare(case, host, UnicornRunner().run(case)) == []
