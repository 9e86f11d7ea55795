// What every visit needs, started by an inline script in the page's <head> (app/layout.js)
// before React has even loaded: the manifest request, and (unless ?engine=main) the v86
// worker, which loads libv86 at once (the build wrote the files' names into the page:
// web/build/frontend.py with_files_hint; without that hint, once the manifest names them),
// while the wasm compiles on this side as it streams and is handed to the worker; then
// the whole start of the machine, so that it never waits for React (about 0.5 s after
// navigation even on a quiet host):
//   - from the state, when the manifest's state fits (loadV86.js stateUsable): the state's
//     download and check (by the worker, v86-worker.js fetch-state; a body read on this
//     thread waits for React's work), the disk's Range probe, the relay choice, and the
//     worker's start message;
//   - cold (?boot=cold, or no state that fits): SeaBIOS, the kernel and the initramfs
//     fetched side by side (with ?boot=cold and the hint, while the page is parsed), the
//     disk's probe, the relay choice, and the start message with the files' bytes.
// The worker's events are kept, with the time each arrived, until <LinuxVM /> attaches
// (takeEarlyRestore, workerV86.js attachEarly), which replays them on that clock. The page
// computes the same v86 options itself and attaches only when they are equal: a difference
// between the copies here (stateUsable, chooseRelay, diskOption, v86Options) and the
// modules costs the head start, never a wrong machine. Kept as plain ES5 source in a
// string: it runs as it is, before any bundle. Picked up by <LinuxVM /> with
// earlyManifest, takeEarlyWorker and takeEarlyRestore.
export const EARLY_START = `(function () {
  var early = {};
  early.manifest = fetch("x86lab-manifest.json", { cache: "no-cache" }).then(function (r) {
    if (!r.ok) throw new Error("x86lab-manifest.json: HTTP " + r.status);
    return r.json();
  });
  early.manifest.catch(function () {});
  var params = new URLSearchParams(location.search);
  var cold = params.get("boot") === "cold";
  var profiling = params.get("profile") === "1";
  var inWorker = params.get("engine") !== "main" && typeof Worker !== "undefined";
  var absolute = function (path) { return new URL(path, location.href).href; };
  var hint = function (id) {
    var node = document.getElementById(id);
    try { return node ? JSON.parse(node.textContent) : null; } catch (e) { return null; }
  };
  // The saved state's name, size and sha256 as the build wrote them into the page
  // (web/build/frontend.py with_state_hint): its request leaves now, while the page is
  // parsed, instead of after the manifest's answer and the worker thread's start. It is
  // used only when the manifest names the same file; otherwise it is aborted.
  var hinted = inWorker && !cold ? hint("x86lab-state") : null;
  if (hinted) {
    try {
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
  // The names of the files under os/ (web/build/frontend.py with_files_hint), used only
  // where the manifest names the same ones.
  var files = hint("x86lab-files");
  var BOOT_FILES = ["bios", "bzimage", "initrd"];
  var url = function (m, name) { return absolute("os/" + m.assets[name].file); };
  var same = function (names, m, which) {
    return !!names && which.every(function (name) {
      return !!m.assets[name] && names[name] === m.assets[name].file;
    });
  };
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
  // The disk's Range probe (lazyDisk.js hostHonoursRange does the same): a 206 for exactly
  // the bytes asked means Range works. Its body is read whole, never cut off (a cached
  // range cut short once hung a cold boot), and the browser's cache keeps it (the name is
  // content-hashed, immutable), so it answers v86's later reads inside it without the
  // network. From the state that is the first sector, which v86 reads before it reports
  // itself loaded (unless started with initial_state, which the restore is not): 8 ms
  // instead of ~50 ms in the worker at load 9. Cold, the first 32 KiB: every disk read the
  // guest makes before its prompt (the kernel's partition scan, /init's mount) lies there.
  // The decision needs only the headers; a host that ignores Range is cut off there.
  var SECTOR = 512;
  var COLD_PROBE = 32768;
  var probeDisk = function (file, length) {
    var controller = new AbortController();
    return fetch("os/" + file, { headers: { Range: "bytes=0-" + (length - 1) },
                                        signal: controller.signal }).then(function (r) {
      var range = /^bytes 0-(\\d+)\\/(\\d+)$/.exec((r.headers.get("content-range") || "").trim());
      if (r.status === 206 && range &&
          Number(range[1]) === Math.min(length, Number(range[2])) - 1) {
        r.arrayBuffer().catch(function () {});
        return "range";
      }
      controller.abort();
      return "chunks";
    }, function () { return "chunks"; });
  };
  // The probe leaves while the page is parsed when the build named the disk (the files
  // hint), instead of after the manifest's answer: the machine's start waits for it.
  var hintedProbe = inWorker && files && files.disk && params.get("disk") !== "chunks" ?
    { file: files.disk, mode: probeDisk(files.disk, cold ? COLD_PROBE : SECTOR) } : null;
  var diskMode = function (m, fromState) {
    if (!m.disk) return Promise.resolve("none");
    if (params.get("disk") === "chunks") return Promise.resolve("chunks");
    if (hintedProbe && hintedProbe.file === m.disk.file) return hintedProbe.mode;
    return probeDisk(m.disk.file, fromState ? SECTOR : COLD_PROBE);
  };
  // v86's options as loadV86.js v86Options and workerOptions make them (URLs absolute).
  var options = function (m, fromState, mode) {
    var MiB = 1024 * 1024;
    var net = { type: m.devices.net };
    var relay = relayUrl(m);
    if (relay) net.relay_url = relay;
    var made = {
      wasm_path: url(m, "wasm"), memory_size: m.memory_mib * MiB,
      vga_memory_size: m.vga_memory_mib * MiB, cmdline: m.cmdline, autostart: !fromState,
      net_device: net, preserve_mac_from_state_image: true, disable_keyboard: true,
      disable_mouse: true, disable_speaker: true
    };
    if (!fromState) {
      BOOT_FILES.forEach(function (name) {
        made[name] = { url: url(m, name), size: m.assets[name].size };
      });
    }
    if (mode !== "none") {
      made.hda = { url: absolute("os/" + m.disk.file), async: true, size: m.disk.size };
      if (mode === "chunks") {
        made.hda.use_parts = true;
        made.hda.fixed_chunk_size = m.disk.chunk_size;
      }
    }
    return made;
  };
  // The worker's events, with the time each arrived, for <LinuxVM /> to replay.
  var listen = function (worker, boot) {
    var machine = { boot: boot, worker: worker, events: [], progress: null, onProgress: null };
    worker.onmessage = function (e) {
      var msg = e.data;
      if (msg.name === "state-progress") {
        machine.progress = [machine.statePath, msg.data[0], msg.data[1]];
        if (machine.onProgress) machine.onProgress(machine.statePath, msg.data[0], msg.data[1]);
        return;
      }
      machine.events.push({ data: msg, t: performance.now() });
    };
    return machine;
  };
  var start = function (worker, machine, m, fromState, mode, transfer) {
    var posted = options(m, fromState, mode);
    transfer.forEach(function (buffer, i) { posted[BOOT_FILES[i]] = { buffer: buffer }; });
    worker.postMessage({ type: "start", libv86: url(m, "libv86"), options: posted,
                         restore: fromState, profiler: profiling ? url(m, "profiler") : null,
                         poke: fromState }, transfer);
    machine.options = options(m, fromState, mode);
    machine.disk = mode;
    return machine;
  };
  var restoreEarly = function (worker, m) {
    var machine = listen(worker, "state");
    // The worker downloads and checks the state itself (v86-worker.js fetch-state): a
    // 10 MB body read here would wait on the main thread, busy with React meanwhile.
    machine.statePath = "os/" + m.state.file;
    var state = { url: absolute(machine.statePath), file: m.state.file, size: m.state.size,
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
    return diskMode(m, true).then(function (mode) {
      return start(worker, machine, m, true, mode, []);
    });
  };
  // A cold boot needs SeaBIOS, the kernel and the initramfs, which v86 would fetch one
  // after the other once started: fetched side by side, handed over (not copied).
  var fetchFile = function (file) {
    return fetch(absolute("os/" + file)).then(function (r) {
      if (!r.ok) throw new Error(file + ": HTTP " + r.status);
      return r.arrayBuffer();
    });
  };
  var bootFiles = inWorker && cold && files ? BOOT_FILES.map(function (name) {
    var pending = fetchFile(files[name]);
    pending.catch(function () {});
    return pending;
  }) : null;
  var coldEarly = function (worker, m) {
    var machine = listen(worker, "cold");
    var buffers = bootFiles && same(files, m, BOOT_FILES) ? bootFiles : BOOT_FILES.map(
      function (name) { return fetchFile(m.assets[name].file); });
    return Promise.all([Promise.all(buffers), diskMode(m, false)]).then(function (got) {
      return start(worker, machine, m, false, got[1], got[0]);
    });
  };
  var preloaded = null;
  var preload = function (worker, names) {
    preloaded = names;
    var wasm = absolute("os/" + names.wasm);
    var streaming = typeof WebAssembly === "object" && WebAssembly.compileStreaming;
    worker.postMessage({ type: "preload", libv86: absolute("os/" + names.libv86), wasm: wasm,
                         module: Boolean(streaming),
                         profiler: profiling ? absolute("os/" + names.profiler) : null });
    if (!streaming) return;
    // The wasm compiles here, on the page's side, while the worker thread is still
    // starting (it started 90-250 ms after new Worker on a loaded host): the worker gets
    // the compiled module (or null: it then fetches the wasm itself).
    WebAssembly.compileStreaming(fetch(wasm)).then(function (module) {
      worker.postMessage({ type: "module", module: module });
    }, function () {
      worker.postMessage({ type: "module", module: null });
    });
  };
  if (inWorker) {
    early.worker = new Worker("v86-worker.js");
    if (files && files.libv86 && files.wasm) preload(early.worker, files);
    early.restore = early.manifest.then(function (m) {
      var names = {};
      Object.keys(m.assets).forEach(function (name) { names[name] = m.assets[name].file; });
      if (preloaded && !same(preloaded, m, ["libv86", "wasm", "profiler"])) {
        // The page's hint names other files than the manifest: a fresh worker.
        early.worker.terminate();
        early.worker = new Worker("v86-worker.js");
        preloaded = null;
      }
      var worker = early.worker;
      var fromState = !cold && usable(m);
      if (!fromState) dropHint();
      // From the state, fetch-state first: the worker's own request (without the hint)
      // then goes out before it loads libv86.
      var machine = fromState ? restoreEarly(worker, m) : coldEarly(worker, m);
      if (!preloaded) preload(worker, names);
      return machine;
    }).catch(function () {
      dropHint();
      return null;
    });
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

// The early worker, once: a fallback boot after it makes a fresh worker.
export function takeEarlyWorker() {
  const early = typeof window !== "undefined" ? window.__x86labEarly : undefined;
  const worker = early?.worker;
  if (early) early.worker = undefined;
  return worker;
}

// The machine the <head> script started, once: a promise of {boot ("state"|"cold"), worker
// (already starting: takes the early worker too), events [{data, t}] it sent so far,
// options (v86's as <LinuxVM /> would make them: boot files as URLs, not the bytes
// posted), disk ("range"|"chunks"|"none"), progress ([url, loaded, size] of the state's
// download, or null), onProgress (settable)}, or of null when it started none
// (?engine=main, no manifest, a boot file that failed to download): the worker then
// stays for takeEarlyWorker.
export async function takeEarlyRestore() {
  const early = typeof window !== "undefined" ? window.__x86labEarly : undefined;
  const pending = early?.restore;
  if (!pending) return null;
  early.restore = undefined;
  const restore = await pending;
  if (restore && early.worker === restore.worker) early.worker = undefined;
  return restore;
}
