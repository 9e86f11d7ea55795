// Runs v86 in a Web Worker, off the page's main thread. The page may first post
//   {type: "preload", libv86: URL, wasm: URL, module: bool, profiler: URL | null}
//   (components/earlyStart.js)
//   and with module: true then {type: "module", module: WebAssembly.Module | null}; then
//   {type: "fetch-state", state: {url, file, size, sha256}, body?: ReadableStream,
//   error?: reason} (the <head> script's restore, which made the request itself: body, its
//   response's body, or error, why there is none; with neither this worker fetches it):
//   this worker reads and checks the state itself, off the page's main thread, which is
//   busy with React meanwhile; progress comes back as the event "state-progress"
//   [loaded, size];
//   {type: "start", libv86: URL, options: V86 options, restore: bool, poke: bool}   once;
//   with restore, the options have autostart: false and this restores the state once v86
//   has loaded: the one fetch-state fetched, else the one that follows,
//   {type: "state", state: ArrayBuffer} or {type: "state", error: reason} (as
//   components/savedState.js does on the main thread; a failure on either
//   side -> event "state-failed" with the reason), and with poke sends the shell a
//   newline as soon as it runs (the page's <head> script starts the restore before the
//   page can listen: the fresh prompt must not wait for it),
//   {type: "input", bytes: Uint8Array} | {type: "send", text} | {type: "restart"},
//   {type: "profile"} (with `profiler: URL` in start: the boot profile so far, posted
//   back as the event "profile": see harness/engines/v86/profiler.js);
// the worker posts back the events the page listens to, as {type: "event", name, data},
// with serial output batched per event-loop turn. Used with ?engine=worker (see
// components/workerV86.js); URLs in the options resolve against this file's folder.
"use strict";

let emulator = null;
let profiler = null;
let pending = [];

function forward(name) {
    emulator.add_listener(name, (data) => postMessage({ type: "event", name, data }));
}

function flush() {
    const bytes = new Uint8Array(pending);
    pending = [];
    postMessage({ type: "event", name: "serial0-output-bytes", data: bytes }, [bytes.buffer]);
}

let stateArrived = null;
const state = new Promise((resolve, reject) => (stateArrived = { resolve, reject }));
state.catch(() => {}); // handled once v86 has loaded

// Profile times are absolute (ms since the epoch), so the page can put them on its own
// clock: a worker's performance.now() counts from the worker's start.
function absoluteNow() {
    return performance.timeOrigin + performance.now();
}

// The files this worker fetched (v86's boot files, libv86 and the profiler), absolute.
function downloads() {
    return performance.getEntriesByType("resource").map((entry) => ({
        name: entry.name,
        start: performance.timeOrigin + entry.startTime,
        end: performance.timeOrigin + entry.responseEnd,
        bytes: entry.transferSize,
    }));
}

// v86 in a browser waits between its slices of guest code (~100 k instructions, about a
// millisecond) by a round trip through a helper worker of its own (setTimeout(0) would be
// clamped to 4 ms). On a busy machine that other thread is often not scheduled in time:
// the boot profile showed 1.4 s of a 2.1 s kernel phase idle in the page, 0.24 s in Node.
// A MessageChannel within this thread gives the same unclamped turn of the event loop
// without a second thread; waits with a delay (the guest halted) stay on setTimeout.
function yieldInThisThread(machine) {
    const channel = new MessageChannel();
    channel.port1.onmessage = (message) => machine.yield_callback(message.data);
    machine.yield = (delay, tick) => {
        if (delay < 1) channel.port2.postMessage(tick);
        else setTimeout(() => machine.yield_callback(tick), delay);
    };
    // v86 may already have started (it sends emulator-started before emulator-loaded) and
    // be waiting for the helper's answer: take the next turn here, then stop the helper.
    if (machine.running) machine.next_tick(0);
    machine.unregister_yield();
}

// v86 fetches its wasm whole and then compiles it; compiling while the bytes arrive
// (instantiateStreaming, which needs application/wasm) overlaps the two. Any failure
// (a host sending another type) falls back to v86's own way: bytes, then compile.
let compiled = null; // the wasm module compiling since "preload", or null
let moduleArrived = null; // resolves `compiled` with the page's module (or null)

function streamingWasm(url) {
    return async (imports) => {
        const module = compiled && (await compiled);
        if (module) return (await WebAssembly.instantiate(module, imports)).exports;
        try {
            return (await WebAssembly.instantiateStreaming(fetch(url), imports)).instance.exports;
        } catch (e) {
            const bytes = await (await fetch(url)).arrayBuffer();
            return (await WebAssembly.instantiate(bytes, imports)).instance.exports;
        }
    };
}

// The saved state from `url`, checked against the manifest's size and sha256 (the same
// checks and reasons as components/savedState.js fetchState); progress is posted at each
// MiB and at the end, not per chunk, so the page's main thread is not kept busy.
// body: the response's body as a stream when the page's <head> script made the request
// (earlyStart.js: it leaves before this thread runs), else fetched here.
async function fetchStateHere({ url, file, size, sha256 }, body) {
    let response = { ok: true, body };
    try {
        if (!body) response = await fetch(url);
    } catch (e) {
        throw new Error(`${file}: download failed (${e.message || e})`);
    }
    if (!response.ok) throw new Error(`${file}: HTTP ${response.status}`);
    const bytes = new Uint8Array(size);
    let loaded = 0;
    let reported = 0;
    const report = () => {
        reported = loaded;
        postMessage({ type: "event", name: "state-progress", data: [loaded, size] });
    };
    try {
        const reader = response.body.getReader();
        for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            if (loaded + value.length > size) throw new Error(`longer than ${size} bytes`);
            bytes.set(value, loaded);
            loaded += value.length;
            if (loaded - reported >= 1 << 20) report();
        }
    } catch (e) {
        throw new Error(`${file}: download failed (${e.message || e})`);
    }
    report();
    if (loaded !== size) throw new Error(`${file}: truncated (${loaded} of ${size} bytes)`);
    if (self.crypto?.subtle) {
        const digest = await crypto.subtle.digest("SHA-256", bytes);
        const hex = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0"));
        if (hex.join("") !== sha256) throw new Error(`${file}: sha256 does not match the manifest`);
    }
    return bytes.buffer;
}

function fail(reason) {
    postMessage({ type: "event", name: "state-failed", data: reason });
}

// v86's restore_state first zeroes all of the guest's memory (128 MiB), then writes the
// state's non-zero pages. Here it restores into a machine that has never run: v86 allocated
// its memory zero-filled, and its own setup writes only below 1 MiB (one byte at 0xefdc
// with the page's options, v86 0.5.462), since a restore is given no BIOS, kernel or
// initrd to load. So only that first MiB is zeroed: touching the rest made the operating
// system commit and clear 127 MiB of fresh pages, ~60-90 of the ~150 ms v86 took for the
// first restore in Node (web/tests/test_fresh_restore.py checks both facts). Any later
// restore (none today) gets v86's own full zeroing.
const SETUP_MEMORY = 1 << 20;

async function restoreIntoFreshMachine(machine, bytes) {
    const cpu = machine.v86 && machine.v86.cpu;
    const zero = cpu && cpu.zero_memory;
    if (typeof zero !== "function") return machine.restore_state(bytes);
    cpu.zero_memory = (start, length) => zero(start, Math.max(0, Math.min(length, SETUP_MEMORY - start)));
    try {
        return await machine.restore_state(bytes);
    } finally {
        cpu.zero_memory = zero;
    }
}

function restoreWhenLoaded(poke) {
    emulator.add_listener("emulator-loaded", async () => {
        let bytes;
        try {
            bytes = await state;
        } catch (e) {
            fail(e.message);
            return;
        }
        try {
            await restoreIntoFreshMachine(emulator, bytes);
        } catch (e) {
            fail(`v86 could not restore it (${e.message || e})`);
            return;
        }
        emulator.run();
        if (poke) emulator.serial0_send("\n");
    });
}

self.onmessage = (message) => {
    const msg = message.data;
    if (msg.type === "fetch-state") {
        if (msg.error) stateArrived.reject(new Error(msg.error));
        else fetchStateHere(msg.state, msg.body).then(stateArrived.resolve, stateArrived.reject);
    } else if (msg.type === "preload") {
        // Sent by the page's <head> script as soon as the manifest names the files:
        // libv86 and the wasm compile while React is still loading. With module: true
        // the page compiles the wasm and posts it ({type: "module", module}; null if that
        // failed, and v86's wasm is then fetched here).
        if (msg.module) compiled = new Promise((resolve) => (moduleArrived = resolve));
        else compiled = WebAssembly.compileStreaming(fetch(msg.wasm)).catch(() => null);
        importScripts(msg.libv86); // blocks this thread: the wasm request goes out first
        if (msg.profiler) importScripts(msg.profiler); // not later, in the restore's path
    } else if (msg.type === "module") {
        moduleArrived(msg.module);
    } else if (msg.type === "start") {
        if (!self.V86) importScripts(msg.libv86);
        emulator = new self.V86({ ...msg.options, wasm_fn: streamingWasm(msg.options.wasm_path) });
        emulator.add_listener("emulator-loaded", () => yieldInThisThread(emulator.v86));
        if (msg.profiler) {
            if (!self.x86labProfiler) importScripts(msg.profiler);
            profiler = self.x86labProfiler(emulator, absoluteNow);
        }
        ["download-progress", "download-error", "emulator-started"].forEach(forward);
        if (msg.restore) restoreWhenLoaded(Boolean(msg.poke));
        emulator.add_listener("serial0-output-byte", (byte) => {
            if (pending.length === 0) setTimeout(flush, 0);
            pending.push(byte);
        });
    } else if (msg.type === "state") {
        if (msg.error) stateArrived.reject(new Error(msg.error));
        else stateArrived.resolve(msg.state);
    } else if (msg.type === "input") {
        emulator.serial_send_bytes(0, msg.bytes);
    } else if (msg.type === "send") {
        emulator.serial0_send(msg.text);
    } else if (msg.type === "restart") {
        emulator.restart();
    } else if (msg.type === "profile" && profiler) {
        const data = { ...profiler.report("prompt"), downloads: downloads() };
        postMessage({ type: "event", name: "profile", data });
    }
};
