"use client";
// <LinuxVM />: boots the build's Linux image on v86 in this page, its serial console in an
// xterm.js terminal, with download progress, the boot stage and a restart button.
//
// It starts from the build's saved state (at the prompt) when the manifest says the state
// fits this v86 and configuration, else it boots from power-on; `?boot=cold` forces that.
// v86 runs in a Web Worker (workerV86.js); `?engine=main` runs it on the main thread.
// Measured (x86lab web measure, headless Chromium, loaded 2-core host): starting from the
// state, the longest main-thread frame gap was 67 ms with the worker, 450-770 ms without;
// during a cold boot both showed 0.7-1.1 s gaps (xterm output and CPU contention).
// For tests and measurements it publishes window.x86lab: { boot: "state"|"cold",
// engine, disk: "range"|"chunks"|"none" (lazyDisk.js), stage, bytes, transcript(),
// times: {stage: ms since navigation} }.

import { useEffect, useRef, useState } from "react";
import { diskOption } from "./lazyDisk";
import { fetchManifest, startV86, stateUsable } from "./loadV86";
import { createStageTracker, STAGE_LABELS } from "./stages";
import { createTerminal } from "./terminal";
import { startV86Worker } from "./workerV86";

const TRANSCRIPT_LIMIT = 256 * 1024;

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

  useEffect(() => {
    let disposed = false;
    let transcript = "";
    let pending = [];
    const times = {};
    const decoder = new TextDecoder();
    const perFile = {};

    const enter = (name) => {
      times[name] = Math.round(performance.now());
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

    (async () => {
      const manifest = await fetchManifest(manifestUrl);
      if (disposed) return;
      trackerRef.current = createStageTracker(manifest.stages, (mark) => {
        enter(mark);
        if (mark === "prompt") terminal.term.focus();
      });
      const params = new URLSearchParams(window.location.search);
      const fromState = params.get("boot") !== "cold" && stateUsable(manifest);
      const inWorker = params.get("engine") !== "main";
      publish({ boot: fromState ? "state" : "cold", engine: inWorker ? "worker" : "main" });
      const { mode: disk, hda } = await diskOption(manifest, params.get("disk"));
      publish({ disk });
      const emulator = inWorker
        ? startV86Worker(manifest, fromState, hda)
        : await startV86(manifest, fromState, hda);
      if (disposed) {
        emulator.destroy();
        return;
      }
      emulatorRef.current = emulator;
      emulator.add_listener("download-progress", (e) => {
        perFile[e.file_name] = { loaded: e.loaded, total: e.lengthComputable ? e.total : 0 };
        const files = Object.values(perFile);
        const loaded = files.reduce((sum, f) => sum + f.loaded, 0);
        const total = files.reduce((sum, f) => sum + f.total, 0);
        publish({ bytes: loaded });
        setBytes({ loaded, total });
      });
      emulator.add_listener("download-error", (e) =>
        setError(`download failed: ${e.file_name || "a file"}`),
      );
      emulator.add_listener("emulator-started", () => {
        if (!fromState) return enter("firmware");
        // The snapshot was taken at the prompt: skip the markers, ask for a fresh prompt.
        trackerRef.current.skipAll();
        enter("prompt");
        terminal.term.focus();
        emulator.serial0_send("\n");
      });
      emulator.add_listener("serial0-output-byte", (byte) => {
        if (pending.length === 0) setTimeout(flush, 0);
        pending.push(byte);
      });
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
        {error && <span className="vm-error">{error}</span>}
      </div>
      <div className="vm-terminal" ref={container} />
    </section>
  );
}
