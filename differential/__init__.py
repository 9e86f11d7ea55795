"""Differential testing of the reference CPU against Unicorn (and, later, other runners)."""
