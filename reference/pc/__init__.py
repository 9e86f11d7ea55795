"""The reference as a PC: RAM, an I/O bus, the legacy devices Linux probes, a virtual
clock and the Linux boot protocol (issue 13). ``reference.pc.machine.Pc`` puts them
together; ``python -m reference.pc`` runs one with the serial console on stdio.
"""
