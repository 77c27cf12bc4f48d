"""Whether the app may fetch a URL a stranger typed: only http(s), s3, gs and az URLs, and for http(s) only hosts on the
public internet, checked again at every redirect. A refused URL gets one message whatever the reason (a local path, a
private address, a redirect to one), so the app cannot be used to learn what the server's network or disk holds.

GDAL follows redirects itself and has no option to stop it, so an http(s) URL is first walked here hop by hop (no
automatic redirects, each host resolved and checked, the connection made to the address checked) and GDAL is given
the last hop's URL: a clean refusal, and the file's first bytes to tell its format. That walk alone cannot bind GDAL,
which resolves names and follows redirects itself (a server may answer the walk well and redirect GDAL later, or a
name may resolve elsewhere a moment later): GDAL's own requests therefore go through the app's egress proxy
(app/egress.py), which decides each connection with the same `UrlPolicy.address_for` and connects to the address
checked. Pure Python: no GDAL, so the policy is tested without it."""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass, field
from typing import Callable, Optional
from urllib.parse import urljoin, urlsplit, urlunsplit

FETCHED_SCHEMES = ("http", "https", "s3", "gs", "az")
REFUSAL = "not fetched: the app reads only public http(s), s3, gs and az URLs"
REDIRECTS = (301, 302, 303, 307, 308)
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # IPv6 addresses a NAT64 gateway turns into the IPv4 one they end in
HEAD_BYTES = 1024  # the first bytes of the file, read with the last hop: enough to tell its format


class UrlRefused(ValueError):
    """A URL the app does not fetch; its message is the same for every reason."""


def shown(url: str) -> str:
    """The URL as a message shows it: without query string (it may hold a signature) or fragment."""
    return str(url).split("#", 1)[0].split("?", 1)[0]


def refuse(url: str) -> UrlRefused:
    return UrlRefused(f"{shown(url) or 'URL'}: {REFUSAL}")


def without_fragment(url: str) -> str:
    """The URL as it is fetched: a fragment is never sent, and `#.tif` must not make a URL look like a GeoTIFF."""
    return url.split("#", 1)[0]


def path_suffix(url: str) -> str:
    """The suffix of the URL's path (query and fragment stripped first), lower case: `.tif` for `.../a.TIF?x=1`."""
    name = urlsplit(without_fragment(url)).path.rstrip("/").rsplit("/", 1)[-1]
    return ("." + name.rsplit(".", 1)[1].lower()) if "." in name else ""


def embedded_ipv4(address: ipaddress.IPv6Address) -> Optional[ipaddress.IPv4Address]:
    """The IPv4 address an IPv6 one stands for (IPv4-mapped, 6to4, Teredo, NAT64), if any."""
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
    """Whether an address is on the public internet: not loopback, private, link-local (cloud metadata at
    169.254.169.254), multicast, reserved or unspecified, also when written as IPv6."""
    address = ipaddress.ip_address(text.split("%", 1)[0])  # a link-local IPv6 address may carry a scope
    if isinstance(address, ipaddress.IPv6Address) and embedded_ipv4(address) is not None:
        address = embedded_ipv4(address)
    return address.is_global and not (address.is_loopback or address.is_private or address.is_link_local
                                      or address.is_multicast or address.is_reserved or address.is_unspecified)


def public_address(text: str) -> bool:
    """`is_public`, and False for text that is no address at all."""
    try:
        return is_public(text)
    except ValueError:
        return False


def default_resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (socket.getaddrinfo, looked up when called: tests replace it)."""
    return [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


@dataclass
class Hop:
    """Where one request goes: the URL, its host and port, and the address checked for it."""

    url: str
    host: str
    port: int
    address: str


@dataclass
class Fetched:
    """What the walk found: the URL GDAL is to read (the last hop) and the file's first bytes (its format)."""

    url: str
    head: bytes
    status: int


@dataclass
class UrlPolicy:
    """Which URLs the app fetches. `allow_private`: also loopback and private hosts (`--allow_private_urls`, for a
    machine of one's own). `allowed_hosts`: "host:port" pairs allowed although private (a test's server on
    127.0.0.1 while a redirect to another port is still refused). `resolve(host, port)`: the addresses of a host."""

    allow_private: bool = False
    allowed_hosts: frozenset = frozenset()
    resolve: Callable[[str, int], list] = field(default=default_resolve)
    max_hops: int = 5
    timeout: float = 10.0

    def hop(self, url: str) -> Hop:
        """The URL's host checked (UrlRefused otherwise) and the address to connect to."""
        try:
            parts = urlsplit(url)
            host, port = parts.hostname, parts.port or (443 if parts.scheme.lower() == "https" else 80)
        except ValueError:  # a port that is not a number, a bad IPv6 literal
            raise refuse(url) from None
        if parts.scheme.lower() not in ("http", "https") or not host:
            raise refuse(url)
        try:
            return Hop(url, host, port, self.address_for(host, port))
        except UrlRefused:
            raise refuse(url) from None

    def address_for(self, host: str, port: int) -> str:
        """The one address to connect to for `host` (lower case, IPv6 without brackets) and `port`: the host resolved
        once, and every address it resolves to public (or the host trusted); UrlRefused otherwise. The pre-flight
        walk and the egress proxy (app/egress.py) both decide here, and connect to the address returned, never to
        what the name resolves to a moment later."""
        try:
            addresses = self.resolve(host, port)
        except (OSError, UnicodeError, ValueError):  # a name that does not resolve: as refused as a private one
            raise refuse(f"{host}:{port}") from None
        trusted = self.allow_private or f"{host}:{port}" in self.allowed_hosts
        if not addresses or not (trusted or all(map(public_address, addresses))):
            raise refuse(f"{host}:{port}")
        return addresses[0]

    def checked(self, url: str) -> str:
        """`url` without its fragment, if it is a URL the app may fetch at all (scheme and form); UrlRefused
        otherwise, with one message for a local path, `file://`, `/vsicurl/...` or another scheme."""
        text = without_fragment(str(url).strip())
        scheme, sep, rest = text.partition("://")
        if not sep or scheme.lower() not in FETCHED_SCHEMES or not rest.split("/", 1)[0]:
            raise refuse(url)
        if scheme.lower() in ("http", "https"):
            self.hop(text)
        return text

    def fetch(self, url: str) -> Fetched:
        """Walk an http(s) URL's redirects, each hop checked, and return the last one with the file's first bytes;
        s3/gs/az URLs are returned as they are (GDAL signs and sends them to the store's own endpoint)."""
        url = self.checked(url)
        if urlsplit(url).scheme.lower() not in ("http", "https"):
            return Fetched(url, b"", 0)
        for _ in range(self.max_hops + 1):
            status, location, head = self.request(self.hop(url))
            if status not in REDIRECTS or not location:
                return Fetched(url, head, status)
            url = without_fragment(urljoin(url, location))
        raise refuse(url)  # too many redirects

    def request(self, hop: Hop) -> tuple[int, Optional[str], bytes]:
        """One GET of the file's first bytes, to the address checked, no redirect followed: the status, the
        Location header and the bytes read. A host that does not answer is refused like any other."""
        parts = urlsplit(hop.url)
        connection = pinned_connection(parts.scheme.lower(), hop, self.timeout)
        target = urlunsplit(("", "", parts.path or "/", parts.query, ""))
        try:
            connection.request("GET", target, headers={"Range": f"bytes=0-{HEAD_BYTES - 1}",
                                                       "User-Agent": "translandseg-app"})
            response = connection.getresponse()
            head = response.read(HEAD_BYTES) if response.status in (200, 206) else b""
            return response.status, response.getheader("Location"), head
        except (OSError, http.client.HTTPException):
            raise refuse(hop.url) from None
        finally:
            connection.close()


class PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to the address that was checked, not to whatever the name resolves to a moment later."""

    def __init__(self, hop: Hop, timeout: float):
        super().__init__(hop.host, hop.port, timeout=timeout)
        self.address = hop.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """PinnedHTTPConnection over TLS: the certificate is checked against the host name."""

    def __init__(self, hop: Hop, timeout: float):
        super().__init__(hop.host, hop.port, timeout=timeout, context=ssl.create_default_context())
        self.address = hop.address

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def pinned_connection(scheme: str, hop: Hop, timeout: float) -> http.client.HTTPConnection:
    return (PinnedHTTPSConnection if scheme == "https" else PinnedHTTPConnection)(hop, timeout)
