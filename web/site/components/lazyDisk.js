// The optional tools disk (manifest.disk) as v86's `hda`, read lazily: v86 fetches only
// the sectors the guest reads. Through HTTP Range when the host honours it; otherwise
// through the build's fixed-size chunk files (v86 `use_parts`), because v86 aborts a
// ranged read answered with the whole file and the guest's disk read then never ends.
// `?disk=chunks` forces the chunk files (to compare the two). The disk is always attached
// when the build has one: the saved state was made with it, and v86 cannot restore a state
// into another device set.

// What the Range probe asks for (earlyStart.js has the same two figures). From the state:
// the first sector, which v86 reads before its start. Cold: the first 32 KiB, where every
// disk read the guest makes before its prompt lies (the kernel's partition scan, /init's
// mount: 12 KiB in all), so the browser's cache answers them instead of the network.
export const SECTOR_PROBE = 512;
export const COLD_PROBE = 32768;

// One small ranged request for the first `length` bytes: 206 with a Content-Range for
// exactly those bytes (all of a smaller disk) means Range works. A host that ignores Range
// starts sending the whole disk, so that request is cut off after the headers. An accepted
// body is read whole (not awaited), never cut off: the browser's cache keeps it and answers
// v86's reads inside it (a cached range cut short once hung a cold boot).
export async function hostHonoursRange(url, length = SECTOR_PROBE) {
  const controller = new AbortController();
  try {
    const response = await fetch(url, {
      headers: { Range: `bytes=0-${length - 1}` },
      signal: controller.signal,
    });
    const sent = (response.headers.get("content-range") || "").trim();
    const range = /^bytes 0-(\d+)\/(\d+)$/.exec(sent);
    const honoured =
      response.status === 206 &&
      range !== null &&
      Number(range[1]) === Math.min(length, Number(range[2])) - 1;
    if (honoured) response.arrayBuffer().catch(() => {});
    else controller.abort();
    return honoured;
  } catch {
    controller.abort();
    return false;
  }
}

// -> { mode: "range" | "chunks" | "none", hda: v86's hda option or undefined }; `length`:
// what the probe reads (SECTOR_PROBE from the state, COLD_PROBE for a cold boot).
export async function diskOption(manifest, requested, length = SECTOR_PROBE) {
  if (!manifest.disk) return diskForMode(manifest, "none");
  const byRange =
    requested !== "chunks" && (await hostHonoursRange(`os/${manifest.disk.file}`, length));
  return diskForMode(manifest, byRange ? "range" : "chunks");
}

// The same for a mode already chosen (by the page's <head> script: earlyStart.js).
export function diskForMode(manifest, mode) {
  const disk = manifest.disk;
  if (!disk || mode === "none") return { mode: "none", hda: undefined };
  const hda = { url: `os/${disk.file}`, async: true, size: disk.size };
  if (mode === "range") return { mode, hda };
  return { mode, hda: { ...hda, use_parts: true, fixed_chunk_size: disk.chunk_size } };
}
