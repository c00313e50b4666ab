"""Where webhooks may be sent: public http(s) addresses only, unless allowed.

A webhook URL is chosen by whoever holds a ``webhooks:write`` key; without
this guard it could make the server POST to its own admin ports, the cloud
metadata service (169.254.169.254) or anything on the private network. The
host is resolved and *every* address must be public, at registration and
again at each delivery (DNS can change); the delivery then connects to the
address that was checked (transport.py), so a second, different DNS answer
cannot slip in between. ``WEBHOOK_ALLOW_PRIVATE=1`` lifts the address rule
(the demo and tests deliver to localhost); the scheme rule always holds.
"""

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

ALLOWED_SCHEMES = {"http": 80, "https": 443}
NAT64 = ipaddress.ip_network("64:ff9b::/96")

Resolver = Callable[[str, int], list[str]]
PRIVATE_TARGETS_WARNING = (
    "WEBHOOK_ALLOW_PRIVATE is on: webhooks may target private, loopback and link-local "
    "addresses (the SSRF guard is off); for local testing only"
)


class UnsafeURL(ValueError):
    """The URL may not receive webhooks; the message says why, for the API client."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as written, without brackets
    port: int
    path: str  # path and query, at least "/"
    host_header: str
    addresses: tuple[str, ...]


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(text: str) -> bool:
    """Whether ``text`` is a globally routable unicast address."""
    address = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None and not is_public(str(inner)):
            return False
    return address.is_global and not (address.is_multicast or address.is_reserved or address.is_unspecified)


def parse(url: str) -> SplitResult:
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as error:
        raise UnsafeURL(f"not a valid URL: {error}") from error
    if parts.scheme not in ALLOWED_SCHEMES:
        raise UnsafeURL("only http:// and https:// URLs can receive webhooks")
    if not parts.hostname:
        raise UnsafeURL("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeURL("credentials in the URL are not supported; authenticate deliveries by their signature")
    if port == 0:
        raise UnsafeURL("port 0 cannot receive webhooks")
    return parts


def check(url: str, *, allow_private: bool, resolver: Resolver = system_resolver) -> Target:
    """The URL's target with its resolved addresses, or UnsafeURL."""
    parts = parse(url)
    host = parts.hostname
    port = parts.port or ALLOWED_SCHEMES[parts.scheme]
    try:
        addresses = resolver(host, port)
    except (OSError, UnicodeError) as error:
        raise UnsafeURL(f"the host {host!r} cannot be resolved") from error
    if not addresses:
        raise UnsafeURL(f"the host {host!r} cannot be resolved")
    if not allow_private:
        blocked = [address for address in addresses if not is_public(address)]
        if blocked:
            raise UnsafeURL(
                f"the host {host!r} resolves to a private, loopback, link-local or otherwise non-public "
                f"address ({blocked[0]}); set WEBHOOK_ALLOW_PRIVATE=1 to allow such targets"
            )
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    netloc_host = f"[{host}]" if ":" in host else host
    host_header = netloc_host if parts.port is None else f"{netloc_host}:{parts.port}"
    return Target(parts.scheme, host, port, path, host_header, tuple(addresses))
