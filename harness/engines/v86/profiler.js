// Where a v86 boot's wall time goes, measured from inside the emulator: shared by the
// harness's Node runner (runner.js imports it) and the web page's worker (importScripts),
// so `x86lab boot --engine v86 --json` and `x86lab web measure --profile` split a boot the
// same way. harness/boot_profile.py turns the record into phases.
//
// It wraps v86's cpu.main_loop, the call that runs one slice of guest code (~100 k
// instructions) and returns; between slices v86 sleeps when the guest halted (HLT, waiting
// for a timer or an interrupt). So:
//   busy   = time inside main_loop (emulating the guest, devices included),
//   idle   = the rest of the wall clock (the guest waiting; plus the host's own event loop).
// After each slice it looks where the guest is, to find two moments no console shows:
//   "decompressor" the first slice that ends in protected mode between 1 MiB and 64 MiB,
//            where the protected-mode kernel is loaded and decompresses itself (v86 puts
//            the initrd at 64 MiB; SeaBIOS runs in the F segment, option ROMs at
//            0xC0000-0xEFFFF and its relocated code near the top of RAM, above 64 MiB
//            since v86 needs more RAM than that for an initrd); the kernel's short
//            real-mode setup before it counts as BIOS;
//   "kernel" the first slice that ends at a kernel virtual address (>= 0xC0000000,
//            i386 PAGE_OFFSET): the decompressed kernel runs.
// Each console line is stamped with the same clock, so the analysis can place the kernel's
// own lines (initcall_debug, "Run /init", the prompt) on the timeline.
//
// Written as a plain script that assigns one global, so it loads both as an ES module and
// through importScripts. Costs two clock reads per slice.
"use strict";

// now(): the caller's clock in ms (every time in the record is on it).
globalThis.x86labProfiler = function x86labProfiler(emulator, now) {
    const events = [];
    const lines = [];
    const LINE_LIMIT = 4000;
    let busy = 0;
    let slices = 0;
    let total = 0;
    let lastRaw = 0;
    let cpu = null;
    let seen = "bios";

    function instructions() {
        if (!cpu) return 0;
        const raw = cpu.instruction_counter[0] >>> 0;
        total += (raw - lastRaw) >>> 0;
        lastRaw = raw;
        return total;
    }
    function stamp() {
        return { t: now(), instructions: instructions(), busy };
    }
    function event(name) {
        events.push({ name, ...stamp() });
    }
    function watch(ip) {
        if (seen === "bios" && cpu.protected_mode[0] && ip >= 0x100000 && ip < 0x4000000) {
            seen = "decompressor";
            event("decompressor");
        }
        if (seen === "decompressor" && ip >= 0xc0000000) {
            seen = "kernel";
            event("kernel");
        }
    }

    emulator.add_listener("emulator-loaded", () => {
        cpu = emulator.v86.cpu;
        event("loaded");
        const inner = cpu.main_loop;
        cpu.main_loop = function () {
            const start = now();
            const sleep = inner.call(cpu);
            busy += now() - start;
            slices += 1;
            if (seen !== "kernel") watch(cpu.instruction_pointer[0] >>> 0);
            return sleep;
        };
    });
    emulator.add_listener("emulator-started", () => event("started"));

    let line = [];
    emulator.add_listener("serial0-output-byte", (byte) => {
        if (byte === 10) {
            if (lines.length < LINE_LIMIT) {
                lines.push({ ...stamp(), text: String.fromCharCode(...line) });
            }
            line = [];
        } else if (byte !== 13 && line.length < 200) {
            line.push(byte);
        }
    });

    return {
        // A copy of everything so far; `mark` names the moment (e.g. "prompt").
        report(mark) {
            const at = { name: mark, ...stamp() };
            return { events: [...events, at], lines: [...lines], slices };
        },
    };
};
