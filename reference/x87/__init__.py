"""The x87 FPU: 80-bit values as integers, its state and its instructions (SDM Vol. 1, ch. 8)."""
