"""The bare-metal oracle of system-level behaviour (issue 17): cases built on the host
(``cases.py``), run by a Multiboot image of our own (``runner.S``, ``image.py``) on QEMU,
Bochs and the reference PC (``engines.py``), compared and judged (``compare.py``).
``python -m differential.bare_metal --help`` runs it; differential/README.md describes it."""
