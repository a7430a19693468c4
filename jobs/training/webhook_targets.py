"""Webhook targets: where a webhook may go, decided on the addresses connected to rather than on the name.

A webhook URL is the user's to choose and the workers' to fetch, so unchecked it lets anyone with an account make
the workers POST into the network they sit in (server-side request forgery: the cloud metadata service on
169.254.169.254, an admin port on loopback, a database on 10.x). A target is therefore vetted in three steps:

1. the URL is http(s), and its host one of DISTILLERY_WEBHOOK_HOSTS when the operator names some;
2. the host is resolved once, and every address it resolves to must be public, IPv4 or IPv6 (an IPv4 address
   carried in IPv6, ::ffff:a.b.c.d, 64:ff9b::a.b.c.d or 2002:aabb:ccdd::, is judged as that IPv4 address);
   DISTILLERY_WEBHOOK_ALLOW_PRIVATE lets loopback and private addresses through for on-premises receivers;
3. the connection opens to one of those vetted addresses (PinnedHTTPConnection), never to a second lookup of the
   name, which could answer differently (DNS rebinding); the Host header, TLS SNI and the certificate check keep
   the name.

Runs in: the web process (vet at launch) and the workers (vet and connect at delivery).
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# IPv6 prefixes that carry an IPv4 address a packet may end up at (NAT64, 6to4); ::ffff:0:0/96 has ipv4_mapped.
NAT64 = ipaddress.ip_network("64:ff9b::/96")
THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")  # "this host on this network": Linux connects it to loopback
# Kinds DISTILLERY_WEBHOOK_ALLOW_PRIVATE lets through; the others are never a receiver.
PRIVATE_KINDS = ("loopback", "private")


class RefusedTarget(Exception):
    """The URL may not receive webhooks here; the message says why, for the person who gave it."""


class Unresolvable(Exception):
    """The URL's host name does not resolve (now)."""


@dataclass(frozen=True)
class Target:
    """A vetted webhook URL: where to connect (the resolver's answers, each checked) and what to ask for there."""

    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[tuple[int, tuple], ...]  # (address family, socket address), in the resolver's order

    def connection(self, timeout: float) -> http.client.HTTPConnection:
        """An HTTP(S) connection to this target's vetted addresses, with the URL's name as Host (and SNI)."""
        kind = PinnedHTTPSConnection if self.scheme == "https" else PinnedHTTPConnection
        connection = kind(self.host, self.port, timeout=timeout)
        connection.addresses = self.addresses
        return connection


def vet(url: str) -> Target:
    """The URL as a Target whose every address webhooks may reach; RefusedTarget (why) or Unresolvable if not."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RefusedTarget("give an http:// or https:// URL")
    allowed = settings.DISTILLERY_WEBHOOK_HOSTS
    if allowed and parts.hostname not in allowed:
        raise RefusedTarget(f"{parts.hostname} is not a webhook host here; ask the operator")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise RefusedTarget("give a port from 1 to 65535") from None
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    addresses = resolve(parts.hostname, port)
    return Target(parts.scheme, parts.hostname, port, path, addresses)


def resolve(host: str, port: int) -> tuple[tuple[int, tuple], ...]:
    """Look the host up once; every answer must be an address webhooks may reach, or none is used: a name that
    answers one public and one private address is a name someone is playing with."""
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise Unresolvable(f"{host} does not resolve ({exc.strerror})") from None
    except UnicodeError:
        raise RefusedTarget(f"{host} is not a valid host name") from None
    addresses = tuple(dict.fromkeys((family, sockaddr) for family, _, _, _, sockaddr in answers))
    if not addresses:
        raise Unresolvable(f"{host} resolves to no address")
    for _, sockaddr in addresses:
        ip = ipaddress.ip_address(sockaddr[0])
        kind = refused_kind(ip)
        if kind is not None:
            raise RefusedTarget(_refusal(host, ip, kind))
    return addresses


def refused_kind(ip: IPAddress) -> str | None:
    """What kind of address this is when webhooks may not go there under the current settings; None if they may."""
    kind = address_kind(ip)
    if kind in PRIVATE_KINDS and settings.DISTILLERY_WEBHOOK_ALLOW_PRIVATE:
        return None
    return kind


def address_kind(ip: IPAddress) -> str | None:
    """None for a public address; else which kind of non-public one (an IPv4 address in IPv6 judged as IPv4)."""
    ip = _embedded_ipv4(ip) or ip
    if ip.is_unspecified or ip in THIS_NETWORK:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:  # 224/4 and ff00::/8 count as global in ipaddress, hence asked first
        return "multicast"
    if ip.is_reserved:
        return "reserved"
    if not ip.is_global:  # RFC 1918, 100.64/10, fc00::/7, documentation and benchmarking ranges
        return "private"
    return None


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def _refusal(host: str, ip: IPAddress, kind: str) -> str:
    """Why, for the person who gave the URL: "localhost resolves to 127.0.0.1, which is a loopback address: ..." """
    named = "" if _same(host, ip) else f" resolves to {ip}, which"
    article = "an" if kind[0] in "aeiou" else "a"
    rule = "public and private" if settings.DISTILLERY_WEBHOOK_ALLOW_PRIVATE else "public"
    hint = " (an on-premises receiver: ask the operator)" if kind in PRIVATE_KINDS else ""
    return f"{host}{named} is {article} {kind} address: webhooks go to {rule} addresses only{hint}"


def _same(host: str, ip: IPAddress) -> bool:
    """Whether the host is this address written out (a literal IP in the URL), so the message need not repeat it."""
    try:
        return ipaddress.ip_address(host.split("%")[0]) == ipaddress.ip_address(str(ip).split("%")[0])
    except ValueError:
        return False


class PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to vetted addresses, tried in order as socket.create_connection would, whatever its Host header
    names: the socket connects to a socket address the resolver gave and vet() checked, with no second lookup."""

    addresses: tuple[tuple[int, tuple], ...] = ()

    def connect(self) -> None:
        error: OSError = OSError("no vetted address to connect to")
        for family, sockaddr in self.addresses:
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.settimeout(self.timeout)
                sock.connect(sockaddr)
            except OSError as exc:
                sock.close()
                error = exc
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as http.client does: small POSTs
            self.sock = sock
            return
        raise error


class PinnedHTTPSConnection(http.client.HTTPSConnection, PinnedHTTPConnection):
    """HTTPS to vetted addresses. HTTPSConnection.connect calls super().connect(), which this base order makes the
    pinned one above, then wraps the socket in TLS with SNI and the certificate checked against the URL's name."""
