"""Which receiver URLs a webhook may have, and the address a delivery connects to.

A receiver is an `https` URL. Outside development its host must resolve only to public
addresses: private, loopback, link-local (169.254.169.254, the cloud metadata service),
shared, multicast, reserved and unspecified ones are refused, so a webhook cannot be aimed
at the machines behind the firewall (server-side request forgery). The check runs when the
URL is set and again before each delivery, and the delivery connects to the very address
that was checked (the URL's host stays in `Host` and in TLS's server name): a DNS answer
that changes between the check and the connection (DNS rebinding) cannot slip through.

Loopback receivers (over `http` too) are accepted in development, or wherever
`WEBHOOK_ALLOW_LOOPBACK` says so."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from commissary.config import Settings

MAX_URL_LENGTH = 2000
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class RefusedUrl(ValueError):
    """The URL may not receive webhooks; the message says why."""


class UnresolvedHost(RefusedUrl):
    """The host has no address (now): a delivery retries it, a new URL is refused."""


@dataclass(frozen=True)
class Target:
    """Where a delivery goes: ``url`` names the checked address; ``host_header`` and
    ``server_name`` (TLS) keep the URL's own host."""

    url: str
    host_header: str | None = None
    server_name: str | None = None


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _is_loopback_name(host: str) -> bool:
    address = _literal(host)
    if address is not None:
        return address.is_loopback
    return host == "localhost" or host.endswith(".localhost")


def _is_public(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not (
        address.is_multicast or address.is_reserved or address.is_unspecified
    )


def _split(url: str) -> tuple[str, str, int]:
    """The scheme, host and port of a well-formed absolute URL."""
    if len(url) > MAX_URL_LENGTH:
        raise RefusedUrl(f"must be at most {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise RefusedUrl("must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise RefusedUrl(f"is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise RefusedUrl("must be an https:// URL")
    if not parts.hostname:
        raise RefusedUrl("must name a host")
    if parts.username is not None or parts.password is not None:
        raise RefusedUrl("must not carry a user name or password")
    if parts.fragment:
        raise RefusedUrl("must not have a #fragment")
    try:
        parts.hostname.encode("idna")
    except UnicodeError:
        raise RefusedUrl("must name a valid host") from None
    default = 443 if parts.scheme == "https" else 80
    return parts.scheme, parts.hostname.lower(), port or default


def check_form(url: str, settings: Settings) -> None:
    """Refuse a URL by its text alone: not https (http is for loopback where allowed)."""
    scheme, host, _port = _split(url)
    if scheme == "http" and not (settings.webhooks_reach_loopback and _is_loopback_name(host)):
        where = "on loopback " if settings.webhooks_reach_loopback else ""
        raise RefusedUrl(f"must be an https:// URL (http:// is accepted {where}in development)")


async def resolve(host: str, port: int, seconds: float) -> list[Address]:
    """Every address ``host`` resolves to, within ``seconds``, without blocking the loop."""
    literal = _literal(host)
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(seconds):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError):
        raise UnresolvedHost(f"host {host!r} does not resolve") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).partition("%")[0]) for info in infos]
    if not addresses:
        raise UnresolvedHost(f"host {host!r} does not resolve")
    return list(dict.fromkeys(addresses))


def _refuse_private(host: str, addresses: list[Address], settings: Settings) -> None:
    for address in addresses:
        if _is_public(address):
            continue
        if settings.webhooks_reach_loopback and address.is_loopback:
            continue
        named = str(address) if str(address) == host else f"{host} resolves to {address}"
        raise RefusedUrl(
            f"must reach a public address: {named}, which is private, loopback, "
            "link-local or reserved"
        )


async def check(url: str, settings: Settings) -> None:
    """Refuse ``url`` as a webhook's receiver (see the module's docstring)."""
    await target(url, settings)


async def target(url: str, settings: Settings) -> Target:
    """Check ``url`` now and give the address to connect to."""
    check_form(url, settings)
    _scheme, host, port = _split(url)
    if settings.environment == "development" and _literal(host) is None:
        return Target(url=url)  # any address, resolved by the client
    addresses = await resolve(host, port, settings.webhook_timeout)
    if settings.environment != "development":
        _refuse_private(host, addresses, settings)
    if _literal(host) is not None:
        return Target(url=url)
    pinned = _pinned(url, addresses[0])
    return Target(url=pinned, host_header=urlsplit(url).netloc, server_name=host)


def _pinned(url: str, address: Address) -> str:
    parts = urlsplit(url)
    literal = f"[{address}]" if isinstance(address, ipaddress.IPv6Address) else str(address)
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    return parts._replace(netloc=netloc).geturl()
