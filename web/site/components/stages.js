// Recognises the boot stages in the serial output with the markers the build copies from
// images/contract.py into the manifest (the harness waits for the same ones), so the page
// and the tests agree on what "at the prompt" means.

export const STAGE_LABELS = {
  loading: "downloading",
  restored: "restored, waiting for the shell",
  firmware: "firmware (SeaBIOS)",
  kernel: "kernel",
  init: "userspace starting",
  prompt: "shell ready",
};

// markers: [[mark, text], ...] in boot order, e.g. [["kernel", "Linux version"], ...].
export function createStageTracker(markers, onStage) {
  let next = 0;
  let tail = "";
  const longest = Math.max(1, ...markers.map(([, text]) => text.length));
  return {
    feed(text) {
      if (next >= markers.length) return;
      tail = (tail + text).slice(-(longest + text.length));
      while (next < markers.length) {
        const [mark, marker] = markers[next];
        const at = tail.indexOf(marker);
        if (at < 0) break;
        tail = tail.slice(at + marker.length);
        next += 1;
        onStage(mark);
      }
    },
    reset() {
      next = 0;
      tail = "";
    },
  };
}
