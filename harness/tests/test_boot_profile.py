"""harness.boot_profile: phases and initcalls from a profiler.js record (made up here, with
the expected figures worked out by hand beside it)."""

from __future__ import annotations

from harness.boot_profile import analyse, format_profile, with_download


def _at(t: float, instructions: int, busy: float) -> dict:
    return {"t": t, "instructions": instructions, "busy": busy}


def _line(t: float, instructions: int, busy: float, text: str) -> dict:
    return {**_at(t, instructions, busy), "text": text}


RECORD = {
    "events": [
        {"name": "loaded", **_at(100, 0, 0)},
        {"name": "started", **_at(101, 0, 0)},
        {"name": "decompressor", **_at(300, 2_000_000, 150)},
        {"name": "kernel", **_at(450, 16_000_000, 290)},
        {"name": "prompt", **_at(2000, 60_000_000, 1500)},
    ],
    "lines": [
        _line(500, 17_000_000, 330, "Linux version 6.1"),
        _line(600, 18_000_000, 400, "calling  pty_init+0x0/0x10 @ 1"),
        _line(1100, 50_000_000, 880, "initcall pty_init+0x0/0x10 returned 0 after 500000 usecs"),
        _line(1150, 50_100_000, 900, "calling  ata_init+0x0/0x10 @ 1"),
        _line(1160, 50_200_000, 905, "initcall ata_init+0x0/0x10 returned 0 after 10000 usecs"),
        _line(1400, 51_000_000, 1000, "Freeing unused kernel image (initmem) memory: 232K"),
        _line(1450, 51_500_000, 1040, "Run /init as init process"),
    ],
    "slices": 600,
}


def test_phases_split_wall_time_into_busy_and_idle():
    profile = analyse(RECORD)
    phases = {p["name"]: p for p in profile["phases"]}
    assert list(phases) == ["load", "bios", "decompressor", "kernel", "init"]
    # load: runner start (0) to loaded (100 ms), nothing emulated yet
    assert phases["load"]["wall_ms"] == 100 and phases["load"]["busy_ms"] == 0
    # bios: loaded 100 -> decompressor 300: 200 ms wall, 150 busy, 50 idle, 2 M instr
    assert (phases["bios"]["wall_ms"], phases["bios"]["busy_ms"],
            phases["bios"]["idle_ms"]) == (200, 150, 50)
    assert phases["bios"]["instructions"] == 2_000_000
    # kernel: 450 -> "Run /init" at 1450: 1000 ms, busy 1040 - 290 = 750, idle 250
    assert (phases["kernel"]["wall_ms"], phases["kernel"]["idle_ms"]) == (1000, 250)
    assert phases["kernel"]["instructions"] == 51_500_000 - 16_000_000
    # init: 1450 -> prompt 2000: 550 ms wall, busy 1500 - 1040 = 460, idle 90
    assert phases["init"]["idle_ms"] == 90
    # idle of the emulated phases: 50 + (150 - 140 = 10) + 250 + 90
    assert profile["idle_ms"] == 400
    assert profile["total_ms"] == 2000 and profile["instructions"] == 60_000_000


def test_initcalls_slowest_first_and_the_wait_for_async_probes():
    profile = analyse(RECORD)
    names = [call["name"] for call in profile["initcalls"]]
    assert names == ["pty_init+0x0/0x10", "ata_init+0x0/0x10"]
    pty = profile["initcalls"][0]
    assert (pty["wall_ms"], pty["busy_ms"], pty["idle_ms"]) == (500, 480, 20)
    assert pty["instructions"] == 32_000_000 and pty["guest_us"] == 500000
    # last initcall returned at 1160; "Freeing unused kernel" at 1400
    assert profile["async_wait_ms"] == 240


def test_a_page_profile_starts_with_its_download():
    profile = with_download(analyse(RECORD, start_ms=40), download_ms=40)
    assert [p["name"] for p in profile["phases"]][:2] == ["download", "load"]
    assert profile["phases"][1]["wall_ms"] == 60  # 40 -> loaded at 100
    assert profile["total_ms"] == 2000 and "pty_init" in format_profile(profile)


def test_a_boot_without_initcall_lines_has_no_initcall_table():
    record = {**RECORD, "lines": RECORD["lines"][:1] + RECORD["lines"][-1:]}
    profile = analyse(record)
    assert profile["initcalls"] == [] and "async_wait_ms" not in profile
    assert "slowest initcalls" not in format_profile(profile)


def test_a_restored_state_has_load_restore_and_prompt():
    record = {"events": [{"name": "loaded", **_at(300, 0, 0)},
                         {"name": "started", **_at(420, 0, 0)},
                         {"name": "prompt", **_at(470, 900_000, 35)}],
              "lines": [], "slices": 9}
    profile = with_download(analyse(record, start_ms=250), download_ms=250)
    assert [(p["name"], p["wall_ms"]) for p in profile["phases"]] == [
        ("download", 250), ("load", 50), ("restore", 120), ("prompt", 50)]
    assert profile["phases"][-1]["idle_ms"] == 15 and profile["total_ms"] == 470
    assert profile["idle_ms"] == 15  # restore is host work, not the guest waiting


def test_a_mark_before_the_download_ends_counts_from_its_end():
    """A throttled page from the state: v86 loaded at 300 ms, but the state's last byte
    came at 1,150 ms and restore_state ran to 1,220. Restore is those 70 ms, not the
    920 ms since loaded (850 of them the download's), and the phases add up."""
    record = {"events": [{"name": "loaded", **_at(300, 0, 0)},
                         {"name": "started", **_at(1220, 0, 0)},
                         {"name": "prompt", **_at(1270, 900_000, 35)}],
              "lines": [], "slices": 9}
    profile = with_download(analyse(record, start_ms=1150), download_ms=1150)
    assert [(p["name"], p["wall_ms"]) for p in profile["phases"]] == [
        ("download", 1150), ("load", 0), ("restore", 70), ("prompt", 50)]
    assert sum(p["wall_ms"] for p in profile["phases"]) == profile["total_ms"] == 1270
