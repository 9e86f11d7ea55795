// What every visit needs, started by an inline script in the page's <head> (app/layout.js)
// before React has even loaded: the manifest request, and (unless ?engine=main) the v86
// worker, which loads libv86 as soon as the manifest names it, while the wasm compiles
// as it streams and is handed to the worker; with ?boot=cold the boot files, fetched side by side; otherwise,
// when the manifest's state fits (loadV86.js stateUsable), the whole restore: the state's
// download and check (by the worker itself, v86-worker.js fetch-state: a body read on
// this thread waits for React's work), the disk's Range probe, the relay choice, and the
// worker's start message, so the restore never waits for React (about 0.5 s after
// navigation even on a quiet host). The worker's events are kept, with the time each
// arrived, until <LinuxVM /> attaches (takeEarlyRestore, workerV86.js attachEarlyRestore),
// which replays them on that clock. The page computes the same v86 options itself and
// attaches only when they are equal: a difference between the copies here (stateUsable,
// chooseRelay, diskOption, v86Options) and the modules costs the head start, never a
// wrong machine. Kept as plain ES5 source in a string: it runs as it is, before any bundle.
// Picked up by <LinuxVM /> with earlyManifest, takeEarlyWorker, takeEarlyBootFiles and
// takeEarlyRestore.
export const EARLY_START = `(function () {
  var early = {};
  early.manifest = fetch("x86lab-manifest.json", { cache: "no-cache" }).then(function (r) {
    if (!r.ok) throw new Error("x86lab-manifest.json: HTTP " + r.status);
    return r.json();
  });
  early.manifest.catch(function () {});
  var params = new URLSearchParams(location.search);
  var absolute = function (path) { return new URL(path, location.href).href; };
  // The saved state's name, size and sha256 as the build wrote them into the page
  // (web/build/frontend.py state_hint_first): its request leaves now, while the page is
  // parsed, instead of after the manifest's answer and the worker thread's start. It is
  // used only when the manifest names the same file; otherwise it is aborted.
  var hinted = null;
  var hintNode = document.getElementById("x86lab-state");
  if (hintNode && params.get("boot") !== "cold" && params.get("engine") !== "main" &&
      typeof Worker !== "undefined") {
    try {
      hinted = JSON.parse(hintNode.textContent);
      hinted.controller = new AbortController();
      hinted.response = fetch(absolute("os/" + hinted.file), { signal: hinted.controller.signal });
      hinted.response.catch(function () {});
    } catch (e) {
      hinted = null;
    }
  }
  var dropHint = function () {
    if (hinted) hinted.controller.abort();
    hinted = null;
  };
  var url = function (m, name) { return absolute("os/" + m.assets[name].file); };
  var usable = function (m) {
    var s = m.state;
    return !!s && s.v86_version === m.v86_version && s.memory_mib === m.memory_mib &&
      s.vga_memory_mib === m.vga_memory_mib && s.kernel_sha256 === m.kernel_sha256 &&
      s.initrd_sha256 === m.initrd_sha256 &&
      JSON.stringify(s.devices) === JSON.stringify(m.devices);
  };
  var relayUrl = function (m) {
    var text = params.get("relay");
    if (text === null) text = m.relay_url === undefined || m.relay_url === null ? "" : m.relay_url;
    if (text === "" || text === "none") return null;
    var schemes = { "ws:": "wisp:", "wss:": "wisps:", "wisp:": "wisp:", "wisps:": "wisps:" };
    var scheme;
    try { scheme = schemes[new URL(text).protocol]; } catch (e) { return null; }
    return scheme ? scheme + text.slice(text.indexOf(":") + 1) : null;
  };
  var diskMode = function (m) {
    if (!m.disk) return Promise.resolve("none");
    if (params.get("disk") === "chunks") return Promise.resolve("chunks");
    var controller = new AbortController();
    return fetch("os/" + m.disk.file, { headers: { Range: "bytes=0-0" }, cache: "no-store",
                                        signal: controller.signal }).then(function (r) {
      var range = (r.headers.get("content-range") || "").trim();
      controller.abort();
      return r.status === 206 && /^bytes 0-0\\/\\d+$/.test(range) ? "range" : "chunks";
    }, function () { return "chunks"; });
  };
  var restoreEarly = function (worker) {
    var restore = { worker: worker, events: [], progress: null, onProgress: null };
    var statePath = null;
    worker.onmessage = function (e) {
      var msg = e.data;
      if (msg.name === "state-progress") {
        restore.progress = [statePath, msg.data[0], msg.data[1]];
        if (restore.onProgress) restore.onProgress(statePath, msg.data[0], msg.data[1]);
        return;
      }
      restore.events.push({ data: msg, t: performance.now() });
    };
    return early.manifest.then(function (m) {
      if (!usable(m)) {
        dropHint();
        return null;
      }
      // The worker downloads and checks the state itself (v86-worker.js fetch-state): a
      // 10 MB body read here would wait on the main thread, busy with React meanwhile.
      statePath = "os/" + m.state.file;
      var state = { url: absolute(statePath), file: m.state.file, size: m.state.size,
                    sha256: m.state.sha256 };
      if (hinted && hinted.file === state.file && hinted.size === state.size &&
          hinted.sha256 === state.sha256) {
        // The request made above: its body goes to the worker as a stream (transferable),
        // read and checked there; a browser that cannot transfer one has the worker fetch.
        hinted.response.then(function (r) {
          if (!r.ok || !r.body) {
            worker.postMessage({ type: "fetch-state", state: state,
                                 error: state.file + ": HTTP " + r.status });
            return;
          }
          try {
            worker.postMessage({ type: "fetch-state", state: state, body: r.body }, [r.body]);
          } catch (e) {
            worker.postMessage({ type: "fetch-state", state: state });
          }
        }, function (e) {
          worker.postMessage({ type: "fetch-state", state: state, error: state.file +
                               ": download failed (" + (e.message || e) + ")" });
        });
        hinted = null;
      } else {
        dropHint();
        worker.postMessage({ type: "fetch-state", state: state });
      }
      return diskMode(m).then(function (mode) {
        var MiB = 1024 * 1024;
        var net = { type: m.devices.net };
        var relay = relayUrl(m);
        if (relay) net.relay_url = relay;
        var options = {
          wasm_path: url(m, "wasm"), memory_size: m.memory_mib * MiB,
          vga_memory_size: m.vga_memory_mib * MiB, cmdline: m.cmdline, autostart: false,
          net_device: net, preserve_mac_from_state_image: true, disable_keyboard: true,
          disable_mouse: true, disable_speaker: true
        };
        if (mode !== "none") {
          options.hda = { url: absolute("os/" + m.disk.file), async: true, size: m.disk.size };
          if (mode === "chunks") {
            options.hda.use_parts = true;
            options.hda.fixed_chunk_size = m.disk.chunk_size;
          }
        }
        var profiler = params.get("profile") === "1" ? url(m, "profiler") : null;
        worker.postMessage({ type: "start", libv86: url(m, "libv86"), options: options,
                             restore: true, profiler: profiler, poke: true });
        restore.options = options;
        restore.disk = mode;
        return restore;
      });
    }).catch(function () {
      dropHint();
      return null;
    });
  };
  if (params.get("engine") !== "main" && typeof Worker !== "undefined") {
    var worker = new Worker("v86-worker.js");
    early.worker = worker;
    // First, so that the worker's state request goes out before it loads libv86.
    if (params.get("boot") !== "cold") early.restore = restoreEarly(worker);
    // The wasm compiles here, on the page's side, while the worker thread is still
    // starting (it started 90-250 ms after this line on a loaded host): the worker
    // gets the compiled module (or null: it then fetches the wasm itself).
    early.manifest.then(function (m) {
      var streaming = typeof WebAssembly === "object" && WebAssembly.compileStreaming;
      worker.postMessage({ type: "preload", libv86: url(m, "libv86"), wasm: url(m, "wasm"),
                           module: Boolean(streaming),
                           profiler: params.get("profile") === "1" ? url(m, "profiler") : null });
      if (!streaming) return;
      WebAssembly.compileStreaming(fetch(url(m, "wasm"))).then(function (module) {
        worker.postMessage({ type: "module", module: module });
      }, function () {
        worker.postMessage({ type: "module", module: null });
      });
    }, function () {});
    // A cold boot needs SeaBIOS, the kernel and the initramfs, which v86 would fetch one
    // after the other once started: fetch them now, side by side.
    if (params.get("boot") === "cold") {
      early.bootFiles = early.manifest.then(function (m) {
        return Promise.all(["bios", "bzimage", "initrd"].map(function (name) {
          return fetch(url(m, name)).then(function (r) {
            if (!r.ok) throw new Error(m.assets[name].file + ": HTTP " + r.status);
            return r.arrayBuffer();
          });
        }));
      }).then(function (buffers) {
        return { bios: buffers[0], bzimage: buffers[1], initrd: buffers[2] };
      });
      early.bootFiles.catch(function () {});
    }
  }
  window.__x86labEarly = early;
})();`;

// The early manifest promise, once (a retry fetches again).
export function earlyManifest() {
  const early = typeof window !== "undefined" ? window.__x86labEarly : undefined;
  const manifest = early?.manifest;
  if (early) early.manifest = undefined;
  return manifest;
}

// The cold boot's files fetched early ({bios, bzimage, initrd} ArrayBuffers), once, or
// undefined; a failed early fetch resolves to undefined (v86 then fetches them itself).
export function takeEarlyBootFiles() {
  const early = typeof window !== "undefined" ? window.__x86labEarly : undefined;
  const files = early?.bootFiles;
  if (early) early.bootFiles = undefined;
  return files ? files.catch(() => undefined) : Promise.resolve(undefined);
}

// The early worker, once: a fallback boot after it makes a fresh worker.
export function takeEarlyWorker() {
  const early = typeof window !== "undefined" ? window.__x86labEarly : undefined;
  const worker = early?.worker;
  if (early) early.worker = undefined;
  return worker;
}

// The restore the <head> script started, once: a promise of {worker (already restoring:
// takes the early worker too), events [{data, t}] it sent so far, options (v86's, as
// posted), disk ("range"|"chunks"|"none"), progress ([url, loaded, size] of the state's
// download, or null), onProgress (settable)}, or of null when it started none (the state
// does not fit, ?boot=cold, ?engine=main, no manifest): the worker then stays for
// takeEarlyWorker.
export async function takeEarlyRestore() {
  const early = typeof window !== "undefined" ? window.__x86labEarly : undefined;
  const pending = early?.restore;
  if (!pending) return null;
  early.restore = undefined;
  const restore = await pending;
  if (restore && early.worker === restore.worker) early.worker = undefined;
  return restore;
}
