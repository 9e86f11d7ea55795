// The saved state, fetched and checked by the page before v86 sees it, and restored by
// the page too, so that every way it can fail ends in a cold boot the page announces
// instead of a machine that never starts:
//   - the download fails (network, 404)            -> fetchState throws
//   - it is truncated or altered (size, sha256)   -> fetchState throws
//   - v86 rejects it (bad zstd, bad header, wrong version) -> restoreWhenLoaded's onFailure
// v86 restoring an `initial_state` itself would throw inside its own start-up, where the
// page cannot catch it. The sha256 check needs WebCrypto, which browsers give only to
// secure origins (https, localhost); elsewhere the size check and v86's own checks remain.

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

// -> ArrayBuffer of the state file as the manifest describes it; throws Error(reason).
export async function fetchState(manifest, onProgress) {
  const { file, size, sha256 } = manifest.state;
  const url = `os/${file}`;
  let response;
  try {
    response = await fetch(url);
  } catch (e) {
    throw new Error(`${file}: download failed (${e.message || e})`);
  }
  if (!response.ok) throw new Error(`${file}: HTTP ${response.status}`);
  const bytes = new Uint8Array(size);
  let loaded = 0;
  try {
    const reader = response.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (loaded + value.length > size) throw new Error(`longer than ${size} bytes`);
      bytes.set(value, loaded);
      loaded += value.length;
      onProgress(url, loaded, size);
    }
  } catch (e) {
    throw new Error(`${file}: download failed (${e.message || e})`);
  }
  if (loaded !== size) throw new Error(`${file}: truncated (${loaded} of ${size} bytes)`);
  if (globalThis.crypto?.subtle) {
    const digest = hex(await crypto.subtle.digest("SHA-256", bytes));
    if (digest !== sha256) throw new Error(`${file}: sha256 does not match the manifest`);
  }
  return bytes.buffer;
}

// v86's restore_state first zeroes all of the guest's memory (128 MiB), then writes the
// state's non-zero pages. Restoring into a machine that has never run, only the first MiB
// needs it: v86 allocated the memory zero-filled and its setup writes only below 1 MiB
// (the BIOS images, a byte at 0xefdc); touching the rest made the operating system commit
// and clear 127 MiB of fresh pages, most of v86's first restore. The same function as
// public/v86-worker.js's (a classic worker script, which cannot import this module);
// web/tests/test_fresh_restore.py checks both.
const SETUP_MEMORY = 1 << 20;

export async function restoreIntoFreshMachine(machine, bytes) {
  const cpu = machine.v86 && machine.v86.cpu;
  const zero = cpu && cpu.zero_memory;
  if (typeof zero !== "function") return machine.restore_state(bytes);
  cpu.zero_memory = (start, length) => zero(start, Math.max(0, Math.min(length, SETUP_MEMORY - start)));
  try {
    return await machine.restore_state(bytes);
  } finally {
    cpu.zero_memory = zero;
  }
}

// For a V86 made with autostart: false and no boot files: once it has loaded and `state`
// (an ArrayBuffer, or fetchState's promise of one) is there, restore it and run;
// onFailure(reason) if the state never came or v86 throws while restoring.
export function restoreWhenLoaded(emulator, state, onFailure) {
  emulator.add_listener("emulator-loaded", async () => {
    let bytes;
    try {
      bytes = await state;
    } catch (e) {
      onFailure(e.message || String(e));
      return;
    }
    try {
      await restoreIntoFreshMachine(emulator, bytes);
    } catch (e) {
      onFailure(`v86 could not restore it (${e.message || e})`);
      return;
    }
    emulator.run();
  });
}
