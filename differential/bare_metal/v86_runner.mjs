// Boots the bare-metal image (a Multiboot ELF) on v86 in Node through v86's own
// Multiboot loader and copies COM1 to stdout, byte for byte, until the runner prints
// "BM END" (or the time limit passes: exit status 3). The v86 package is the one the
// harness pins (harness/engines/v86/package.json, installed by `npm ci` there).
//
// Usage: node v86_runner.mjs IMAGE SECONDS BIOS VGA_BIOS

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const v86dir = path.join(here, "..", "..", "harness", "engines", "v86", "node_modules", "v86");
const { V86 } = await import(path.join(v86dir, "build", "libv86.mjs"));
const [imagePath, seconds, bios, vgaBios] = process.argv.slice(2);

function file(name) {
    const bytes = fs.readFileSync(name);
    return { buffer: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) };
}

const emulator = new V86({
    wasm_path: path.join(v86dir, "build", "v86.wasm"),
    memory_size: 32 * 1024 * 1024,
    vga_memory_size: 2 * 1024 * 1024,
    bios: file(bios),
    vga_bios: vgaBios ? file(vgaBios) : undefined,
    multiboot: file(imagePath),
    autostart: true,
    disable_keyboard: true,
    disable_mouse: true,
    disable_speaker: true,
});

let tail = "";
function finish(code) {
    emulator.stop();
    process.exit(code);
}
emulator.add_listener("serial0-output-byte", (byte) => {
    fs.writeSync(1, Buffer.from([byte]));  // unbuffered: a panic must not lose output
    tail = (tail + String.fromCharCode(byte)).slice(-16);
    if (tail.includes("BM END")) {
        finish(0);
    }
});
setTimeout(() => finish(3), Number(seconds) * 1000);
