// Boots a Linux kernel + initrd on v86 headless in Node and bridges its first serial
// port to this process's stdin/stdout as raw bytes, so the Python harness can treat v86
// exactly like `qemu-system-i386 -serial stdio`.
//
// Usage: node runner.js CONFIG_JSON
//   CONFIG_JSON = {"bios", "vga_bios", "bzimage", "initrd" (paths), "cmdline",
//                  "memory_mib", "stages": [[name, pattern], ...],
//                  "net_device": v86's option, e.g. {"type": "ne2k", "relay_url":
//                  "wisp://127.0.0.1:8001/"} (Node 20 needs --experimental-websocket)}
//
// Metrics go to stderr as JSON lines prefixed "X86LAB " (stderr, because stdout is the
// guest's serial line and must stay byte-exact):
//   {"event": "started", ...}         once the emulator runs
//   {"event": "stage", "name": ...}   when the serial output first shows a stage pattern,
//                                      stages matched in the order given
//   {"event": "counter", ...}         on SIGUSR1 (on demand) and at exit
//   {"event": "profile", ...}         once, at the last stage: profiler.js's record (busy
//                                      and idle time, the setup/kernel moments, every
//                                      console line stamped), for harness/boot_profile.py
// Each carries "instructions" (guest instructions since power-on) and "t" (seconds since
// this script started).
//
// v86's own counter is a wrapping 32-bit register (a Debian kernel boot is > 2^32), so we
// poll it often and accumulate the deltas into a 53-bit-safe Number.

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { V86 } from "v86";
import "./profiler.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const config = JSON.parse(process.argv[2] || "{}");
const t0 = process.hrtime.bigint();

function seconds() {
    return Number(process.hrtime.bigint() - t0) / 1e9;
}

function image(file) {
    const bytes = fs.readFileSync(file);
    return { buffer: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) };
}

function report(record) {
    process.stderr.write("X86LAB " + JSON.stringify({ ...record, t: seconds() }) + "\n");
}

const emulator = new V86({
    wasm_path: path.join(here, "node_modules", "v86", "build", "v86.wasm"),
    memory_size: config.memory_mib * 1024 * 1024,
    vga_memory_size: 2 * 1024 * 1024,
    bios: image(config.bios),
    vga_bios: config.vga_bios ? image(config.vga_bios) : undefined,
    bzimage: image(config.bzimage),
    initrd: config.initrd ? image(config.initrd) : undefined,
    cmdline: config.cmdline,
    net_device: config.net_device,
    autostart: true,
    disable_keyboard: true,
    disable_mouse: true,
    disable_speaker: true,
});

const profiler = globalThis.x86labProfiler(emulator, () => seconds() * 1000);

// --- the 64-bit instruction count built from the wrapping 32-bit counter ------------------
let total = 0;
let lastRaw = 0;
function instructions() {
    const raw = emulator.get_instruction_counter();
    total += (raw - lastRaw) >>> 0;
    lastRaw = raw;
    return total;
}
const poller = setInterval(instructions, 20);

// --- serial out: batch bytes per event-loop turn, watch for stage patterns ---------------
const stages = config.stages || [];
let nextStage = 0;
let tail = "";
let pending = [];
emulator.add_listener("serial0-output-byte", (byte) => {
    if (pending.length === 0) setImmediate(flush);
    pending.push(byte);
    if (nextStage < stages.length) {
        tail = (tail + String.fromCharCode(byte)).slice(-256);
        const [name, pattern] = stages[nextStage];
        if (tail.endsWith(pattern)) {
            report({ event: "stage", name, instructions: instructions() });
            nextStage += 1;
            tail = "";
            if (nextStage === stages.length) report({ event: "profile", ...profiler.report(name) });
        }
    }
});
function flush() {
    const chunk = Buffer.from(pending);
    pending = [];
    process.stdout.write(chunk);
}

emulator.add_listener("emulator-started", () => {
    report({ event: "started", instructions: instructions() });
});

// --- serial in ----------------------------------------------------------------------------
process.stdin.on("data", (chunk) => emulator.serial_send_bytes(0, new Uint8Array(chunk)));
process.stdin.on("end", () => finish(0));

// --- stopping -----------------------------------------------------------------------------
process.on("SIGUSR1", () => report({ event: "counter", instructions: instructions() }));
process.on("SIGTERM", () => finish(0));
process.on("SIGINT", () => finish(130));

let finished = false;
function finish(code) {
    if (finished) return;
    finished = true;
    clearInterval(poller);
    report({ event: "counter", instructions: instructions(), final: true });
    if (pending.length) flush();
    emulator.stop();
    process.stdout.write("", () => process.exit(code));
}
