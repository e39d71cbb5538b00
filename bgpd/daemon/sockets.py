"""Socket options for BGP connections: TCP-MD5 (RFC 2385) and GTSM (RFC 5082), source address.

Python has no constant for `TCP_MD5SIG` (14) and no helper for its option structure, so the
Linux `struct tcp_md5sig` is packed here by hand: a 128-octet `sockaddr_storage` holding the
peer address, flags (u8), prefix length (u8), key length (u16), padding (u32) and an 80-octet key.
A listening socket carries one key per peer; a connecting socket carries its peer's key.

GTSM: we send with TTL (hop limit) 255 and refuse segments whose TTL is below 255 - hops + 1
(`IP_MINTTL`, `IPV6_MINHOPCOUNT`), so that a spoofer several hops away cannot reach the session.
"""

from __future__ import annotations

import ipaddress
import socket
import struct

TCP_MD5SIG = 14
TCP_MD5SIG_MAXKEYLEN = 80
IP_MINTTL = 21
IP_FREEBIND = 15
IPV6_MINHOPCOUNT = 73
SOCKADDR_STORAGE = 128


def _sockaddr(address: str, listener_family: int) -> bytes:
    ip = ipaddress.ip_address(address)
    if listener_family == socket.AF_INET6 and ip.version == 4:
        ip = ipaddress.IPv6Address(f"::ffff:{ip}")  # a v4 peer on a dual-stack listener
    if ip.version == 4:
        raw = struct.pack("=H", socket.AF_INET) + struct.pack("!H", 0) + ip.packed
    else:
        raw = struct.pack("=H", socket.AF_INET6) + struct.pack("!HI", 0, 0) + ip.packed
        raw += struct.pack("=I", 0)
    return raw.ljust(SOCKADDR_STORAGE, b"\0")


def md5sig(address: str, password: str, listener_family: int = socket.AF_INET) -> bytes:
    """The `struct tcp_md5sig` for `address`; an empty password removes the key."""
    key = password.encode()
    if len(key) > TCP_MD5SIG_MAXKEYLEN:
        raise ValueError("TCP-MD5 keys are at most 80 octets")
    head = struct.pack("=BBHI", 0, 0, len(key), 0)
    return _sockaddr(address, listener_family) + head + key.ljust(TCP_MD5SIG_MAXKEYLEN, b"\0")


def set_md5(sock: socket.socket, address: str, password: str) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, TCP_MD5SIG, md5sig(address, password, sock.family))


def set_ttl_255(sock: socket.socket) -> None:
    if sock.family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
    else:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 255)


def set_min_ttl(sock: socket.socket, hops: int = 1) -> None:
    if sock.family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MINHOPCOUNT, 256 - hops)
    else:
        sock.setsockopt(socket.IPPROTO_IP, IP_MINTTL, 256 - hops)


def set_gtsm(sock: socket.socket, hops: int = 1) -> None:
    """Send with TTL 255 and accept only TTL >= 256 - hops (RFC 5082 §3)."""
    set_ttl_255(sock)
    set_min_ttl(sock, hops)


def family_of(address: str) -> int:
    return socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET


def connecting_socket(
    address: str, local_address: str, password: str, ttl_security: bool
) -> socket.socket:
    """A non-blocking socket to connect to a peer, with its source address and options."""
    sock = socket.socket(family_of(address), socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if password:
            set_md5(sock, address, password)
        if ttl_security:
            # The minimum TTL is set once connected (`set_min_ttl`): some listeners (BIRD's)
            # answer the SYN with their default TTL before the session applies GTSM.
            set_ttl_255(sock)
        if local_address:
            sock.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
            sock.bind((local_address, 0))
    except BaseException:
        sock.close()
        raise
    return sock


def listening_socket(address: str, port: int) -> socket.socket:
    sock = socket.socket(family_of(address), socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if sock.family == socket.AF_INET6 and address == "::":
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        # The SYN-ACK leaves from the listener: it must carry TTL 255 for a GTSM peer's
        # IP_MINTTL to accept it (RFC 5082 §3). A higher TTL is harmless to other peers.
        if sock.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
        else:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 255)
        sock.bind((address, port))
        sock.listen(64)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
