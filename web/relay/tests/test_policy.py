"""Every refused address class, with example addresses from the RFCs that define them
(and the well-known cloud metadata address); expected classes come from the RFCs."""

from __future__ import annotations

import ipaddress

import pytest

from web.relay.policy import Allowlist, classify, parse_endpoint, refusal

REFUSED = [
    ("127.0.0.1", "loopback"), ("127.255.255.254", "loopback"),
    ("10.0.0.1", "private"), ("172.16.0.1", "private"), ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"),
    ("100.64.0.1", "CGNAT"), ("100.127.255.254", "CGNAT"),
    ("224.0.0.1", "multicast"), ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"), ("255.255.255.255", "broadcast"),
    ("0.0.0.0", "unspecified"), ("0.1.2.3", "this network"),
    ("192.0.2.1", "documentation"), ("198.51.100.7", "documentation"),
    ("203.0.113.9", "documentation"), ("198.18.0.1", "benchmarking"),
    ("192.0.0.8", "IETF"), ("192.88.99.1", "6to4 relay"),
    ("::", "unspecified"), ("::1", "loopback"),
    ("::ffff:127.0.0.1", "IPv4-mapped"), ("::ffff:8.8.8.8", "IPv4-mapped"),
    ("::127.0.0.1", "IPv4-compatible"),
    ("64:ff9b::10.0.0.1", "NAT64"), ("64:ff9b::8.8.8.8", "NAT64"), ("64:ff9b:1::1", "NAT64"),
    ("2002:c0a8:0101::1", "6to4"), ("2002:7f00:0001::1", "6to4"),
    # Teredo (RFC 4380 s4): server 65.54.227.120 = 4136:e378, client stored XOR ffffffff;
    # 192.168.1.1 -> 3f57:fefe.
    ("2001:0:4136:e378:8000:63bf:3f57:fefe", "Teredo"),
    ("fd00::1", "unique local"), ("fc00::1", "unique local"),
    ("fe80::1", "link-local"), ("fe80::1%2", "scoped"), ("fec0::1", "site-local"),
    ("ff02::1", "multicast"), ("2001:db8::1", "documentation"), ("3fff::1", "documentation"),
    ("100::1", "discard"), ("4000::1", "reserved"), ("2001:2::1", "IETF"),
]

PUBLIC = [
    "1.1.1.1", "8.8.8.8", "11.0.0.1", "100.63.255.255", "100.128.0.0", "172.15.255.255",
    "172.32.0.1", "169.253.255.255", "223.255.255.254",
    "2606:4700:4700::1111", "2001:4860:4860::8888",
    "2002:0808:0808::1",  # 6to4 of 8.8.8.8
    "2001:0:4136:e378:8000:63bf:f7f7:f7f7",  # Teredo, client 8.8.8.8 XOR ffffffff
]


@pytest.mark.parametrize("text, kind", REFUSED, ids=[a for a, _ in REFUSED])
def test_non_public_address_is_refused_naming_its_class(text, kind):
    why = classify(ipaddress.ip_address(text))
    assert why is not None and kind in why


@pytest.mark.parametrize("text", PUBLIC)
def test_public_unicast_is_admitted(text):
    assert classify(ipaddress.ip_address(text)) is None
    assert refusal(ipaddress.ip_address(text), 443, Allowlist()) is None


def test_loopback_refused_without_allowlist_and_admitted_only_for_its_port():
    loopback = ipaddress.ip_address("127.0.0.1")
    assert "loopback" in refusal(loopback, 8080, Allowlist())
    allow = Allowlist.parse(["127.0.0.1:8080"])
    assert refusal(loopback, 8080, allow) is None
    assert refusal(loopback, 8081, allow) is not None
    assert refusal(ipaddress.ip_address("127.0.0.2"), 8080, allow) is not None


def test_smtp_port_refused_on_public_addresses():
    assert "SMTP" in refusal(ipaddress.ip_address("8.8.8.8"), 25, Allowlist())


@pytest.mark.parametrize("spec, expected", [
    ("127.0.0.1:8080", ("127.0.0.1", 8080)), ("[::1]:443", ("::1", 443)),
])
def test_endpoint_spec(spec, expected):
    ip, port = parse_endpoint(spec)
    assert (str(ip), port) == expected


@pytest.mark.parametrize("spec, needle", [
    ("localhost:80", "not an IP address"), ("127.0.0.1", "expected IP:PORT"),
    ("127.0.0.1:0", "1..65535"), ("127.0.0.1:http", "1..65535"),
])
def test_bad_endpoint_spec_says_what_is_wrong(spec, needle):
    with pytest.raises(ValueError, match=needle):
        parse_endpoint(spec)
