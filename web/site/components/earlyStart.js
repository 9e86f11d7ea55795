// What every visit needs, started by an inline script in the page's <head> (app/layout.js)
// before React has even loaded: the manifest request, and (unless ?engine=main) the v86
// worker, which loads libv86 and compiles the wasm while it streams as soon as the
// manifest names them, and with ?boot=cold the boot files, fetched side by side.
// <LinuxVM /> picks them up (earlyManifest, takeEarlyWorker, takeEarlyBootFiles).
// Measured on a restored state (x86lab web measure --profile, localhost): the worker
// started 360 ms after navigation and v86 had loaded at 560 ms when React started it all.
// Kept as plain ES5 source in a string: it runs as it is, before any bundle.
export const EARLY_START = `(function () {
  var early = {};
  early.manifest = fetch("x86lab-manifest.json", { cache: "no-cache" }).then(function (r) {
    if (!r.ok) throw new Error("x86lab-manifest.json: HTTP " + r.status);
    return r.json();
  });
  early.manifest.catch(function () {});
  var params = new URLSearchParams(location.search);
  var url = function (m, name) { return new URL("os/" + m.assets[name].file, location.href).href; };
  if (params.get("engine") !== "main" && typeof Worker !== "undefined") {
    var worker = new Worker("v86-worker.js");
    early.worker = worker;
    early.manifest.then(function (m) {
      worker.postMessage({ type: "preload", libv86: url(m, "libv86"), wasm: url(m, "wasm") });
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
