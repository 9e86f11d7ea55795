"""Boots Linux on emulators (v86, QEMU, later our reference) and checks it from the console.

Layers, each usable alone: ``engines`` (start an image -> a serial byte stream),
``console`` (stages, ``run``/``run_check``/``write_file`` over that stream), ``checks``
(behaviour every booted guest must show), ``report`` (timings and checks against a
baseline). ``guest.boot`` ties them together for the CLI, the fixtures and the report.
"""
