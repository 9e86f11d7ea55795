// Runs v86 in a Web Worker, off the page's main thread. The page posts
//   {type: "start", libv86: URL, options: V86 options, restore: bool}   once; with
//   restore, the options have autostart: false and this restores the state that follows,
//   {type: "state", state: ArrayBuffer} or {type: "state", error: reason}, once v86 has
//   loaded (as components/savedState.js does on the main thread; a failure on either
//   side -> event "state-failed" with the reason),
//   {type: "input", bytes: Uint8Array} | {type: "send", text} | {type: "restart"};
// the worker posts back the events the page listens to, as {type: "event", name, data},
// with serial output batched per event-loop turn. Used with ?engine=worker (see
// components/workerV86.js); URLs in the options resolve against this file's folder.
"use strict";

let emulator = null;
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

function fail(reason) {
    postMessage({ type: "event", name: "state-failed", data: reason });
}

function restoreWhenLoaded() {
    emulator.add_listener("emulator-loaded", async () => {
        let bytes;
        try {
            bytes = await state;
        } catch (e) {
            fail(e.message);
            return;
        }
        try {
            await emulator.restore_state(bytes);
        } catch (e) {
            fail(`v86 could not restore it (${e.message || e})`);
            return;
        }
        emulator.run();
    });
}

self.onmessage = (message) => {
    const msg = message.data;
    if (msg.type === "start") {
        importScripts(msg.libv86);
        emulator = new self.V86(msg.options);
        ["download-progress", "download-error", "emulator-started"].forEach(forward);
        if (msg.restore) restoreWhenLoaded();
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
    }
};
