"""Random packet sequences (Hypothesis) never hurt the relay: after any of them, a fresh
client is still served and the offender holds no stream. Host names are letters only
and the resolver answers 127.0.0.1, so nothing can leave the machine."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from web.relay import frames
from web.relay.config import RelayConfig

from .conftest import next_packet, run, running_relay, wait_until


async def _loopback_resolver(host: str, port: int) -> list:
    return ["127.0.0.1"]


CONFIG = RelayConfig(resolver=_loopback_resolver)

connects = st.builds(
    lambda sid, kind, port, host: frames.encode_connect(sid, host, port, kind),
    st.integers(0, 4), st.integers(0, 3), st.integers(0, 65535),
    st.text("abcdefghijklmnopqrstuvwxyz.-", min_size=1, max_size=20))
others = st.builds(
    lambda kind, sid, payload: frames.encode(kind, sid, payload),
    st.integers(0, 8), st.integers(0, 4), st.binary(max_size=16))
messages = st.lists(st.one_of(connects, others, st.binary(max_size=6),
                              st.text(max_size=4)), max_size=12)


@given(messages)
def test_any_packet_sequence_leaves_the_relay_serving(sequence):
    async def scenario():
        async with running_relay(CONFIG) as (url, relay):
            async with connect(url) as ws:
                try:
                    for message in sequence:
                        await ws.send(message)
                    await asyncio.sleep(0)  # let the relay read what it was sent
                except ConnectionClosed:
                    pass
            await wait_until(lambda: relay.stats.open_connections == 0, 10, "offender gone")
            async with connect(url) as fresh:
                packet = await next_packet(fresh)
            return packet, relay.stats.open_streams

    packet, open_streams = run(scenario())
    assert (packet.kind, packet.stream_id) == (frames.CONTINUE, 0)
    assert open_streams == 0
