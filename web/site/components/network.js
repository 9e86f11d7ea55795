// The guest's network: the page always gives v86 the manifest's NIC (the saved state was
// made with it, and v86 cannot restore a state into another device set); a Wisp relay
// behind it is optional. Without one the NIC is there but nothing answers, and the guest
// works as before (its background DHCP client just keeps asking).
//
// Which relay: `?relay=URL` on the page, else the build's `x86lab web build --relay-url`
// (manifest.relay_url); `?relay=none` turns it off. URLs are wss:// (or ws:// for local
// development); v86 wants them spelled wisps:// / wisp://, which are accepted too.

const SCHEMES = { "ws:": "wisp:", "wss:": "wisps:", "wisp:": "wisp:", "wisps:": "wisps:" };

// -> { url: "wisp(s)://..." | null, error: "" | reason the requested URL was refused }
export function chooseRelay(manifest, requested) {
  const text = requested ?? manifest.relay_url ?? "";
  if (text === "" || text === "none") return { url: null, error: "" };
  let parsed;
  try {
    parsed = new URL(text);
  } catch {
    return { url: null, error: `relay ${text}: not a URL` };
  }
  const scheme = SCHEMES[parsed.protocol];
  if (!scheme) return { url: null, error: `relay ${text}: expected wss://HOST/ or ws://HOST/` };
  return { url: scheme + text.slice(parsed.protocol.length), error: "" };
}

// v86's net_device option for the manifest's NIC and an optional relay URL.
export function netDevice(manifest, relayUrl) {
  return { type: manifest.devices.net, ...(relayUrl ? { relay_url: relayUrl } : {}) };
}
