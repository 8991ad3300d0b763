"""Outgoing HTTP that cannot be turned against the inside (R23).

A webhook URL comes from a client, so a request to it could reach the loopback interface,
the private network or the cloud metadata service. Checking the URL's text is not enough:
`http://2130706433/`, `http://0177.0.0.1/`, `http://[::ffff:127.0.0.1]/`, a DNS name that
resolves to 10.0.0.5, or a public server that redirects to any of those all get through a
text check. So the check runs where the connection is made: every TCP connect (the first
request and every redirect hop) resolves the host itself, refuses if *any* address is
internal, and then connects to the address it checked, so DNS cannot answer differently
between the check and the connect (rebinding).

Internal means: not globally routable (loopback, private, link-local, the metadata address,
shared, reserved, unspecified), multicast, or an IPv6 address embedding such an IPv4 one
(mapped, compatible, 6to4, Teredo, NAT64). An allow-list of `cidr[:port]` rules opens chosen
internal targets (the tests' local server, an intranet hook).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpcore2
import httpx2

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))


class BlockedAddressError(Exception):
    """The target is an internal address that is not allow-listed. Never retried."""


@dataclass(frozen=True)
class AllowRule:
    network: IPNetwork
    port: int | None = None

    def allows(self, ip: IPAddress, port: int) -> bool:
        return ip.version == self.network.version and ip in self.network and (
            self.port is None or self.port == port
        )


def parse_allow_list(text: str) -> tuple[AllowRule, ...]:
    """`"127.0.0.1/32:8080, 10.0.0.0/8, [::1]:9000"` -> rules (ValueError when malformed)."""
    rules = []
    for raw in (part.strip() for part in text.split(",")):
        if not raw:
            continue
        port: int | None = None
        address = raw
        if raw.startswith("["):  # [v6]/len:port
            address, _, rest = raw[1:].partition("]")
            if rest.startswith("/"):
                prefix, _, port_text = rest[1:].partition(":")
                address = f"{address}/{prefix}"
            else:
                port_text = rest.removeprefix(":")
            port = int(port_text) if port_text else None
        elif raw.count(":") == 1:  # v4 with a port
            address, _, port_text = raw.partition(":")
            port = int(port_text)
        if port is not None and not 0 < port < 65536:
            raise ValueError(f"bad port in {raw!r}")
        rules.append(AllowRule(ipaddress.ip_network(address, strict=False), port))
    return tuple(rules)


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if any(ip in net for net in _NAT64) or int(ip) >> 32 == 0:  # NAT64, v4-compatible
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_internal(ip: IPAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_v4(ip)
        if inner is not None and is_internal(inner):
            return True
    return not ip.is_global or ip.is_multicast


@dataclass(frozen=True)
class AddressPolicy:
    allow: tuple[AllowRule, ...] = ()

    def check(self, ip: IPAddress, port: int) -> None:
        candidates = [ip]
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            candidates.append(ip.ipv4_mapped)
        if any(rule.allows(c, port) for rule in self.allow for c in candidates):
            return
        if is_internal(ip):
            raise BlockedAddressError(f"refused to connect to internal address {ip} (port {port})")

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        """Every address `host` resolves to, all checked (BlockedAddressError if one fails)."""
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise httpcore2.ConnectError(f"cannot resolve {host!r}: {exc}") from None
        addresses: list[IPAddress] = []
        for info in infos:
            ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            self.check(ip, port)
            if ip not in addresses:
                addresses.append(ip)
        if not addresses:
            raise httpcore2.ConnectError(f"{host!r} has no address")
        return addresses


class GuardedNetworkBackend(httpcore2.AsyncNetworkBackend):
    """httpcore's TCP connect, preceded by the policy check, connecting to the checked IP.
    TLS still verifies the certificate against the URL's host name (httpcore passes it as
    server_hostname), so connecting by address does not weaken HTTPS."""

    def __init__(self, policy: AddressPolicy) -> None:
        self._policy = policy
        self._inner = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        addresses = await self._policy.resolve(host, port)
        return await self._inner.connect_tcp(
            str(addresses[0]), port, timeout=timeout, local_address=local_address,
            socket_options=socket_options,
        )

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        raise BlockedAddressError("unix sockets are never reachable from a webhook")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def guarded_client(
    policy: AddressPolicy, *, timeout: float = 10.0, tls: ssl.SSLContext | None = None
) -> httpx2.AsyncClient:
    """An AsyncClient whose every connection goes through `policy`. No proxies from the
    environment (a proxy would make the connect-time check meaningless), redirects followed
    up to 5 hops, each hop a new connect and so a new check. `tls`: a context to reuse
    (loading the CA bundle for each client costs milliseconds of CPU)."""
    tls = tls if tls is not None else httpx2.create_ssl_context(trust_env=False)
    transport = httpx2.AsyncHTTPTransport(verify=tls, trust_env=False)
    # httpx has no public hook for the network backend; the pool it built is replaced by
    # an identical one that connects through the guard.
    transport._pool = httpcore2.AsyncConnectionPool(
        ssl_context=tls, network_backend=GuardedNetworkBackend(policy),
    )
    return httpx2.AsyncClient(
        transport=transport, follow_redirects=True, max_redirects=5, timeout=timeout,
        trust_env=False,
    )


class UnsafeURLError(ValueError):
    """A URL the demo will not even try (not http(s), no host, credentials in it)."""


def check_url(url: str) -> httpx2.URL:
    """The cheap checks done at enqueue time, so a bad URL is a 422, not a failed job."""
    try:
        parsed = httpx2.URL(url)
    except (httpx2.InvalidURL, TypeError, ValueError) as exc:
        raise UnsafeURLError(f"not a valid URL: {exc}") from None
    if parsed.scheme not in ("http", "https"):
        raise UnsafeURLError("only http and https URLs are allowed")
    if not parsed.host:
        raise UnsafeURLError("the URL has no host")
    if parsed.userinfo:
        raise UnsafeURLError("credentials in the URL are not allowed")
    if len(url) > 2000:
        raise UnsafeURLError("the URL is too long")
    return parsed


async def precheck(url: str, policy: AddressPolicy) -> None:
    """Enqueue-time check: also resolve, so `http://127.0.0.1/` is refused at once. The
    connect-time check stays the one that counts (DNS may change, redirects come later)."""
    parsed = check_url(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    # Unresolvable now is not refused: the job retries, and checks again at connect time.
    with contextlib.suppress(httpcore2.ConnectError):
        await policy.resolve(parsed.host, port)
