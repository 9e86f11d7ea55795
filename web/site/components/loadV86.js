// Fetches the build's manifest and the hashed libv86.js it names, and starts v86 with the
// kernel and initramfs the build gated. Everything is relative to the page, so the site
// works from any sub-path of any static host.

function loadScript(url) {
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = url;
    script.async = true;
    script.onload = resolve;
    script.onerror = () => reject(new Error(`could not load ${url}`));
    document.head.appendChild(script);
  });
}

export async function fetchManifest(url) {
  const response = await fetch(url, { cache: "no-cache" });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

function asset(manifest, name) {
  const { file, size } = manifest.assets[name];
  return { url: `os/${file}`, size };
}

// A saved state restores only into the v86 build, memory sizes and devices that wrote it;
// the manifest records both sides, and anything different means a cold boot.
export function stateUsable(manifest) {
  const state = manifest.state;
  if (!state) return false;
  return (
    state.v86_version === manifest.v86_version &&
    state.memory_mib === manifest.memory_mib &&
    state.vga_memory_mib === manifest.vga_memory_mib &&
    state.kernel_sha256 === manifest.kernel_sha256 &&
    state.initrd_sha256 === manifest.initrd_sha256 &&
    JSON.stringify(state.devices) === JSON.stringify(manifest.devices)
  );
}

// fromState: the page restores the saved prompt itself (savedState.js), so v86 gets no
// boot files (not even SeaBIOS: the state's memory holds it) and waits; else it powers
// on with SeaBIOS, the kernel and the initramfs.
// hda: the lazy tools disk (lazyDisk.js), or undefined. net: v86's net_device (network.js).
export function v86Options(manifest, fromState, hda, net) {
  const MiB = 1024 * 1024;
  const boot = fromState
    ? {}
    : { bzimage: asset(manifest, "bzimage"), initrd: asset(manifest, "initrd") };
  return {
    wasm_path: asset(manifest, "wasm").url,
    memory_size: manifest.memory_mib * MiB,
    vga_memory_size: manifest.vga_memory_mib * MiB,
    // No VGA BIOS: the page has no screen (serial console only), and SeaBIOS running it
    // cost ~3 M of the ~22 M guest instructions before "Linux version" on v86.
    ...(fromState ? {} : { bios: asset(manifest, "bios") }),
    ...boot,
    cmdline: manifest.cmdline,
    autostart: !fromState,
    net_device: net,
    // The state's NIC keeps the MAC the guest's driver knows; a fresh one would make the
    // card drop every frame addressed to the guest.
    preserve_mac_from_state_image: true,
    // Typing goes through xterm.js into serial0, never the emulated PS/2 keyboard, so
    // phones' on-screen keyboards (which send no key events) work too.
    disable_keyboard: true,
    disable_mouse: true,
    disable_speaker: true,
    ...(hda ? { hda } : {}),
  };
}

// v86 on the page's main thread.
export async function startV86(manifest, fromState, hda, net) {
  if (!window.V86) await loadScript(asset(manifest, "libv86").url);
  return new window.V86(v86Options(manifest, fromState, hda, net));
}

export function libv86Url(manifest) {
  return asset(manifest, "libv86").url;
}

export function profilerUrl(manifest) {
  return asset(manifest, "profiler").url;
}

// The boot profiler (harness/engines/v86/profiler.js) on a main-thread V86: load it
// first, then attach it to the V86 right after making it (before v86 has loaded).
export async function loadProfiler(manifest) {
  if (!window.x86labProfiler) await loadScript(profilerUrl(manifest));
}

// -> a function returning a promise of the profile so far, as the worker's profile().
export function profileOnMainThread(emulator) {
  const profiler = window.x86labProfiler(emulator, () => performance.timeOrigin + performance.now());
  return () => {
    const downloads = performance.getEntriesByType("resource").map((entry) => ({
      name: entry.name,
      start: performance.timeOrigin + entry.startTime,
      end: performance.timeOrigin + entry.responseEnd,
      bytes: entry.transferSize,
    }));
    return Promise.resolve({ ...profiler.report("prompt"), downloads });
  };
}
