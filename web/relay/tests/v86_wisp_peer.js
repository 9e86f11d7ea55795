// Drive v86's own WispNetworkAdapter (from its libv86-debug.js build) against a relay:
// open one stream, send an HTTP/1.0 GET, and print what came back as one JSON line.
// Usage: node --experimental-websocket v86_wisp_peer.js LIBV86_DEBUG_JS WS_URL HOST PORT PATH
"use strict";
const fs = require("fs");
const crypto = require("crypto");

const [libPath, url, host, port, path] = process.argv.slice(2);
// The adapter lives inside the bundle's closure; expose it before the closure ends.
// (A replacer function, because "$$" in a replacement string would collapse to "$".)
const expose = "globalThis.V86WispAdapter = $WispNetworkAdapter$$module$src$browser$wisp_network$$;";
const source = fs.readFileSync(libPath, "utf8").replace(
    /\}\)\.call\(this\);\s*$/, () => expose + "\n})();");
new Function(source)();

const bus = { register() {}, send() {} };  // the NIC side is not needed for one stream
const adapter = new globalThis.V86WispAdapter(url, bus, {});
const chunks = [];
const deadline = setTimeout(() => finish("timeout"), 20000);

function finish(reason) {
    clearTimeout(deadline);
    const response = Buffer.concat(chunks);
    const split = response.indexOf("\r\n\r\n");
    const body = split < 0 ? Buffer.alloc(0) : response.subarray(split + 4);
    const digest = crypto.createHash("sha256").update(body).digest("hex");
    console.log(JSON.stringify({ reason, bytes: body.length, sha256: digest }));
    adapter.destroy();
    process.exit(0);
}

function start() {
    if (adapter.connections[0].congestion === 0) {  // wait for stream 0's CONTINUE
        setTimeout(start, 10);
        return;
    }
    adapter.send_wisp_frame({
        type: "CONNECT", stream_id: 1, hostname: host, port: Number(port),
        data_callback: (data) => chunks.push(Buffer.from(data)),
        close_callback: (reason) => finish(reason),
    });
    const request = `GET ${path} HTTP/1.0\r\nHost: ${host}\r\n\r\n`;
    adapter.send_wisp_frame({ type: "DATA", stream_id: 1, data: new TextEncoder().encode(request) });
}
start();
