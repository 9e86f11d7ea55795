"""Generated vectors are deterministic, small, and replay green on both engines."""

from __future__ import annotations

from differential.draw import RandomDraw
from differential.generator import form_case
from ground.case import PAGE_SIZE, Case
from reference import BY_NAME
from vectors.engines import make_runner
from vectors.files import read_header, read_vectors
from vectors.sparse import reads, sparse_case
from x86lab.cli import EXIT_OK, EXIT_USAGE, main

FORMS = "MOV_Ev_Gv"  # a memory-or-register form: both shapes of sparse memory


def _generate(out, seed=3):
    return main(["vectors", "generate", "--forms", FORMS, "--per-form", "6",
                 "--seed", str(seed), "--out", str(out)])


def test_generate_is_deterministic_and_replays_on_both_engines(tmp_path, capsys):
    assert _generate(tmp_path / "a") == EXIT_OK
    assert _generate(tmp_path / "b") == EXIT_OK
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.gz"))
    assert [str(f) for f in files] == [f"prot32/{FORMS}.jsonl.gz", f"real16/{FORMS}.jsonl.gz"]
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
        assert read_header(tmp_path / "a" / name)["form"] == FORMS
    capsys.readouterr()
    for engine in ("unicorn", "reference"):
        assert main(["vectors", "run", "--engine", engine, str(tmp_path / "a")]) == EXIT_OK
        assert "12 passed, 0 failed" in capsys.readouterr().out


def test_vectors_list_few_bytes(tmp_path):
    _generate(tmp_path)
    for path in tmp_path.rglob("*.gz"):
        for entry in read_vectors(path):
            everything = b"".join(entry.case.memory.values())
            fill = max(set(everything), key=everything.count)
            nonfill = len(everything) - everything.count(fill)
            assert nonfill < 64, entry.case.name   # not thousands of random page bytes


def test_sparse_case_keeps_what_the_instruction_reads():
    case = form_case(BY_NAME["ADD_Ev_Gv"], "prot32", RandomDraw(11), "add")
    small = sparse_case(case)
    unicorn = make_runner("unicorn")
    # Unicorn (not the reference that traced the reads) must see the same result.
    before, after = unicorn.run(case), unicorn.run(small)
    assert before.regs == after.regs and before.exception == after.exception
    fetched = [(case.regs["eip"] + i, byte) for i, byte in enumerate(case.code)]
    mapped = [(a, b) for a, b in fetched if a - a % PAGE_SIZE in small.memory]
    assert mapped and all(small.memory[a - a % PAGE_SIZE][a % PAGE_SIZE] == b
                          for a, b in mapped)


def test_trace_sees_the_fetch_and_the_memory_operand():
    # 01 03 = ADD [EBX], EAX: fetches two bytes at EIP, reads the dword at EBX.
    regs = dict.fromkeys(("eax", "ecx", "edx", "esi", "edi", "ebp"), 0)
    regs.update(ebx=0x2010, esp=0x1800, eip=0x1000, eflags=0x2)
    memory = {0x1000: b"\x01\x03" + bytes(PAGE_SIZE - 2), 0x2000: bytes(PAGE_SIZE)}
    case = Case(name="add", mode="prot32", code=b"\x01\x03", regs=regs, memory=memory)
    assert {0x1000, 0x1001, 0x2010, 0x2011, 0x2012, 0x2013} <= reads(case)


def test_pattern_matching_nothing_is_a_usage_error(tmp_path, capsys):
    assert main(["vectors", "generate", "--forms", "NOSUCH*", "--out", str(tmp_path)]) \
        == EXIT_USAGE
    assert "no implemented, testable form matches 'NOSUCH*'" in capsys.readouterr().err
