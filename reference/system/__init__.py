"""The system level of the CPU: what SDM Vol. 3A describes, one mechanism per file.

=========================  ================================================================
``control_registers.py``   CR0/CR2/CR3/CR4 (ch. 2.5): mode switch, paging on/off, TLB flushes
``descriptors.py``         segment descriptors and the GDT/LDT lookup (ch. 3.4-3.5)
``segmentation.py``        selector loads into hidden caches with their checks (ch. 5)
``far_transfers.py``       far JMP/CALL/RET through code segments and call gates (ch. 5.8)
``tss.py``                 the task-state segment: inner-level stacks, I/O bit map (7.2)
``task_switch.py``         hardware task switches, 32- and 16-bit TSSs (7.3, 7.6)
``debug_registers.py``     DR0-DR7 as MOV sees them (ch. 17.2)
``exceptions.py``          interrupt/exception delivery through the IDT, #DF, shutdown (ch. 6)
``paging.py``              32-bit paging, 4 KiB and 4 MiB pages, #PF (ch. 4.3)
``tlb.py``                 the translation cache and what flushes it (ch. 4.10)
``msr.py``                 model-specific registers (ch. 9-10, Vol. 4)
=========================  ================================================================

The instructions that use these (MOV CRn, LGDT, LTR, LAR, RDMSR, SYSENTER...) are in
``reference/semantics/system.py``; their encodings are rows of ``reference/isa/table.py``.
"""
