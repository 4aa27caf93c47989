"""Outgoing HTTP that cannot be aimed at our own network (SSRF).

A webhook URL is checked when it is registered and again when each request is
made: the host is resolved, every address must be public (not loopback,
private, link-local, multicast, unspecified, reserved or a cloud metadata
address) unless an allowlisted network covers it, and the connection goes to
the address that was checked, never to a second lookup of the name, so a name
that resolves to a private address later (DNS rebinding) is refused too. IP
literals are read in every spelling a resolver accepts (127.1, 2130706433,
0x7f000001, 0177.0.0.1, [::ffff:127.0.0.1]). Redirects are never followed.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]

FORBIDDEN_NAMES = frozenset({"localhost", "metadata", "metadata.google.internal", "instance-data"})
FORBIDDEN_SUFFIXES = (".localhost", ".internal", ".local")
EXCERPT_BYTES = 2048


class ForbiddenTarget(ValueError):
    """The URL points somewhere outgoing requests must not go; the message says why."""


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect, and what to say in the Host header and SNI."""

    scheme: str
    host: str
    port: int
    path: str
    address: str


@dataclass(frozen=True)
class Reply:
    """What came back: the status, the first bytes of the body, the time it took."""

    status: int
    headers: dict[str, str]
    excerpt: str
    duration_ms: int


def parse_networks(raw: str) -> tuple[Network, ...]:
    """WEBHOOK_ALLOWED_NETWORKS: comma-separated CIDRs; raises ValueError on a bad one."""
    return tuple(
        ipaddress.ip_network(part.strip(), strict=False) for part in raw.split(",") if part.strip()
    )


def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for a name."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def literal_address(host: str) -> IPAddress | None:
    """The address a host names literally, in any spelling; None for a name."""
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        address = ipaddress.ip_address(bare)
    except ValueError:
        try:
            return ipaddress.IPv4Address(socket.inet_aton(bare))  # 127.1, 2130706433, 0x7f000001
        except OSError:
            return None
    return address


def is_allowed(address: IPAddress, allowed: Iterable[Network]) -> bool:
    """Public addresses are allowed; others only inside an allowlisted network."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in network for network in allowed):
        return True
    return address.is_global and not (address.is_multicast or address.is_reserved)


@dataclass(frozen=True)
class Rules:
    """Where outgoing requests may go: https only unless http is allowed, public addresses
    and the allowlisted networks. `resolve` is swapped in tests (DNS rebinding)."""

    allow_http: bool
    allowed: Sequence[Network] = ()
    resolve: Resolver = system_resolver

    def check(self, url: str) -> Target:
        return check_url(
            url, allow_http=self.allow_http, allowed=self.allowed, resolve=self.resolve
        )


def check_url(
    url: str,
    *,
    allow_http: bool,
    allowed: Sequence[Network],
    resolve: Resolver = system_resolver,
) -> Target:
    """Parse and check a URL, resolving its host; raise ForbiddenTarget saying why not."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise ForbiddenTarget("Use an https:// URL.")
    if scheme == "http" and not allow_http:
        raise ForbiddenTarget("Use https://; plain http is allowed only in development.")
    host = (parts.hostname or "").lower().rstrip(".")
    if not host or parts.username or parts.password:
        raise ForbiddenTarget("Give a host name, without a user or password.")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise ForbiddenTarget("The port is not valid.") from exc
    literal = literal_address(host)
    if literal is None and (host in FORBIDDEN_NAMES or host.endswith(FORBIDDEN_SUFFIXES)):
        raise ForbiddenTarget("That host is on our own network.")
    addresses = [str(literal)] if literal is not None else _resolve(resolve, host, port)
    for address in addresses:
        if not is_allowed(ipaddress.ip_address(address), allowed):
            raise ForbiddenTarget(
                "That address is on a private, loopback or link-local network; "
                "add it to WEBHOOK_ALLOWED_NETWORKS to allow it."
            )
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(scheme, host, port, path, addresses[0])


def _resolve(resolve: Resolver, host: str, port: int) -> list[str]:
    try:
        addresses = resolve(host, port)
    except OSError as exc:
        raise ForbiddenTarget(f"The host {host} could not be resolved.") from exc
    if not addresses:
        raise ForbiddenTarget(f"The host {host} could not be resolved.")
    return addresses


def _pool(target: Target, timeout: float) -> urllib3.HTTPConnectionPool:
    """A pool to the checked address; TLS still verifies the certificate of the name."""
    limit = urllib3.Timeout(total=timeout)
    if target.scheme == "https":
        return urllib3.HTTPSConnectionPool(
            target.address,
            target.port,
            timeout=limit,
            retries=False,
            server_hostname=target.host,
            assert_hostname=target.host,
        )
    return urllib3.HTTPConnectionPool(target.address, target.port, timeout=limit, retries=False)


def post(
    target: Target,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout: float,
) -> Reply:
    """POST to the checked address (not a new lookup), without following redirects."""
    pool = _pool(target, timeout)
    host_header = target.host if target.port in (80, 443) else f"{target.host}:{target.port}"
    started = time.perf_counter()
    try:
        response = pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers={**headers, "Host": host_header},
            redirect=False,
            preload_content=False,
        )
        try:
            excerpt = response.read(EXCERPT_BYTES, decode_content=True)
        finally:
            response.release_conn()
    finally:
        pool.close()
    duration = round((time.perf_counter() - started) * 1000)
    text = excerpt.decode("utf-8", errors="replace") if isinstance(excerpt, bytes) else str(excerpt)
    return Reply(response.status, dict(response.headers), text, duration)
