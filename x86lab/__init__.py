"""x86lab: the command line and the few helpers shared by every part (cache location)."""
