"""Which addresses a capture may connect to when private ones are blocked (`block_private`).

`ipaddress.is_global` alone is not enough: Python 3.11 calls `::127.0.0.1` and
`64:ff9b::7f00:1` global, and an IPv6 address that embeds an IPv4 one reaches that IPv4
host. So every IPv6 form that carries an IPv4 address is judged by the address it carries:
IPv4-mapped (RFC 4291 2.5.5.2), 6to4 (RFC 3056), NAT64 well-known prefix (RFC 6052) and
Teredo (RFC 4380, the client address stored inverted) and ISATAP (RFC 5214 6.1: an interface
identifier `0000:5efe` or `0200:5efe` then the IPv4 address). IPv4-compatible addresses (RFC 4291
2.5.5.1, deprecated) and the NAT64 local-use prefix (RFC 8215), whose embedding depends on
the local set-up, are never public.
"""
from __future__ import annotations

import ipaddress
from ipaddress import IPv4Address, IPv6Address

NAT64 = ipaddress.ip_network("64:ff9b::/96")            # RFC 6052: IPv4 in the last 32 bits
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")    # RFC 8215: local use, any embedding
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")         # RFC 4291 2.5.5.1 (with :: and ::1)
ISATAP_MASK, ISATAP_ID = 0xFDFFFFFF, 0x00005EFE          # RFC 5214 6.1, the u/l bit either way


def embedded_ipv4(address: IPv6Address) -> tuple[IPv4Address, ...]:
    """Return the IPv4 addresses an IPv6 address carries (mapped, 6to4, NAT64, Teredo's
    server and client, ISATAP), or () for one that carries none.

    >>> embedded_ipv4(IPv6Address("64:ff9b::7f00:1"))
    (IPv4Address('127.0.0.1'),)
    >>> [str(a) for a in embedded_ipv4(IPv6Address("2001:0:4136:e378:8000:63bf:80ff:fffe"))]
    ['65.54.227.120', '127.0.0.1']
    >>> embedded_ipv4(IPv6Address("2600::5efe:7f00:1"))
    (IPv4Address('127.0.0.1'),)
    """
    if address.ipv4_mapped is not None:
        return (address.ipv4_mapped,)
    if address.sixtofour is not None:
        return (address.sixtofour,)
    if address in NAT64:
        return (IPv4Address(int(address) & 0xFFFFFFFF),)
    if address.teredo is not None:
        return address.teredo   # (server, client), the client's bits already inverted back
    if (int(address) >> 32) & ISATAP_MASK == ISATAP_ID:
        return (IPv4Address(int(address) & 0xFFFFFFFF),)
    return ()


def is_public(text: str) -> bool:
    """Return True when a capture may connect to this address (a string, IPv4 or IPv6): a
    globally reachable unicast address, not private, loopback, link-local, shared (RFC 6598),
    reserved or multicast, in any IPv6 form that embeds an IPv4 address either.
    Raises ValueError for text that is not an address.

    >>> is_public("8.8.8.8"), is_public("::ffff:10.0.0.1"), is_public("2002:808:808::1")
    (True, False, True)
    """
    address = ipaddress.ip_address(text.split("%", 1)[0])   # a scope id (fe80::1%eth0) is no help
    if isinstance(address, IPv6Address):
        if address in IPV4_COMPATIBLE or address in NAT64_LOCAL:
            return False
        inner = embedded_ipv4(address)
        if inner:
            carried = all(_plain_public(a) for a in inner)
            # mapped, 6to4 and NAT64 reach the IPv4 host; Teredo and ISATAP must be global too
            tunnel = address.ipv4_mapped is None and address.sixtofour is None and address not in NAT64
            return carried and (not tunnel or _plain_public(address))
    return _plain_public(address)


def _plain_public(address: IPv4Address | IPv6Address) -> bool:
    return address.is_global and not (address.is_multicast or address.is_reserved
                                       or address.is_unspecified or address.is_loopback)
