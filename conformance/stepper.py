"""Which vectors the stepper can run in a Linux user process, and what of their outcome
user mode can observe: the conformance side of the native stepper, whose one driver is
``differential/runners/native_runner.py`` (build, encode, run, parse).
"""

from __future__ import annotations

from dataclasses import replace

from differential.runners.native_runner import RF, TF, int_number
from ground.case import Case

IF, IOPL = 0x200, 0x3000
# User mode cannot observe TF (our own single-step sets it) or RF (the kernel owns it).
USER_UNOBSERVABLE = TF | RF

# Forms user mode cannot express, and why (classified, never failed).
TF_FORMS = ("PUSHF",)  # pushes EFLAGS with the TF our single-step set
SELECTOR_FORMS = ("PUSH_CS", "PUSH_DS", "PUSH_ES", "PUSH_FS", "PUSH_GS", "PUSH_SS",
                  "POP_DS", "POP_ES", "POP_FS", "POP_GS", "POP_SS", "MOV_Evw_Sw", "MOV_Sw_Ew")
PRIVILEGED_FORMS = ("HLT", "CLI", "STI", "IN_AL_Ib", "IN_eAX_Ib", "OUT_Ib_AL", "OUT_Ib_eAX",
                    "IN_AL_DX", "IN_eAX_DX", "OUT_DX_AL", "OUT_DX_eAX", "INS_Yb_DX",
                    "INS_Yz_DX", "OUTS_DX_Xb", "OUTS_DX_Xz")


def inexpressible_reason(case: Case) -> str:
    """Why user mode cannot run ``case`` as the vector means it ("" when it can)."""
    if case.mode != "prot32":
        return "real-mode vector (needs vm86)"
    form = case.form or ""
    if form in SELECTOR_FORMS:
        return "reads or loads a selector (user selectors differ from the vector's)"
    if form in TF_FORMS:
        return "pushes EFLAGS.TF, which the single-step sets"
    if form in PRIVILEGED_FORMS:
        return "privileged at CPL3 (raises #GP in user mode)"
    if int_number(case.code) == 0x80:
        return "INT 0x80 is Linux's system call gate"
    if case.regs.get("eflags", 0) & (IF | IOPL) != IF:
        return "IF/IOPL differ from user mode's"
    return ""


def comparable_case(case: Case) -> Case:
    """The case with the EFLAGS bits user mode cannot observe added to the mask (TF, RF;
    for POPF also IF and IOPL, which POPF silently keeps at CPL3)."""
    extra = USER_UNOBSERVABLE | (IF | IOPL if (case.form or "").startswith("POPF") else 0)
    return replace(case, undefined_flags=case.undefined_flags | extra)
