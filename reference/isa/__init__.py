"""The instruction set: the opcode table (``table.FORMS``), its vocabulary (``form``),
the decoder, and the undefined-flag rules' evaluator."""
