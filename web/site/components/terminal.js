// xterm.js bound to a serial line: output bytes are written as UTF-8, input (keys, IME,
// paste) goes out as UTF-8 bytes. Ctrl+Shift+C / Ctrl+Shift+V copy and paste, since plain
// Ctrl+C must stay the interrupt character for the guest.

import { FitAddon } from "@xterm/addon-fit";
import { Terminal } from "@xterm/xterm";

export function createTerminal(container, sendBytes) {
  const term = new Terminal({
    convertEol: false,
    cursorBlink: true,
    fontSize: 14,
    scrollback: 5000,
    theme: { background: "#000000" },
  });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open(container);
  fit.fit();
  const encoder = new TextEncoder();
  term.onData((data) => sendBytes(encoder.encode(data)));
  term.attachCustomKeyEventHandler((event) => {
    if (event.type !== "keydown" || !event.ctrlKey || !event.shiftKey) return true;
    if (event.code === "KeyC" && term.hasSelection()) {
      navigator.clipboard?.writeText(term.getSelection());
      return false;
    }
    // Ctrl+Shift+V: let the browser deliver a paste event, which xterm turns into onData.
    return event.code !== "KeyV";
  });
  const observer = new ResizeObserver(() => fit.fit());
  observer.observe(container);
  return {
    term,
    write: (bytes) => term.write(bytes),
    dispose() {
      observer.disconnect();
      term.dispose();
    },
  };
}
