"""A Wisp v1 relay: lets an in-browser emulator (v86) open TCP streams, safely.

The guest's TCP connections arrive multiplexed over one WebSocket (the Wisp protocol,
MercuryWorkshop/wisp-protocol); the relay opens the real sockets on the guest's behalf,
but only to public unicast destinations (or an explicit allowlist), with per-client
limits, so that it can never be used as an open proxy into the host's network.
"""
