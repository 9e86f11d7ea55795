// What every visit needs, started by an inline script in the page's <head> (app/layout.js)
// before React has even loaded: the manifest request, and (unless ?engine=main) the v86
// worker, which loads libv86 and compiles the wasm while it streams as soon as the
// manifest names them. <LinuxVM /> picks both up (takeEarlyWorker, earlyManifest).
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
  if (new URLSearchParams(location.search).get("engine") !== "main" &&
      typeof Worker !== "undefined") {
    var worker = new Worker("v86-worker.js");
    early.worker = worker;
    early.manifest.then(function (m) {
      var url = function (name) { return new URL("os/" + m.assets[name].file, location.href).href; };
      worker.postMessage({ type: "preload", libv86: url("libv86"), wasm: url("wasm") });
    }, function () {});
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
