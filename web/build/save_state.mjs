// Boots the site's image on v86 in Node, waits for the shell prompt and writes v86's
// save_state() snapshot, so the page can start at the prompt instead of booting.
//
// Usage: node save_state.mjs CONFIG_JSON
//   CONFIG_JSON = {"v86_module", "wasm", "bios", "vga_bios", "bzimage", "initrd" (paths),
//                  "cmdline", "memory_mib", "vga_memory_mib", "prompt", "quiet_ms",
//                  "timeout_s", "prepare" (a shell command run once at the prompt before
//                  the snapshot, or ""), "out" (path of the raw state),
//                  optionally "hda": {"path", "size"} (the page's lazy disk),
//                  "net_device": {"type"} (the page's NIC)}
// The page's V86 options must match these (memory, devices), which the manifest records.
// Exits 0 with the state written, 1 if the prompt never came.

import fs from "node:fs";
import { pathToFileURL } from "node:url";

const config = JSON.parse(process.argv[2] || "{}");
const { V86 } = await import(pathToFileURL(config.v86_module).href);

function image(file) {
    const bytes = fs.readFileSync(file);
    return { buffer: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) };
}

const MiB = 1024 * 1024;
const emulator = new V86({
    wasm_path: config.wasm,
    memory_size: config.memory_mib * MiB,
    vga_memory_size: config.vga_memory_mib * MiB,
    bios: image(config.bios),
    vga_bios: image(config.vga_bios),
    bzimage: image(config.bzimage),
    initrd: image(config.initrd),
    cmdline: config.cmdline,
    net_device: config.net_device, // the page's NIC, without a relay behind it
    autostart: true,
    disable_keyboard: true,
    disable_mouse: true,
    disable_speaker: true,
    // The same device set as the page: a state restores only into the devices it had.
    ...(config.hda ? { hda: { url: config.hda.path, async: true, size: config.hda.size } } : {}),
});

let tail = "";
let prompts = 0;
let quietTimer = null;
let prepared = !config.prepare;

// Act once the shell has printed its prompt and then gone quiet (its line editor may
// still be writing a terminal query right after the prompt): first run "prepare" if any,
// then, at the next prompt, save.
// (Quiet alone is not enough: "prepare" itself is silent while it works.)
async function atPrompt() {
    if (!prepared) {
        prepared = true;
        prompts = 0;
        emulator.serial0_send(config.prepare + "\n");
        return;
    }
    if (prompts === 0) return;
    const state = await emulator.save_state();
    fs.writeFileSync(config.out, new Uint8Array(state));
    emulator.stop();
    process.exit(0);
}

emulator.add_listener("serial0-output-byte", (byte) => {
    tail = (tail + String.fromCharCode(byte)).slice(-256);
    if (tail.endsWith(config.prompt)) {
        prompts += 1;
        tail = "";
    }
    if (prompts > 0) {
        clearTimeout(quietTimer);
        quietTimer = setTimeout(atPrompt, config.quiet_ms);
    }
});

setTimeout(() => {
    process.stderr.write(`no prompt within ${config.timeout_s} s; console tail: ${tail}\n`);
    process.exit(1);
}, config.timeout_s * 1000);
