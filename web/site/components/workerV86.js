// v86 in a Web Worker (public/v86-worker.js) behind the few methods <LinuxVM /> uses on a
// V86 object, so the component does not care where the emulator runs.

import { takeEarlyWorker } from "./earlyStart";
import { libv86Url, profilerUrl, v86Options } from "./loadV86";

// state: when fromState, fetchState's promise of the saved state (savedState.js); its bytes
// are handed over (not copied) once there, while the worker loads v86. A state that fails
// to arrive or to restore comes back as the event "state-failed" with the reason.
// profile: ask the worker for the boot profile (profiler.js), then `profile()` returns it.
// files: for a cold boot, {bios, bzimage, initrd} ArrayBuffers already fetched (handed
// over, not copied), or undefined for v86 to fetch them.
export function startV86Worker(manifest, fromState, hda, net, state, profile, files) {
  const base = new URL(".", window.location.href);
  const worker = takeEarlyWorker() || new Worker(new URL("v86-worker.js", base));
  const listeners = {};
  const emit = (name, data) => (listeners[name] || []).forEach((fn) => fn(data));
  worker.onmessage = ({ data: msg }) => {
    if (msg.name !== "serial0-output-bytes") return emit(msg.name, msg.data);
    // One message carries many bytes; the component listens per byte, as with V86.
    for (const byte of msg.data) emit("serial0-output-byte", byte);
  };
  // The worker resolves relative URLs against its own script: make them absolute.
  const options = v86Options(manifest, fromState, hda && { ...hda }, net);
  for (const value of Object.values(options)) {
    if (value && typeof value === "object" && value.url) value.url = new URL(value.url, base).href;
  }
  options.wasm_path = new URL(options.wasm_path, base).href;
  const transfer = [];
  for (const [name, buffer] of Object.entries(files || {})) {
    options[name] = { buffer };
    transfer.push(buffer);
  }
  const libv86 = new URL(libv86Url(manifest), base).href;
  const profiler = profile ? new URL(profilerUrl(manifest), base).href : null;
  worker.postMessage({ type: "start", libv86, options, restore: fromState, profiler }, transfer);
  if (fromState) {
    state.then(
      (buffer) => worker.postMessage({ type: "state", state: buffer }, [buffer]),
      (e) => worker.postMessage({ type: "state", error: e.message || String(e) }),
    );
  }
  return {
    add_listener(name, fn) {
      (listeners[name] ||= []).push(fn);
    },
    serial_send_bytes(port, bytes) {
      worker.postMessage({ type: "input", bytes });
    },
    serial0_send(text) {
      worker.postMessage({ type: "send", text });
    },
    restart() {
      worker.postMessage({ type: "restart" });
    },
    profile() {
      return new Promise((resolve) => {
        (listeners.profile ||= []).push(resolve);
        worker.postMessage({ type: "profile" });
      });
    },
    destroy() {
      worker.terminate();
    },
  };
}
