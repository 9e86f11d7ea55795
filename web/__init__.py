"""The web demo's server side: the Wisp network relay and the CDN-like static server."""
