"""Known divergences match only when every differing field is covered."""

from __future__ import annotations

import pytest

from differential.known import KnownListError, find_known, load_known
from differential.tests.handmade import make_case
from ground.compare import Difference

ENTRY = """
[[difference]]
suite = "vectors"
id = "demo"
group = ["NEG_*"]
fields = ["eflags.SF", "eflags.PF"]
reason = "r"
evidence = "e"
"""


def _case(form):
    base = make_case(bytes.fromhex("f718"))
    return type(base)(**{**base.__dict__, "form": form})


def test_matches_only_when_all_fields_are_covered(tmp_path):
    path = tmp_path / "known.toml"
    path.write_text(ENTRY)
    known = load_known(path)
    sf = Difference("eflags.SF", 0, 1)
    assert find_known(known, _case("NEG_Ev"), [sf], {}).id == "demo"
    assert find_known(known, _case("NEG_Ev"), [sf, Difference("eax", 1, 2)], {}) is None
    assert find_known(known, _case("ADD_Ev_Gv"), [sf], {}) is None


def test_requires_the_named_difference_with_the_subjects_value(tmp_path):
    """``requires``: the entry is about a stack fault, so the subject (the CPU) must have
    set SF where the peer did not; its broad ``fields`` are the consequences."""
    path = tmp_path / "known.toml"
    path.write_text('[[difference]]\nsuite = "vectors"\nid = "sf"\ngroup = ["F*"]\n'
                    'requires = ["x87.fsw.SF=0x1"]\nfields = ["x87.*"]\n'
                    'reason = "r"\nevidence = "e"\n')
    known = load_known(path)
    st0 = Difference("x87.st0", 0x3FFF8000000000000000, 0xFFFFC000000000000000)
    peer_missed_sf = Difference("x87.fsw.SF", 0, 1)
    assert find_known(known, _case("FADD_Md"), [st0, peer_missed_sf], {}).id == "sf"
    assert find_known(known, _case("FADD_Md"), [st0], {}) is None  # no stack fault shown
    assert find_known(known, _case("FADD_Md"), [st0, Difference("x87.fsw.SF", 1, 0)],
                      {}) is None  # the peer set SF, the subject did not: another story


def test_missing_keys_are_reported(tmp_path):
    path = tmp_path / "known.toml"
    path.write_text('[[difference]]\nid = "x"\n')
    with pytest.raises(KnownListError, match="lacks suite, group, evidence"):
        load_known(path)


def test_the_old_schema_is_refused_not_read_as_empty(tmp_path):
    """A [[divergence]] table (the campaign's schema before the one schema) or its
    ``forms`` key would otherwise silently explain nothing."""
    path = tmp_path / "known.toml"
    path.write_text(ENTRY.replace("[[difference]]", "[[divergence]]"))
    with pytest.raises(KnownListError, match="unknown tables divergence"):
        load_known(path)
    path.write_text(ENTRY.replace("group =", "forms ="))
    with pytest.raises(KnownListError, match="lacks group"):
        load_known(path)


def test_shipped_list_loads_and_cites_evidence():
    for entry in load_known():
        assert entry.evidence.strip() and entry.reason.strip() and entry.id


def _shipped(code: str, form: str, mode: str, *differences: Difference):
    """Which shipped entry (id) explains these differences, or None."""
    base = make_case(bytes.fromhex(code), mode)
    case = type(base)(**{**base.__dict__, "form": form})
    entry = find_known(load_known(), case, list(differences), {})
    return entry.id if entry else None


@pytest.mark.parametrize("code,mode", [("66c8791400", "prot32"), ("6766c8670000", "prot32"),
                                       ("66c8210000", "real16")])
def test_enter_with_66_covers_ebp_only(code, mode):
    """Campaign seed 2026 reproducers; the same ENTER without 66, or with ESP differing
    too, stays a divergence."""
    ebp = Difference("ebp", 0xABB9007D, 0x7D)
    assert _shipped(code, "ENTER_Iw_Ib", mode, ebp) == "unicorn-enter-66-ebp-at-stack-size"
    assert _shipped(code, "ENTER_Iw_Ib", mode, ebp, Difference("esp", 1, 2)) is None
    assert _shipped(code.replace("66", ""), "ENTER_Iw_Ib", mode, ebp) is None


def test_int_6_covers_only_cd06_reported_as_ud():
    exc = Difference("exception", "#UD fault", "#UD trap")
    eip = Difference("eip", 0xDABC, 0xDABE)
    assert _shipped("cd06", "INT_Ib", "real16", exc, eip) == \
        "unicorn-int-6-reported-as-invalid-opcode"
    assert _shipped("cd05", "INT_Ib", "real16", exc, eip) is None
    assert _shipped("cd06", "INT_Ib", "real16", eip, Difference("esp", 1, 2)) is None


@pytest.mark.parametrize("field", ["mem[0x100ffd]", "mem[0xfff]", "mem[0xfffffffe]"])
def test_split_store_covers_only_the_last_bytes_of_a_page(field):
    byte = Difference(field, 0x2E, 0xD0)
    assert _shipped("f3ab", "STOS_Yv_eAX", "prot32", byte) == "unicorn-split-store-partial-write"
    assert _shipped("f3a5", "MOVS_Yv_Xv", "prot32", byte) == "unicorn-split-store-partial-write"
    assert _shipped("f3ab", "STOS_Yv_eAX", "prot32", byte, Difference("ecx", 1, 2)) is None
    earlier = Difference(field[:-2] + "c]", 0x2E, 0xD0)  # a byte a dword cannot split at
    assert _shipped("f3ab", "STOS_Yv_eAX", "prot32", earlier) is None



def test_ud_before_the_fetch_is_known_only_when_the_bytes_run_off_the_map():
    """unicorn-ud-before-fetching-the-whole-instruction: campaign seed 18's real16
    8e 3e 00 00 at 0000:1ffd here (its last byte in the unmapped page 0x2000) is known;
    the same bytes wholly inside the mapped page, where an "unmapped" outcome could only
    be a data access before #UD (a reference bug), stay a divergence."""
    shape = Difference("exception", "#UD fault", "unmapped-access unmapped")
    code = bytes.fromhex("8e3e0000")
    base = make_case(code, "real16")
    page = bytearray(0x1000)
    page[0xFFD:] = code[:3]
    runs_off = type(base)(**{**base.__dict__, "form": "MOV_Sw_Ew",
                             "regs": {**base.regs, "eip": 0x1FFD},
                             "memory": {0x1000: bytes(page)}})
    inside = type(base)(**{**base.__dict__, "form": "MOV_Sw_Ew",
                           "memory": {0x1000: base.memory[0x1000]}})
    known = load_known()
    found = find_known(known, runs_off, [shape], {})
    assert found is not None and found.id == "unicorn-ud-before-fetching-the-whole-instruction"
    assert find_known(known, inside, [shape], {}) is None
    assert find_known(known, runs_off, [shape, Difference("eax", 1, 2)], {}) is None


@pytest.mark.parametrize("code, ss, eip, ebp, frame_temp_at, esp_after", [
    # campaign seed 1205: level 1, FrameTemp pushed at SS:FFF8, SP := FFF8 - 0xD1
    ("66c8d10001", 0x7FFF, 0x1000, 0xA3B9EA47, 0xFFF8, 0xFF27),
    # campaign seed 20261207: level 0x4e (mod 32: 14), 13 frame pointers copied from
    # SS:[BP - 4i] first, FrameTemp pushed at SS:FFC8 - 4, SP := FFC4 - 0x4F79
    ("66c8794f4e", 0xFFFF, 0x28D9, 0xA6, 0xFFC4, (0xFFC4 - 0x4F79) & 0xFFFF),
])
def test_enter_66_nested_push_on_a_wrapping_16_bit_stack(code, ss, eip, ebp, frame_temp_at,
                                                         esp_after):
    """unicorn-enter-66-nested-frame-pointer-pushed-unwrapped, the campaigns'
    reproducers. By the SDM's ENTER Operation with OperandSize 32 on a 16-bit stack from
    ESP = 0: Push(EBP) leaves SP = 0xFFFC (ESP's upper half stays 0), so FrameTemp =
    0x0000FFFC, pushed last (bytes fc ff 00 00); EBP := FrameTemp and SP := SP - the
    size. The reference does exactly that; Unicorn's differences (the pushed dword's two
    upper bytes, and EBP where its upper half was not 0) are what the entry covers, and
    only when the push wraps SP: the same differences from SP = 0x100 stay divergences."""
    from differential.runners.reference_runner import ReferenceRunner
    from differential.runners.unicorn_runner import UnicornRunner
    from ground.compare import compare

    base = make_case(bytes.fromhex(code), "real16", cs=0, eip=eip, ss=ss, esp=0, ebp=ebp)
    linear = (ss << 4) + frame_temp_at
    copies = (ss << 4) + ((ebp - 4) & 0xFFFF)  # where the frame pointers are copied from
    pages = {linear & ~0xFFF, copies & ~0xFFF, (copies - 0x40) & ~0xFFF}
    memory = {**base.memory, **{page: bytes(0x1000) for page in pages}}
    case = type(base)(**{**base.__dict__, "form": "ENTER_Iw_Ib", "memory": memory})
    ours = ReferenceRunner().run(case)
    page = ours.memory[linear & ~0xFFF]
    assert ours.exception is None and ours.regs["ebp"] == 0x0000FFFC
    assert ours.regs["esp"] == esp_after
    assert page[linear & 0xFFF:(linear & 0xFFF) + 4] == bytes.fromhex("fcff0000")
    differences = compare(case, UnicornRunner().run(case), ours)
    assert {d.field for d in differences} >= {f"mem[{linear + 2:#x}]", f"mem[{linear + 3:#x}]"}
    entry = find_known(load_known(), case, differences, {})
    assert entry is not None
    assert entry.id == "unicorn-enter-66-nested-frame-pointer-pushed-unwrapped"
    unwrapped = type(case)(**{**case.__dict__, "regs": {**case.regs, "esp": 0x100}})
    assert find_known(load_known(), unwrapped, differences, {}) is None


@pytest.mark.parametrize("code, popped", [("cb", 4), ("ca0400", 8)])
def test_real_mode_far_return_wraps_sp(code, popped):
    """unicorn-real-mode-far-return-stack-without-wrap, campaign seed 1205's shape: RETF
    at SS:SP = 0100:FFFE. By the SDM, IP := the word at SS:FFFE (0x10FFE: 0x1234), SP
    wraps to 0000, CS := the word at SS:0000 (0x1000: the RETF's own bytes, little
    endian), SP := 0002 (+ imm16 4 for CA 04 00). The reference does exactly that;
    Unicorn reads CS at SS:10000 (unmapped here), which the entry covers."""
    from differential.runners.reference_runner import ReferenceRunner
    from differential.runners.unicorn_runner import UnicornRunner
    from ground.compare import compare

    raw = bytes.fromhex(code)
    base = make_case(raw, "real16", cs=0, eip=0x1000, ss=0x100, esp=0xFFFE)
    stack = bytearray(0x1000)
    stack[0xFFE:] = (0x1234).to_bytes(2, "little")
    form = "RETF" if code == "cb" else "RETF_Iw"
    case = type(base)(**{**base.__dict__, "form": form,
                         "memory": {**base.memory, 0x10000: bytes(stack)}})
    ours = ReferenceRunner().run(case)
    code_page = base.memory[0x1000]
    assert ours.exception is None and ours.regs["eip"] == 0x1234
    assert ours.regs["cs"] == int.from_bytes(code_page[:2], "little")
    assert ours.regs["esp"] == popped - 2
    differences = compare(case, UnicornRunner().run(case), ours)
    entry = find_known(load_known(), case, differences, {})
    assert entry is not None and entry.id == "unicorn-real-mode-far-return-stack-without-wrap"


def test_real_mode_far_return_reading_past_64k_the_other_way():
    """unicorn-real-mode-far-return-stack-without-wrap-reads-past-64k, campaign seed
    1205's RETF at SS:SP = FFFF:FFFE: IP at 0x10FFEE is mapped, the wrapped CS slot
    SS:0000 = 0xFFFF0 is not, so by the SDM the second Pop() faults (the reference);
    Unicorn reads SS:10000 = 0x10FFF0 instead. Only that exception shape is covered."""
    fault = Difference("exception", "none", "unmapped-access unmapped")
    cs, esp = Difference("cs", 0xC97B, 0x41EF), Difference("esp", 2, 0xFFFE)
    entry = "unicorn-real-mode-far-return-stack-without-wrap-reads-past-64k"
    assert _shipped("cb", "RETF", "real16", fault, cs, esp) == entry
    assert _shipped("cb", "RETF", "prot32", fault, cs, esp) is None
    assert _shipped("cb", "RETF", "real16", cs, esp) is None


@pytest.mark.parametrize("hooks", [False, True])
def test_real_mode_far_return_wrapping_sp_with_both_cs_slots_mapped(hooks):
    """unicorn-real-mode-far-return-stack-without-wrap-both-mapped (and its memory-hooks
    twin), campaign seed 20261207's shape: RETF at f000:b0ff with SS:SP = 3bd3:fffe and
    both SS:0000 and SS:10000 mapped. By the SDM, IP := the word at SS:FFFE, SP wraps,
    CS := the word at SS:0000, SP := 0002: the reference does that; Unicorn takes CS from
    SS:10000. Known only while the pops wrap: from SP = FFF0 the same differences are not."""
    from differential.runners.reference_runner import ReferenceRunner
    from differential.runners.unicorn_runner import UnicornRunner
    from ground.compare import compare

    ss = 0x3BD3
    code_page = (0xF000 << 4) + 0xB0FF & ~0xFFF
    base = make_case(bytes.fromhex("cb"), "real16", {code_page: bytes(0x1000)}, cs=0xF000,
                     eip=0xB0FF, ss=ss, esp=0xFFFE)
    pages = {}
    for where, word in ((ss << 4) + 0xFFFE, 0x5721), (ss << 4, 0xFFFF), \
            ((ss << 4) + 0x10000, 0x68C2):
        page = bytearray(pages.get(where & ~0xFFF, bytes(0x1000)))
        page[where & 0xFFF:(where & 0xFFF) + 2] = word.to_bytes(2, "little")
        pages[where & ~0xFFF] = bytes(page)
    case = type(base)(**{**base.__dict__, "form": "RETF",
                         "memory": {**base.memory, **pages}})
    ours = ReferenceRunner().run(case)
    assert ours.exception is None
    assert (ours.regs["cs"], ours.regs["eip"], ours.regs["esp"]) == (0xFFFF, 0x5721, 2)
    differences = compare(case, UnicornRunner(memory_hooks=hooks).run(case), ours)
    assert "cs" in {d.field for d in differences}
    peer = "unicorn+memhooks" if hooks else "unicorn"
    entry = find_known(load_known(), case, differences, {}, peer)
    assert entry is not None and entry.id == (
        "unicorn-memhooks-real-mode-far-return-stack-without-wrap-both-mapped" if hooks
        else "unicorn-real-mode-far-return-stack-without-wrap-both-mapped")
    unwrapped = type(case)(**{**case.__dict__, "regs": {**case.regs, "esp": 0xFFF0}})
    assert find_known(load_known(), unwrapped, differences, {}, peer) is None


@pytest.mark.parametrize("mode, code, ss, esp, stack_page", [
    ("prot32", "60", 0, 0x20010010, 0x2000F000),  # EAX..EBX's slots in 0x20010000
    ("real16", "6660", 0x8901, 0, 0x98000),       # campaign seed 20261207: SS:FFFC unmapped
])
def test_pusha_running_off_is_known_only_when_its_slots_reach_an_unmapped_page(
        mode, code, ss, esp, stack_page):
    """unicorn-pusha-fault-keeps-earlier-stores: PUSHA whose first slots lie in an
    unmapped page and last ones in the mapped page below faults; by the SDM (6.5) the
    memory is as before, which the reference keeps. Unicorn's stores into the mapped page
    are what the entry covers, and only when the slots do run off the map."""
    from differential.runners.reference_runner import ReferenceRunner
    from differential.runners.unicorn_runner import UnicornRunner
    from ground.compare import compare

    stack = bytes(range(256)) * 16
    regs = dict(zip(("eax", "ecx", "edx", "ebx", "ebp", "esi", "edi"),
                    (0x11111111 * k for k in range(1, 8))))
    segments = {"ss": ss} if mode == "real16" else {}
    base = make_case(bytes.fromhex(code), mode, {stack_page: stack}, esp=esp, **segments,
                     **regs)
    case = type(base)(**{**base.__dict__, "form": "PUSHA"})
    ours = ReferenceRunner().run(case)
    assert ours.exception is not None and ours.memory[stack_page] == stack
    differences = compare(case, UnicornRunner().run(case), ours)
    assert differences and all(d.field.startswith("mem[") for d in differences)
    entry = find_known(load_known(), case, differences, {})
    assert entry is not None and entry.id == "unicorn-pusha-fault-keeps-earlier-stores"
    mapped = (stack_page + 0x1000) if mode == "prot32" else ((ss << 4) + 0xFFFC) & ~0xFFF
    whole = type(case)(**{**case.__dict__, "memory": {**case.memory, mapped: stack}})
    assert find_known(load_known(), whole, differences, {}) is None


@pytest.mark.parametrize("code, cs, eip, ss, esp", [
    ("9aff7f1d75", 0, 0xE8B6, 0xFFFF, 0x13),   # IP's slot at 0xfffff, below the 1 MiB line
    ("9a48b7822f", 0x100, 0x8A84, 0x8B03, 2),  # IP's slot wraps to SS:FFFE
])
def test_far_call_whose_second_push_runs_off_the_map(code, cs, eip, ss, esp):
    """unicorn-far-call-fault-keeps-first-push, campaign seed 20261207's two shapes: the
    reference faults with memory unchanged (SDM 6.5); Unicorn's stored CS is what the
    entry covers, and only when the pushes do run off the map."""
    from differential.runners.reference_runner import ReferenceRunner
    from differential.runners.unicorn_runner import UnicornRunner
    from ground.compare import compare

    cs_slot = (ss << 4) + ((esp - 2) & 0xFFFF)
    code_page = ((cs << 4) + eip) & ~0xFFF
    stack = bytes((i * 5 + 1) & 0xFF for i in range(0x1000))
    base = make_case(bytes.fromhex(code), "real16", {code_page: bytes(0x1000),
                                                     cs_slot & ~0xFFF: stack},
                     cs=cs, eip=eip, ss=ss, esp=esp)
    case = type(base)(**{**base.__dict__, "form": "CALLF_Ap"})
    ours = ReferenceRunner().run(case)
    assert ours.exception is not None and ours.memory[cs_slot & ~0xFFF] == stack
    differences = compare(case, UnicornRunner().run(case), ours)
    assert {d.field for d in differences} == {f"mem[{cs_slot:#x}]", f"mem[{cs_slot + 1:#x}]"}
    entry = find_known(load_known(), case, differences, {})
    assert entry is not None and entry.id == "unicorn-far-call-fault-keeps-first-push"
    mapped = {**case.memory, **{page: bytes(0x1000) for page in (0xFF000, 0x9B000)}}
    whole = type(case)(**{**case.__dict__, "memory": mapped})
    assert find_known(load_known(), whole, differences, {}) is None


@pytest.mark.parametrize("sp, stale", [(0xFFE, True), (0xFFD, True), (0xFFC, False),
                                       (0x800, False)])
def test_real_mode_far_return_across_pages_keeps_eip(sp, stale):
    """unicorn-real-mode-far-return-across-pages-eip: RETF at 0000:1000 with SS = 0300 and
    two mapped stack pages. By the SDM IP and CS come from SS:SP and SS:SP+2 (the
    reference); Unicorn leaves EIP at the RETF exactly when the CS slot reaches the next
    page, which is what the entry covers."""
    from differential.runners.reference_runner import ReferenceRunner
    from differential.runners.unicorn_runner import UnicornRunner
    from ground.compare import compare

    stack = bytes((i * 5 + 1) & 0xFF for i in range(0x2000))
    base = make_case(bytes.fromhex("cb"), "real16", {0x3000: stack[:0x1000],
                                                     0x4000: stack[0x1000:]},
                     cs=0, eip=0x1000, ss=0x300, esp=sp)
    case = type(base)(**{**base.__dict__, "form": "RETF"})
    ours = ReferenceRunner().run(case)
    assert ours.regs["eip"] == int.from_bytes(stack[sp:sp + 2], "little")
    assert ours.regs["cs"] == int.from_bytes(stack[sp + 2:sp + 4], "little")
    differences = compare(case, UnicornRunner().run(case), ours)
    assert [d.field for d in differences] == (["eip"] if stale else [])
    if stale:
        entry = find_known(load_known(), case, differences, {})
        assert entry is not None and entry.id == "unicorn-real-mode-far-return-across-pages-eip"
        one_page = type(case)(**{**case.__dict__, "regs": {**case.regs, "esp": 0xFFC}})
        assert find_known(load_known(), one_page, differences, {}) is None


def test_a_count_key_must_be_a_whole_number(tmp_path):
    path = tmp_path / "known.toml"
    path.write_text(ENTRY + "pushes_run_off = true\n")
    with pytest.raises(KnownListError, match="pushes_run_off must be a count"):
        load_known(path)


def test_popa_running_off_is_known_only_when_its_slots_reach_an_unmapped_page():
    """unicorn-popa-fault-keeps-popped-registers, campaign seed 1206: real16 61 with SS =
    7FFF, SP = FFF2 (AX's slot wraps to SS:0000 = 0x7FFF0, page 0x7F000 unmapped) is
    known; with SP = FFE0 all 16 bytes lie in page 0x8F000 (0x8FFD0-0x8FFDF), so POPA
    cannot fault and a register difference there stays a divergence."""
    edi = Difference("edi", 0xFFFFFFFF, 0xFFFFFFD6)
    base = make_case(bytes.fromhex("61"), "real16", cs=0, eip=0x1000, ss=0x7FFF)
    entry = "unicorn-popa-fault-keeps-popped-registers"
    for sp, expected in ((0xFFF2, entry), (0xFFE0, None)):
        case = type(base)(**{**base.__dict__, "form": "POPA",
                             "regs": {**base.regs, "esp": sp},
                             "memory": {**base.memory, 0x8F000: bytes(0x1000)}})
        found = find_known(load_known(), case, [edi], {})
        assert (found.id if found else None) == expected
