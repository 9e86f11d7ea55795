// The optional tools disk (manifest.disk) as v86's `hda`, read lazily: v86 fetches only
// the sectors the guest reads. Through HTTP Range when the host honours it; otherwise
// through the build's fixed-size chunk files (v86 `use_parts`), because v86 aborts a
// ranged read answered with the whole file and the guest's disk read then never ends.
// `?disk=chunks` forces the chunk files (to compare the two). The disk is always attached
// when the build has one: the saved state was made with it, and v86 cannot restore a state
// into another device set.

// One small ranged request, for the first sector: 206 with a Content-Range means Range
// works. A host that ignores Range starts sending the whole disk, so the request is cut off
// after the headers. The sector itself is read whole (not awaited): the browser's cache
// then answers v86's read of it before its start (as earlyStart.js's copy does).
export async function hostHonoursRange(url) {
  const controller = new AbortController();
  try {
    const response = await fetch(url, {
      headers: { Range: "bytes=0-511" },
      signal: controller.signal,
    });
    const range = response.headers.get("content-range") || "";
    const honoured = response.status === 206 && /^bytes 0-511\/\d+$/.test(range.trim());
    if (honoured) response.arrayBuffer().catch(() => {});
    else controller.abort();
    return honoured;
  } catch {
    controller.abort();
    return false;
  }
}

// -> { mode: "range" | "chunks" | "none", hda: v86's hda option or undefined }
export async function diskOption(manifest, requested) {
  if (!manifest.disk) return diskForMode(manifest, "none");
  const byRange = requested !== "chunks" && (await hostHonoursRange(`os/${manifest.disk.file}`));
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
