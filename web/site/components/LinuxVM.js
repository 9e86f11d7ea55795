"use client";
// <LinuxVM />: boots the build's Linux image on v86 in this page, its serial console in an
// xterm.js terminal, with download progress, the boot stage and a restart button.
//
// It starts from the build's saved state (at the prompt) when the manifest says the state
// fits this v86 and configuration, else it boots from power-on; `?boot=cold` forces that.
// A state that fails to download, is truncated or altered, or that v86 rejects falls back
// to a power-on boot and the page says why (savedState.js). The guest's NIC reaches the
// network through a Wisp relay when one is given (network.js: `?relay=wss://...`).
// v86 runs in a Web Worker (workerV86.js); `?engine=main` runs it on the main thread.
// The page's <head> script has usually started the machine already, from the state or cold
// (earlyStart.js): the component attaches to that worker and replays what it sent so far,
// each stage timed when its output arrived, not when React got there.
// Measured (x86lab web measure, headless Chromium, loaded 2-core host): starting from the
// state, the longest main-thread frame gap was 67 ms with the worker, 450-770 ms without;
// during a cold boot both showed 0.7-1.1 s gaps (xterm output and CPU contention).
// For tests and measurements it publishes window.x86lab: { boot: "state"|"cold",
// engine, early: true when the machine the <head> script started was used, disk:
// "range"|"chunks"|"none" (lazyDisk.js), relay: URL|null, fallback: why
// the state was not used (after a fallback, e.g. a state that restored but showed no
// prompt within WATCHDOG_MS), stage ("restored" between restore and its prompt), bytes,
// transcript(),
// times: {stage: ms since navigation}, profile (with ?profile=1, once at the prompt):
// { record: profiler.js's record with absolute times and the files downloaded,
// timeOrigin } for `x86lab web measure --profile` }.

import { useEffect, useRef, useState } from "react";
import { earlyManifest, takeEarlyRestore } from "./earlyStart";
import { COLD_PROBE, SECTOR_PROBE, diskForMode, diskOption } from "./lazyDisk";
import {
  fetchManifest,
  loadProfiler,
  profileOnMainThread,
  startV86,
  stateUsable,
} from "./loadV86";
import { chooseRelay, netDevice } from "./network";
import { fetchState, restoreWhenLoaded } from "./savedState";
import { createStageTracker, STAGE_LABELS } from "./stages";
import { createTerminal } from "./terminal";
import { attachEarly, startV86Worker } from "./workerV86";

const TRANSCRIPT_LIMIT = 256 * 1024;
// A restored state shows its prompt within a second or two even on a loaded machine;
// without one by then it is broken (?watchdog=MS changes the bound).
const WATCHDOG_MS = 10000;

function publish(patch) {
  window.x86lab = { ...(window.x86lab || {}), ...patch };
}

function formatBytes(n) {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${Math.round(n / 1024)} KiB`;
}

export default function LinuxVM({ manifestUrl }) {
  const container = useRef(null);
  const emulatorRef = useRef(null);
  const trackerRef = useRef(null);
  const [stage, setStage] = useState("loading");
  const [bytes, setBytes] = useState({ loaded: 0, total: 0 });
  const [error, setError] = useState("");
  const [notice, setNotice] = useState("");

  useEffect(() => {
    let disposed = false;
    let transcript = "";
    let pending = [];
    const times = {};
    const decoder = new TextDecoder();
    const perFile = {};
    // While replaying the early worker's events: when the one being handled arrived.
    let clock = null;
    const now = () => (clock === null ? performance.now() : clock);

    const enter = (name) => {
      times[name] = Math.round(now());
      publish({ stage: name, times: { ...times } });
      setStage(name);
    };
    publish({ stage: "loading", bytes: 0, times, transcript: () => transcript });

    const terminal = createTerminal(container.current, (data) =>
      emulatorRef.current?.serial_send_bytes(0, data),
    );

    const flush = () => {
      const chunk = new Uint8Array(pending);
      pending = [];
      terminal.write(chunk);
      const text = decoder.decode(chunk, { stream: true });
      transcript = (transcript + text).slice(-TRANSCRIPT_LIMIT);
      trackerRef.current?.feed(text);
    };

    const showBytes = (name, loaded, total) => {
      perFile[name] = { loaded, total };
      const files = Object.values(perFile);
      const sum = (key) => files.reduce((acc, f) => acc + f[key], 0);
      publish({ bytes: sum("loaded") });
      setBytes({ loaded: sum("loaded"), total: sum("total") });
    };

    (async () => {
      const manifest = await (earlyManifest() || fetchManifest(manifestUrl));
      if (disposed) return;
      const params = new URLSearchParams(window.location.search);
      const profiling = params.get("profile") === "1";
      let profile = null;
      const publishProfile = () =>
        profile?.().then((record) =>
          publish({ profile: { record, timeOrigin: performance.timeOrigin } }),
        );
      let watchdog = null;
      const track = (markers) => {
        trackerRef.current = createStageTracker(markers, (mark) => {
          enter(mark);
          if (mark === "prompt") {
            clearTimeout(watchdog);
            terminal.term.focus();
            publishProfile();
          }
        });
      };
      track(manifest.stages);
      const wantState = params.get("boot") !== "cold" && stateUsable(manifest);
      const watchdogMs = Number(params.get("watchdog")) || WATCHDOG_MS;
      const inWorker = params.get("engine") !== "main";
      publish({ engine: inWorker ? "worker" : "main" });
      // The machine the <head> script started, if any, when it started the same way.
      let early = inWorker ? await takeEarlyRestore() : null;
      if (disposed) return early?.worker.terminate();
      if (early && early.boot !== (wantState ? "state" : "cold")) {
        early.worker.terminate();
        early = null;
      }
      // The disk's Range probe runs while the state downloads: one round trip, not two
      // (the <head> script's, when it made one).
      const diskChoice = early
        ? Promise.resolve(diskForMode(manifest, early.disk))
        : diskOption(manifest, params.get("disk"), wantState ? SECTOR_PROBE : COLD_PROBE);
      const relay = chooseRelay(manifest, params.get("relay"));
      if (relay.error) setError(relay.error);
      publish({ relay: relay.url });
      const net = netDevice(manifest, relay.url);

      // One machine, from the saved state's bytes or from power-on.
      const launch = async (fromState, stateGiven) => {
        let state = stateGiven;
        const { mode: disk, hda } = await diskChoice;
        publish({ boot: fromState ? "state" : "cold", disk });
        if (profiling && !inWorker) await loadProfiler(manifest);
        // (A fallback's cold boot comes after the early machine was used or stopped.)
        const started = early;
        early = null;
        let emulator = started && attachEarly(started, manifest, fromState, hda, net);
        publish({ early: Boolean(emulator) });
        if (emulator && fromState) {
          started.onProgress = showBytes;
          if (started.progress) showBytes(...started.progress);
        } else if (fromState && !state) {
          state = fetchState(manifest, showBytes);
          state.catch(() => {});
        }
        emulator ||= inWorker
          ? startV86Worker(manifest, fromState, hda, net, state, profiling)
          : await startV86(manifest, fromState, hda, net);
        if (profiling) profile = inWorker ? emulator.profile : profileOnMainThread(emulator);
        if (disposed) {
          emulator.destroy();
          return;
        }
        emulatorRef.current = emulator;
        if (fromState && !inWorker) restoreWhenLoaded(emulator, state, fallBack);
        emulator.add_listener("state-failed", fallBack); // from the worker
        // The early worker downloads the state itself (v86-worker.js fetch-state).
        emulator.add_listener("state-progress", ([loaded, total]) =>
          showBytes(`os/${manifest.state.file}`, loaded, total),
        );
        emulator.add_listener("download-progress", (e) =>
          showBytes(e.file_name, e.loaded, e.lengthComputable ? e.total : 0),
        );
        emulator.add_listener("download-error", (e) =>
          setError(`download failed: ${e.file_name || "a file"}`),
        );
        emulator.add_listener("emulator-started", () => {
          if (!fromState) return enter("firmware");
          // The snapshot was taken at the prompt: ask the shell for a fresh one, and call
          // the page ready when it shows. A state that restores but never answers (a
          // guest that crashed or hangs) costs a cold boot after WATCHDOG_MS, not a page
          // that waits forever.
          track([["prompt", manifest.prompt]]);
          enter("restored");
          // (Counted from the restore, also when it is replayed later.)
          watchdog = setTimeout(
            () => fallBack(`restored, but no shell prompt within ${watchdogMs / 1000} s`),
            Math.max(0, watchdogMs - (performance.now() - now())),
          );
          if (!emulator.poked) emulator.serial0_send("\n");
        });
        emulator.add_listener("serial0-output-byte", (byte) => {
          if (pending.length === 0) setTimeout(flush, 0);
          pending.push(byte);
        });
        // The early worker's events so far, each on its own arrival time.
        emulator.replay?.((t, dispatch) => {
          clock = t;
          dispatch();
          if (pending.length) flush();
          clock = null;
        });
      };
      // A state that cannot be used (savedState.js) costs a cold boot, never a dead page.
      const fallBack = (reason) => {
        clearTimeout(watchdog);
        track(manifest.stages);
        emulatorRef.current?.destroy();
        emulatorRef.current = null;
        publish({ fallback: reason });
        setNotice(`Saved state unusable (${reason}): booting from power-on.`);
        launch(false).catch((e) => setError(String(e.message || e)));
      };

      if (!wantState) return launch(false);
      // The state downloads while v86 loads (unless the <head> script fetches it: then
      // launch does only if it cannot attach); the restore waits for both, and a failed
      // download reaches fallBack the same way a failed restore does.
      const state = early ? null : fetchState(manifest, showBytes);
      state?.catch(() => {});
      await launch(true, state);
    })().catch((e) => setError(String(e.message || e)));

    return () => {
      disposed = true;
      emulatorRef.current?.destroy();
      emulatorRef.current = null;
      terminal.dispose();
    };
  }, [manifestUrl]);

  const restart = () => {
    const emulator = emulatorRef.current;
    if (!emulator) return;
    if (window.x86lab?.boot === "state") {
      // The state-started machine has no kernel to reboot into; reloading restores the
      // snapshot again, a fresh shell in about a second (the files are in the cache).
      window.location.reload();
      return;
    }
    trackerRef.current?.reset();
    emulator.restart();
    publish({ stage: "firmware" });
    setStage("firmware");
  };

  return (
    <section>
      <div className="vm-status" aria-live="polite">
        <span className="vm-stage" data-stage={stage}>
          {STAGE_LABELS[stage] || stage}
        </span>
        <span>
          {formatBytes(bytes.loaded)}
          {bytes.total ? ` of ${formatBytes(bytes.total)}` : ""} downloaded
        </span>
        <button type="button" onClick={restart} disabled={stage === "loading"}>
          Restart
        </button>
        {notice && <span className="vm-notice">{notice}</span>}
        {error && <span className="vm-error">{error}</span>}
      </div>
      <div className="vm-terminal" ref={container} />
    </section>
  );
}
