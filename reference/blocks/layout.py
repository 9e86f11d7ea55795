"""How a block's instructions are laid out in its generated function (issue 14): in a
straight line, or as a loop that runs the block again for as long as it branches back
to its own first instruction, with side exits where a conditional branch in the middle
is taken.

Why: ``run()`` dispatches one block per call, and a block used to end at every near
branch, so a hot loop paid the dispatch, the prologue (segment caches, TLB maps, RAM)
and ``run()``'s register snapshot on every iteration. About 13 M of the tiny boot's
44.6 M instructions are the kernel's LZ4 decompressor, all tight loops.

The generated ``block(cpu, eip, budget)`` returns how many instructions it ran (at most
``budget``; ``run()`` calls it only when one pass, ``Block.length``, fits). Where control
may leave the straight line, the code compares ``cpu.eip`` (which the branch's own
inlined semantics set) with the fall-through address, so what is taken is decided at run
time by the semantics, never by this module; the branch targets read from the
instructions only decide the shape:

- a conditional branch in the middle (``Jcc``, ``LOOP``, ``JCXZ``...): taken, the block
  returns the count so far (a side exit), and ``run()`` goes on at the target;
- a branch whose target is the block's first instruction, in a loop block: taken, the
  next pass starts if it fits the budget, else the block returns.

Exactness. Every exit leaves the state the interpreter has there: registers and memory
are written in place, EIP by the branch, and the dead-flag pass treats each exit like
the block's end (all status flags live). Each pass of a loop keeps its own entry state
(registers, EFLAGS, and the write journal emptied), so when anything is raised in pass
N (a fault, a write to the block's own page, ``SelfModified``), the block restores the
state at the start of pass N and raises ``BlockStopped`` with the instructions of the
passes before it; ``run()`` counts those and replays pass N through ``step()``, as it
does for a straight block. Interrupts: ``run()`` checks them between blocks, and nothing
inside a block can raise one or change IF, TF or the interrupt shadow (I/O, IF changes,
segment loads and system instructions are never in a block; the PC's devices raise
their lines between ``run()`` batches), and the budget ends a loop on the very
instruction where the interpreter would stop, so the virtual clock sees no difference.
"""

from __future__ import annotations

from typing import Any, Dict, List, NamedTuple, Optional

CONDITIONAL = frozenset({"Jcc", "LOOP", "LOOPE", "LOOPNE", "JCXZ"})
"""Branches whose not-taken path is the next instruction: a block may go on past them."""
SIDE_EXITS = True
"""Whether ``compiler.gather`` goes on past a conditional branch (on by default: fewer
dispatches, and loops whose body branches), and through a JMP or CALL to a target on
the same page (``THROUGH``). Off, a block ends at every near branch."""
THROUGH = frozenset({"JMP", "CALL"})
"""Unconditional near branches a block goes through to their target when it is on the
same page and not already in the block: the instructions there follow the branch in
the block, as the code at a JCC's fall-through does. Why: on the tiny boot, blocks
that ended at a JMP or CALL to their own page were 48 % of the 3.25 M block calls
(7 instructions a call), each a dispatch through ``run()``."""


class Exit(NamedTuple):
    """Where control may leave the straight line after instruction ``k``."""

    end: int     # offset of the next instruction from the block's start (the fall-through)
    again: bool  # the branch goes back to the block's first instruction (a loop block)


class Plan(NamedTuple):
    loops: bool
    exits: Dict[int, Exit]  # every instruction but the last that may branch away
    back: bool  # the last instruction may branch back to the start (a loop block)


def target_offset(insn: Any, end: int) -> Optional[int]:
    """The offset from the block's start of a relative 32-bit branch's target (``end``:
    the offset after the branch), or None for anything else."""
    from reference.operands import Rel

    operands = insn.operands
    if len(operands) == 1 and isinstance(operands[0], Rel) and operands[0].size == 32:
        return end + operands[0].disp
    return None


def offsets(insns: List[Any]) -> List[int]:
    """Each instruction's offset from the block's start: the end of the one before, or,
    after a JMP or CALL that the block went through (any but its last,
    ``compiler.gather``), that branch's target."""
    result: List[int] = []
    offset = 0
    for insn in insns:
        result.append(offset)
        end = offset + insn.length
        target = target_offset(insn, end) if insn.form.mnemonic in THROUGH else None
        offset = end if target is None else target
    return result


def plan(insns: List[Any]) -> Plan:
    """The shape of the block made of ``insns`` (see the module docstring)."""
    from reference.blocks.compiler import ENDS_BLOCK

    ends = [start + insn.length for start, insn in zip(offsets(insns), insns)]
    targets = [target_offset(insn, end) if insn.form.mnemonic in ENDS_BLOCK else None
               for insn, end in zip(insns, ends)]  # a JMP gone through never targets 0
    loops = 0 in targets
    exits = {k: Exit(ends[k], loops and targets[k] == 0)
             for k, insn in enumerate(insns[:-1]) if insn.form.mnemonic in CONDITIONAL}
    return Plan(loops, exits, loops and targets[-1] == 0)


TAKEN = "# taken: leave"
"""A line a branch's step may hold (``compiler.assemble``), inside the code its branch
runs when taken: the block's exit goes there instead of after the step, and is not
guarded by comparing ``cpu.eip`` with the fall-through."""


def _exit(step: List[str], leave: List[str], end: int) -> List[str]:
    """``step`` with the exit ``leave``: at its ``TAKEN`` line, or after it, taken when
    EIP is not the fall-through ``end``."""
    for n, line in enumerate(step):
        if line.strip() == TAKEN:
            pad = line[:len(line) - len(line.lstrip())]
            return step[:n] + [pad + part for part in leave] + step[n + 1:]
    return step + [f"if cpu.eip != eip + {end}:  # taken"] + _indent(leave, 1)


def function(shape: Plan, steps: List[List[str]], prologue: List[str]) -> str:
    """The source of ``block(cpu, eip, budget)``: ``prologue`` (lines at indentation 0,
    run once per call) and each instruction's lines (``steps``, at indentation 0), laid
    out as ``shape`` says."""
    count = len(steps)
    lines = ["def block(cpu, eip, budget):", "    regs = cpu.regs"] + _indent(prologue, 1)
    if not shape.loops:
        for k, step in enumerate(steps):
            if k in shape.exits:
                step = _exit(step, [f"return {k + 1}"], shape.exits[k].end)
            lines += _indent(step, 1)
        return "\n".join(lines + [f"    return {count}"]) + "\n"
    lines += [
        "    journal = cpu.journal",
        f"    last = budget - {count}  # a pass starts only while a whole one fits",
        "    ran = 0",
        "    try:",
        "        while True:",
        "            entry_regs = regs[:]  # this pass's entry state, for a replay",
        "            entry_flags = cpu.flags.value",
        "            if journal:",
        "                journal.clear()"]
    for k, step in enumerate(steps):
        exit_ = shape.exits.get(k)
        if exit_ is not None and exit_.again:
            step = _exit(step, [f"ran += {k + 1}",
                                "if cpu.eip != eip or ran > last:",
                                "    return ran",
                                "continue"], exit_.end)
        elif exit_ is not None:
            step = _exit(step, [f"return ran + {k + 1}"], exit_.end)
        lines += _indent(step, 3)
    if shape.back:
        lines += _indent([f"ran += {count}",
                          "if cpu.eip != eip or ran > last:",
                          "    return ran"], 3)
    else:
        lines += _indent([f"return ran + {count}"], 3)
    lines += ["    except BaseException as error:",
              "        g_restore(cpu, eip, entry_regs, entry_flags)",
              "        raise g_BlockStopped(ran) from error"]
    return "\n".join(lines) + "\n"


def _indent(lines: List[str], levels: int) -> List[str]:
    pad = "    " * levels
    return [pad + line if line else line for line in lines]


def globals_for(namespace: Dict[str, Any]) -> None:
    """The module-level names a loop block uses."""
    from reference.step import BlockStopped, _restore

    namespace["g_restore"] = _restore
    namespace["g_BlockStopped"] = BlockStopped
