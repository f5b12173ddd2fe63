"""Client addresses as throttles count them (no Flask).

An IPv6 subscriber is usually given a whole /64; counting each address of it apart would
let one machine act like a botnet of 2^64 clients. IPv6 clients are therefore counted by
their /64 network, IPv4 clients by their address.
"""
from __future__ import annotations

import functools
import ipaddress


@functools.lru_cache(maxsize=4096)  # every counted request asks it; parsing an address is the dear part
def client_key(address: str | None) -> str:
    """The key a client is throttled under: its IPv4 address, or its IPv6 /64."""
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return address.strip()[:64] or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)
