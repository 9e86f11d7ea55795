"""The guest's side of the network check, shared by the Node-level and browser tests:
the stand-in address a guest downloads from (the relay maps it to a server on the host's
127.0.0.1 with ``--allow STAND_IN:80=127.0.0.1:PORT``) and the shell commands it runs."""

from __future__ import annotations

STAND_IN = "192.0.2.10"
"""TEST-NET-1 (RFC 5737): no real host has it, and the relay refuses it unless mapped."""
LEASE_WAIT_S = 60


def redirect_to(port: int) -> str:
    """The relay's ``--allow`` entry sending the guest's STAND_IN:80 to 127.0.0.1:port."""
    return f"{STAND_IN}:80=127.0.0.1:{port}"


def wait_for_lease(interface: str = "eth0", seconds: int = LEASE_WAIT_S) -> str:
    """Shell: wait until /init's background udhcpc has given ``interface`` an address."""
    return (f"for i in $(seq {seconds}); do ip -4 addr show {interface} | grep -q inet "
            f"&& break; sleep 1; done; ip -4 addr show {interface} | grep inet")


def download_and_hash(name: str) -> str:
    """Shell: fetch /NAME from the stand-in through the relay and print its sha256."""
    return f"wget -q -O /tmp/{name} http://{STAND_IN}/{name} && sha256sum /tmp/{name}"
