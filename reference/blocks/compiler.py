"""Compile a block of decoded instructions into one Python function, generated from
the semantics (``reference.blocks.inline``), so ``run()`` dispatches once per block
instead of once per instruction.

A block starts at a hot instruction and takes the instructions after it on the same
physical page, on past conditional branches (Jcc, LOOP, JCXZ: their taken path leaves
the block, a side exit) and through a JMP or CALL whose target is on the same page
and not yet in the block (the code there follows in the block,
``reference.blocks.layout.THROUGH``), up to and including any other unconditional near
transfer (RET, JMP or CALL elsewhere or through a register), at most ``MAX_LENGTH``.
A block that branches back to its own first instruction runs as a loop inside its
function (``reference.blocks.layout``). It stops
before anything whose effect reaches outside the registers, flags and memory, or that
the step loop must see one at a time: I/O, interrupts and IF changes (CLI, STI, POPF),
far transfers and segment loads, system instructions, x87, string instructions, RDTSC,
and forms without semantics.

The function sets ``cpu.insn`` and ``cpu.eip`` where they are read, at every exit and
at the end, then runs each instruction's inlined semantics, and returns how many
instructions it ran. ``run()`` calls it only when one pass of the block fits in the
instruction budget (a loop starts another pass only while one fits, so timer events
land on the same instruction as without blocks), with TF, RF, an interrupt shadow and
pending interrupts all clear. If anything is raised inside (a fault, a write to the
block's own page), the state at the entry of the block (or of the loop's pass) comes
back (registers, flags, EIP, the write journal) and ``run()`` replays those
instructions through ``step()``: the result is the interpreter's, bit for bit.

Where the disk cache is on, a second process may make the block
(``reference.blocks.background``): ``compile_block`` then answers ``PENDING`` and finds
the block made at the instruction's next run after it came back.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING, Any, Callable, Dict, FrozenSet, List, Optional, Set, Tuple

from reference.blocks import access, cache, layout, snippets
from reference.blocks.inline import inline
from reference.blocks.optimize import ORIGINS, STATUS
from reference.faults import Fault, Unmapped
from reference.step import STEPPED

if TYPE_CHECKING:  # pragma: no cover
    from reference.cpu import Cpu
    from reference.isa.decoder import Insn

MAX_LENGTH = 64
THRESHOLD = 40
"""Executions of an instruction before a block is compiled from it: compiling costs
about a millisecond, so only code that runs often is worth it."""
COMPILED_FAMILIES = frozenset({"arith", "logic", "datamove", "bits", "shift", "muldiv",
                               "bcd", "stack", "control", "flagops"})
"""Semantics modules whose functions only touch registers, flags and memory (with the
exceptions below)."""
COMPILED_ELSEWHERE = frozenset({"NOP"})
"""Mnemonics from other modules that a block may hold: NOP (and PAUSE, F3 90) touches
nothing. The tiny boot ran 119,128 NOPs interpreted because a block could not start at
one, and a NOP in the middle of straight-line code cut the block in two."""
BARRIERS = STEPPED | frozenset({
    "CLI", "STI", "POPF",                            # IF/TF: the step loop's business
    "LDS", "LES", "LFS", "LGS", "LSS",               # segment loads
})
"""Mnemonics (as FORMS spells them) of those families that a block never contains: the
far transfers that ``run()`` always steps (``reference.step.STEPPED``) and these."""
ENDS_BLOCK = frozenset({"JMP", "Jcc", "CALL", "RET", "LOOP", "LOOPE", "LOOPNE", "JCXZ"})


class Block:
    """A compiled block: ``run(cpu, eip, budget)`` executes it from EIP ``eip`` and
    returns how many instructions it ran, at most ``budget`` (``run()`` calls it only
    when one pass, ``length`` instructions, fits; a loop block runs more passes while
    they fit, ``reference.blocks.layout``)."""

    __slots__ = ("run", "length", "span", "pages", "source", "physical", "loops")

    def __init__(self, run: Callable[[Any, int, int], int], length: int, span: int,
                 physical: int, source: str = "", loops: bool = False) -> None:
        self.run = run
        self.length = length      # instructions of one pass
        self.span = span          # bytes from EIP to the end of its furthest instruction
        self.physical = physical
        self.pages = frozenset({physical >> 12})
        self.source = source  # the generated Python, when asked for (block_source)
        self.loops = loops    # branches back to its start run as a loop inside it


class StackSizeChanged(Exception):
    """A block made for one SS.B entered with the other (a stack segment of the other
    width was loaded since): ``run()`` replays its instructions through ``step()``."""


try:
    from pypyjit import residual_call  # type: ignore[import-not-found]
except ImportError:
    residual_call = None


class Opaque:
    """A block's function as PyPy's JIT should see it from ``run()``: a call it does not
    follow. Why: ``run()``'s one call site meets thousands of generated functions, and
    a call the JIT follows is guarded on which function it is, so each block call walked
    a chain of failing guards (``PYPYLOG=jit-backend-counts`` on the tiny boot: ~75
    bridge entries a block call). Called this way each function still runs its own
    compiled code. Tiny boot to the prompt, blocks on, warm cache (user CPU, load 3-6):
    25.9 and 24.8 s against 35.6 and 32.9 s. Only under PyPy (CPython calls the
    function itself)."""

    __slots__ = ("function",)

    def __init__(self, function: Callable[[Any, int, int], int]) -> None:
        self.function = function

    def __call__(self, cpu: Any, eip: int, budget: int) -> int:
        return residual_call(self.function, cpu, eip, budget)  # type: ignore[misc]


NO_BLOCK = Block(lambda cpu, eip, budget: 0, 0, 0, 0)
"""Marks an instruction from which no block is worth making (it is a barrier itself)."""
PENDING = Block(lambda cpu, eip, budget: 0, 0, 0, 0)
"""Marks an instruction whose block a second process is making
(``reference.blocks.background``): ``run()`` interprets it meanwhile."""


def compilable(insn: Insn) -> bool:
    """Whether ``insn`` may sit inside a block (a property of its form, remembered per
    form: a warm boot asks ~20,000 times, once for each instruction of each block it
    looks up)."""
    known = _COMPILABLE.get(id(insn.form))
    if known is None:
        known = _COMPILABLE[id(insn.form)] = _compilable_form(insn)
    return known


_COMPILABLE: Dict[int, bool] = {}
"""id(form) -> whether its instructions may sit in a block (forms live as long as the
table: ``reference.isa.table.FORMS``)."""


def _compilable_form(insn: Insn) -> bool:
    fn = insn.fn
    if fn is None or insn.form.mnemonic in BARRIERS:
        return False
    if (fn.__module__.rsplit(".", 1)[-1] not in COMPILED_FAMILIES
            and insn.form.mnemonic not in COMPILED_ELSEWHERE):
        return False
    from reference.operands import SegReg, SystemReg
    return not any(isinstance(op, (SegReg, SystemReg)) for op in insn.operands)


def gather(cpu: Cpu, linear: int, physical: int, longest: int = MAX_LENGTH,
           side_exits: bool = layout.SIDE_EXITS) -> List[Insn]:
    """The instructions of the block at ``linear`` (first byte at ``physical``), at
    most ``longest``; with ``side_exits``, on past conditional branches (their taken
    path leaves the block, ``reference.blocks.layout``)."""
    from reference.step import _fetch_decode

    insns: List[Insn] = []
    starts: Set[int] = set()
    offset = 0
    while len(insns) < longest and 0 <= (physical & 0xFFF) + offset < 0x1000:
        here = physical + offset  # on the first page only: the next linear page may
        # map to any frame, and a write there would not reach this block (``pages``)
        insn = cpu.icache.get(here)
        if insn is None:
            try:
                insn = _fetch_decode(cpu, (linear + offset) & 0xFFFFFFFF, here)
            except (Fault, Unmapped):
                break
        if (here & 0xFFF) + insn.length > 0x1000 or not compilable(insn):
            break
        insns.append(insn)
        starts.add(offset)
        offset += insn.length
        mnemonic = insn.form.mnemonic
        if side_exits and mnemonic in layout.THROUGH:
            target = layout.target_offset(insn, offset)
            if (target is not None and target not in starts
                    and 0 <= (physical & 0xFFF) + target < 0x1000):
                offset = target  # on at the target, on this page (layout.offsets)
                continue
        if mnemonic in ENDS_BLOCK and not (side_exits and mnemonic in layout.CONDITIONAL):
            break
    return insns


def generate(insns: List[Insn], eip_mask: int, namespace: Dict[str, Any]) -> str:
    """The plain ``block(cpu, eip, budget)``: each instruction's semantics inlined as they
    are (``python -m reference.blocks.show --plain``) after a comment naming it, with
    ``cpu.insn``/``cpu.eip`` set before each, laid out as ``layout.plan`` says."""
    steps: List[List[str]] = []
    for k, (start, insn) in enumerate(zip(layout.offsets(insns), insns)):
        offset = start + insn.length
        snippets.own_objects(insn, k, namespace)
        statements = inline(k, insn.fn, insn, namespace)
        if statements is None:
            args = ", ".join(["cpu"] + [f"op{k}_{j}" for j in range(len(insn.operands))])
            statements = ast.parse(f"f{k}({args})").body
        module = ast.fix_missing_locations(ast.Module(body=statements, type_ignores=[]))
        steps.append([f"# +{offset - insn.length}: {snippets.describe(insn)}",
                      f"cpu.insn = i{k}", f"cpu.eip = (eip + {offset}) & {eip_mask}"]
                     + ast.unparse(module).splitlines())
    layout.globals_for(namespace)
    return layout.function(layout.plan(insns), steps, [])


def assemble(insns: List[Insn], eip_mask: int, default_size: int,
             namespace: Dict[str, Any], memory: Optional[str] = None,
             stack_size: Optional[int] = None) -> str:
    """The optimised ``block(cpu, eip, budget)`` as source: each instruction's cached
    snippet (``reference.blocks.snippets``) without the flag updates the block
    overwrites before reading them (every exit counts as the block's end: all flags
    live there), ``cpu.eip``/``cpu.insn`` set only where read, before an exit and at the
    end, memory accesses lowered for ``memory`` (``access.mode_of``; None leaves them
    calls), pushes and pops for SS.B = ``stack_size`` (checked on entry) when it is
    given; a flag setter just before a branch that leaves, whose flags are dead where
    the branch is not taken, computing EFLAGS only where it is
    (``reference.blocks.lazy_flags``); laid out by ``layout.function`` (a loop when it
    branches back to its start)."""
    shape = layout.plan(insns)
    pieces = [snippets.snippet(insn, default_size, memory, stack_size) for insn in insns]
    dead: List[FrozenSet[int]] = [frozenset()] * len(insns)
    fall_through: Dict[int, int] = {}  # exit -> flags read after it when not taken
    live = STATUS
    for k in reversed(range(len(insns))):
        if k in shape.exits:
            fall_through[k] = live
            live = STATUS
        dead[k], live = snippets.dead_updates(pieces[k], live)
    steps: List[List[str]] = []
    heads: List[int] = []  # lines of each step before its instruction's own code
    needed: Set[str] = set()
    starts = layout.offsets(insns)
    numbers = [snippets.constants(insn) if piece.symbolic else ()
               for insn, piece in zip(insns, pieces)]
    for k, (insn, piece) in enumerate(zip(insns, pieces)):
        made = snippets.text(piece, dead[k])
        needed |= made.names
        step = [f"# +{starts[k]}: {snippets.describe(insn)}"]
        offset = starts[k] + insn.length
        # cpu.insn where its code reads it; cpu.eip where read, and where the block
        # leaves or ends after it, unless the instruction itself then stores EIP (a
        # JMP, CALL or RET). Nothing after a block reads cpu.insn: run() and step()
        # set it for the next instruction they run, and a fault replays from the entry.
        bookkeeping = ([f"cpu.insn = i{k}"] if made.reads_insn else []) + [
            f"cpu.eip = eip + {offset} & {eip_mask}"]
        if k in shape.exits and made.branch is not None:  # set and leave where taken
            before, test, taken = (snippets.placed(part, k, numbers[k])
                                   for part in made.branch)
            flags = []
            setter = (snippets.fused(pieces[k - 1], dead[k - 1], made.branch, fall_through[k])
                      if k and heads[k - 1] >= 0 else None)
            if setter is not None:  # its flags computed only where the branch is taken
                kept, flags, test = (snippets.placed(part, k - 1, numbers[k - 1])
                                     for part in setter)
                steps[k - 1][heads[k - 1]:] = kept.splitlines()
                before, flags = "", flags.splitlines()
            heads.append(-1)
            step += before.splitlines() + [f"if {test}:"] + [
                "    " + line
                for line in flags + bookkeeping + taken.splitlines() + [layout.TAKEN]]
        else:
            if made.reads_eip or not made.sets_eip and (k == len(insns) - 1
                                                        or k in shape.exits):
                step += bookkeeping
            elif made.reads_insn:
                step += bookkeeping[:1]
            heads.append(-1 if k in shape.exits else len(step))
            step += snippets.placed(made.code, k, numbers[k]).splitlines()
        steps.append(step)
        snippets.own_objects(insn, k, namespace)
        snippets.globals_of(piece, namespace)
    prologue = access.prologue(needed)
    if any(piece.assumes_stack for piece in pieces):
        prologue[:0] = [f"if cpu.stack_size != {stack_size}:",
                        "    raise g_StackSizeChanged(cpu.stack_size)"]
        namespace["g_StackSizeChanged"] = StackSizeChanged
    access.globals_for(namespace)
    layout.globals_for(namespace)
    return layout.function(shape, steps, prologue)


def made(insns: List[Insn], default_size: int, namespace: Dict[str, Any],
         memory: Optional[str], stack_size: Optional[int],
         where: str) -> Tuple[str, List[Tuple[str, str, str]], Any]:
    """The optimised block of ``insns`` made: its source (``assemble``), where each of its
    module-level names comes from (what the disk cache keeps, ``optimize.ORIGINS``) and
    its code compiled under the file name ``where``. Here and in the block maker's
    child (``reference.blocks.background``)."""
    eip_mask = 0xFFFFFFFF if default_size == 32 else 0xFFFF
    text = assemble(insns, eip_mask, default_size, namespace, memory, stack_size)
    origins = [(alias, *ORIGINS[alias]) for alias in namespace if alias in ORIGINS]
    return text, origins, compile(text, where, "exec")


def compile_block(cpu: Cpu, linear: int, physical: int, optimize: bool = True,
                  with_source: bool = False, cached_only: bool = False,
                  longest: int = MAX_LENGTH) -> Optional[Block]:
    """A Block for the code at ``linear`` (first byte at ``physical``), or NO_BLOCK.
    ``with_source`` keeps the generated Python as text (blocks made by ``run()`` keep
    nothing of their AST: a boot compiles thousands). ``cached_only``: the block only if
    the disk cache (``cpu.block_cache``) has it, else None (nothing is compiled).
    ``longest``: at most that many instructions (1: the differential's one-instruction
    blocks, ``reference-blocks``; ``run()`` makes none shorter than two)."""
    if cpu.default_size != 32:  # 16-bit code (IP wraps at 64 KiB) stays interpreted
        return NO_BLOCK
    store = cpu.block_cache if optimize and not with_source else None
    window = store.window(cpu.mem, physical) if store is not None else None
    if cached_only and (store is None or not store.may_start(window)):
        return None  # no block was ever made or found where memory reads so
    memory = access.mode_of(cpu) if optimize else None
    hint = (store.hint_of(window, cpu.default_size, cpu.stack_size, memory)
            if store is not None else None)
    if cached_only and not store.may_have(hint):  # type: ignore[union-attr]
        return None  # nor in these modes (cache.py: the hints)
    insns = gather(cpu, linear, physical, longest)
    if len(insns) < min(2, longest):
        return NO_BLOCK
    namespace: Dict[str, Any] = {}
    eip_mask = 0xFFFFFFFF if cpu.default_size == 32 else 0xFFFF
    where = f"<block at physical {physical:#x}>"
    if optimize:
        key = (store.key([insn.raw for insn in insns], cpu.default_size, cpu.stack_size,
                         memory) if store is not None else "")
        maker = cpu.block_maker if store is not None else None
        # just made by the second process (kept there, no query), else the disk cache
        found = maker.take(key) if maker is not None else None
        if found is None and store is not None:
            found = store.get(key)
        if found is None and cached_only:
            return None
        if (found is None and maker is not None and cpu.icache.get(physical) is insns[0]
                and maker.request(cpu, key, insns, physical, cpu.stack_size, memory,
                                  where, hint)):
            return PENDING
        if found is not None:
            origins, code = found
            text = ""
            code = cache.renamed(code, where)
            for k, insn in enumerate(insns):
                snippets.own_objects(insn, k, namespace)
            cache.resolve(origins, namespace)
            namespace["g_StackSizeChanged"] = StackSizeChanged
            access.globals_for(namespace)
            layout.globals_for(namespace)
        else:
            text, origins, code = made(insns, cpu.default_size, namespace, memory,
                                       cpu.stack_size, where)
            if store is not None:
                store.put(key, origins, code)
        if store is not None:
            store.note(hint)
    else:
        text = generate(insns, eip_mask, namespace)
        code = compile(text, where, "exec")
    exec(code, namespace)  # noqa: S102 - our own generated code
    span = max(start + insn.length for start, insn in zip(layout.offsets(insns), insns))
    function = namespace["block"]
    run = function if residual_call is None else Opaque(function)
    return Block(run, len(insns), span, physical, text if with_source else "",
                 layout.plan(insns).loops)


def block_source(cpu: Cpu, linear: int, optimize: bool = True) -> Optional[str]:
    """The Python made for the block at ``linear`` in the CPU's current state (for
    reading; None if no block starts there). ``optimize=False``: the semantics inlined
    as they are, before the passes of ``reference.blocks.optimize``."""
    block = compile_block(cpu, linear, cpu.code_physical(linear), optimize, with_source=True)
    return block.source if block.length else None
