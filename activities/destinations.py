"""Where webhooks may be POSTed: never to an internal address unless the operator allows its network.

A callback URL comes from a caller, and the worker POSTs from inside the network, so a URL naming
``127.0.0.1``, ``169.254.169.254`` (cloud metadata) or a database port would let any caller reach what only
the engine should. :class:`DestinationPolicy` refuses loopback, private, link-local, multicast, unspecified,
reserved and other non-global addresses (IPv4 and IPv6; an IPv6 address carrying an IPv4 one, such as
``::ffff:127.0.0.1``, is judged by the IPv4 address) unless one of ``allowed_networks`` contains it.

The check happens where the connection is made: :func:`webhook_client` resolves the host once, checks every
address it resolves to, and connects to a checked address, so a name that resolves to a public address when
checked and to an internal one a moment later (DNS rebinding) cannot slip through. The request keeps the URL's
host name, so the ``Host`` header, TLS server name and certificate verification are those of the URL.
:meth:`DestinationPolicy.static_refusal` refuses at start what needs no lookup (IP literals, ``localhost``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

LOOPBACK_NETWORKS = "127.0.0.0/8,::1/128"
"""The networks a development stack allows, so receivers on the same machine get their webhooks."""

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NUMERIC_HOST = re.compile(r"(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}")
"""Host forms the C resolver reads as an IPv4 address: ``2130706433``, ``0x7f.1``, ``0177.0.0.1``, ``127.1``."""


class RefusedDestination(Exception):
    """A webhook's host is or resolves to an address the policy refuses; nothing was sent."""


def embedded_ipv4(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address stands for (mapped ``::ffff:a.b.c.d``, 6to4, NAT64), else itself."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def internal_kind(address: IPAddress) -> str | None:
    """What kind of internal address ``address`` is (``"a loopback address"``, …); None when it is global."""
    address = embedded_ipv4(address)
    for kind, found in (
        ("an unspecified address", address.is_unspecified),
        ("a loopback address", address.is_loopback),
        ("a link-local address", address.is_link_local),
        ("a multicast address", address.is_multicast),
        ("a reserved address", address.is_reserved),
        ("a private address", address.is_private),
        ("not a globally routable address", not address.is_global),
    ):
        if found:
            return kind
    return None


def host_literal(host: str) -> IPAddress | None:
    """The address a URL host names without a lookup: an IP literal (``[::1]`` too) or a numeric IPv4 form."""
    name = host.strip("[]").rstrip(".").lower()
    try:
        return ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        pass
    if _NUMERIC_HOST.fullmatch(name):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(name))
        except OSError:
            return None
    return None


def parse_networks(text: str) -> tuple[IPNetwork, ...]:
    """Comma-separated CIDRs (``10.20.0.0/16, ::1/128``; a bare address is one host); ValueError names a bad one."""
    networks = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry))
        except ValueError as error:
            raise ValueError(f"{entry!r} is not a network in CIDR form (e.g. 10.20.0.0/16): {error}") from None
    return tuple(networks)


def host_listed(host: str, entries: str) -> bool:
    """Whether ``host`` is one of the comma-separated host names ``entries`` (exact, or `.example.com` for a
    domain and its subdomains)."""
    listed = [entry.strip().lower() for entry in entries.split(",") if entry.strip()]
    host = host.lower()
    return any(
        host == entry or (entry.startswith(".") and (host.endswith(entry) or host == entry[1:])) for entry in listed
    )


@dataclass(frozen=True)
class DestinationPolicy:
    """Which addresses a webhook may reach: any global address, and internal ones in ``allowed_networks``."""

    allowed_networks: tuple[IPNetwork, ...] = ()

    def refusal(self, address: IPAddress) -> str | None:
        """Why ``address`` is refused (None: allowed)."""
        kind = internal_kind(address)
        if kind is None or any(
            candidate in network
            for candidate in {address, embedded_ipv4(address)}
            for network in self.allowed_networks
            if candidate.version == network.version
        ):
            return None
        return f"{address} is {kind}, not in WEBHOOK_ALLOWED_NETWORKS"

    def static_refusal(self, host: str) -> str | None:
        """Why a URL with this host is refused before any lookup: an IP literal or numeric form refused by
        :meth:`refusal`, or ``localhost`` (RFC 6761: always loopback) while 127.0.0.1 is refused. None when
        only the lookup at delivery can tell."""
        name = host.strip("[]").rstrip(".").lower()
        if name == "localhost" or name.endswith(".localhost"):
            refused = self.refusal(ipaddress.IPv4Address("127.0.0.1"))
            return None if refused is None else f"{host} is always a loopback address, not in WEBHOOK_ALLOWED_NETWORKS"
        address = host_literal(name)
        return None if address is None else self.refusal(address)

    async def resolve(self, host: str, port: int) -> list[str]:
        """The addresses ``host`` resolves to, all checked; RefusedDestination when any of them is refused
        (a name answering with one public and one internal address is refused, whichever would be used)."""
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        for address in addresses:
            refused = self.refusal(ipaddress.ip_address(address.split("%", 1)[0]))
            if refused is not None:
                named = "" if host_literal(host) is not None else f"{host} resolves to "
                raise RefusedDestination(named + refused)
        return addresses


class CheckedNetworkBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to addresses the policy allows: one lookup, then a
    connection to a checked address. TLS still verifies the URL's host name (httpcore passes it as the server
    name when it starts TLS on the returned stream)."""

    def __init__(self, policy: DestinationPolicy) -> None:
        self._policy = policy
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                addresses = await self._policy.resolve(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} took over {timeout}s") from None
        except socket.gaierror as error:
            raise httpcore.ConnectError(f"cannot resolve {host}: {error}") from None
        for address in addresses[:-1]:  # the next address when one does not answer, like a browser
            try:
                return await self._backend.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout):
                continue
        return await self._backend.connect_tcp(addresses[-1], port, timeout, local_address, socket_options)

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class _CheckedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, policy: DestinationPolicy) -> None:
        super().__init__(trust_env=False)
        # httpx 0.28 takes no network backend, so its pool is made again with one (and httpx's default limits).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=CheckedNetworkBackend(policy),
        )


def webhook_client(policy: DestinationPolicy) -> httpx.AsyncClient:
    """An HTTP client that reaches only what ``policy`` allows (RefusedDestination otherwise). It follows no
    redirect and ignores proxy variables: either would send the request somewhere not checked here."""
    return httpx.AsyncClient(transport=_CheckedTransport(policy), trust_env=False, follow_redirects=False)
