// v86 in a Web Worker (public/v86-worker.js) behind the few methods <LinuxVM /> uses on a
// V86 object, so the component does not care where the emulator runs.

import { takeEarlyWorker } from "./earlyStart";
import { libv86Url, profilerUrl, v86Options } from "./loadV86";

// v86's options as the worker gets them: it resolves relative URLs against its own
// script, so they are made absolute here.
export function workerOptions(manifest, fromState, hda, net) {
  const base = new URL(".", window.location.href);
  const options = v86Options(manifest, fromState, hda && { ...hda }, net);
  for (const value of Object.values(options)) {
    if (value && typeof value === "object" && value.url) value.url = new URL(value.url, base).href;
  }
  options.wasm_path = new URL(options.wasm_path, base).href;
  return options;
}

// JSON with sorted keys and without undefined members, to compare two option sets.
function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    const keys = Object.keys(value).filter((key) => value[key] !== undefined).sort();
    return `{${keys.map((key) => `${JSON.stringify(key)}:${canonical(value[key])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

// The V86-like object over a worker. queued: events the worker sent before the page
// listened ([{data, t}], from the <head> script), handed to replay(); null when the page
// listened from the start.
function wrap(worker, queued) {
  const listeners = {};
  const emit = (name, data) => (listeners[name] || []).forEach((fn) => fn(data));
  const handle = (msg) => {
    if (msg.name !== "serial0-output-bytes") return emit(msg.name, msg.data);
    // One message carries many bytes; the component listens per byte, as with V86.
    for (const byte of msg.data) emit("serial0-output-byte", byte);
  };
  let queue = queued;
  let destroyed = false;
  worker.onmessage = ({ data }) => {
    if (queue) queue.push({ data, t: performance.now() });
    else handle(data);
  };
  return {
    // The early worker sent the shell its newline itself (v86-worker.js `poke`).
    poked: queued !== null,
    // Hands the queued events to the listeners, oldest first, each inside at(t, dispatch)
    // (t: performance.now() when it arrived), then passes events on as they come.
    replay(at) {
      const events = queue || [];
      queue = null;
      // A fallback during the replay (state-failed) ends this machine: stop there.
      for (const { data, t } of events) if (!destroyed) at(t, () => handle(data));
    },
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
      destroyed = true;
      worker.terminate();
    },
  };
}

// state: when fromState, fetchState's promise of the saved state (savedState.js); its bytes
// are handed over (not copied) once there, while the worker loads v86. A state that fails
// to arrive or to restore comes back as the event "state-failed" with the reason.
// profile: ask the worker for the boot profile (profiler.js), then `profile()` returns it.
// (A cold boot started here has v86 fetch its files: the <head> script's cold start, which
// fetches them side by side, is the usual one.)
export function startV86Worker(manifest, fromState, hda, net, state, profile) {
  const base = new URL(".", window.location.href);
  const worker = takeEarlyWorker() || new Worker(new URL("v86-worker.js", base));
  const emulator = wrap(worker, null);
  const options = workerOptions(manifest, fromState, hda, net);
  const libv86 = new URL(libv86Url(manifest), base).href;
  const profiler = profile ? new URL(profilerUrl(manifest), base).href : null;
  worker.postMessage({ type: "start", libv86, options, restore: fromState, profiler });
  if (fromState) {
    state.then(
      (buffer) => worker.postMessage({ type: "state", state: buffer }, [buffer]),
      (e) => worker.postMessage({ type: "state", error: e.message || String(e) }),
    );
  }
  return emulator;
}

// The machine the <head> script started (earlyStart.js takeEarlyRestore: from the state or
// cold, as fromState) as the object startV86Worker returns, when it started that way with
// the options the page would have given the worker (hda, net: the page's own choice);
// else null, the early worker stopped. Its queued events wait for replay().
export function attachEarly(early, manifest, fromState, hda, net) {
  const boot = fromState ? "state" : "cold";
  const options = workerOptions(manifest, fromState, hda, net);
  if (early.boot !== boot || canonical(early.options) !== canonical(options)) {
    early.worker.terminate();
    return null;
  }
  return wrap(early.worker, early.events);
}
