"""x86lab: the thin command line; every sub-command calls into a part (nothing imports it)."""
