"""The portal's one outbound HTTP client, hardened against server-side request forgery (SSRF).

Every request to a URL that a user can influence (MCP servers, webhooks, catalog links) goes
through `SafeHttpClient`. It refuses URLs that would reach the portal's own network:

* only http and https; no credentials inside the URL;
* the host is resolved once, every resolved address is checked (loopback, private, link-local,
  multicast, reserved, unspecified, shared 100.64/10, cloud metadata, and the IPv6 forms that embed
  such an IPv4 address), and the connection is pinned to the checked address so a DNS answer that
  changes between check and connect (DNS rebinding) is never used;
* redirects are followed by hand, at most 5, each hop checked like the first, and credential
  headers never follow a redirect to another origin;
* time and size are capped, proxies from the environment are ignored, headers are never logged.

Settings (read lazily, only when Django is configured): `SSRF_ALLOWLIST` (host names, addresses
or CIDRs admitted even though private), `OUTBOUND_HTTP_TIMEOUT` (seconds), `OUTBOUND_HTTP_MAX_BYTES`.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import ipaddress
import json as jsonlib
import logging
import socket
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3 import PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ReadTimeoutError
from urllib3.exceptions import HTTPError as Urllib3HttpError
from urllib3.util import connection as urllib3_connection

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

USER_AGENT = "AgentPortal/0.1"
DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_REDIRECTS = 5
ALLOWED_SCHEMES = frozenset({"http", "https"})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_CHUNK_SIZE = 64 * 1024
# Headers carrying credentials: they only ever go to the origin the caller addressed.
_CREDENTIAL_HEADERS = ("Authorization", "Proxy-Authorization", "Cookie")

_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address) for address in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
_PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(network) for network in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)
_SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")
_NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL_USE = ipaddress.ip_network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


# --- Errors ---------------------------------------------------------------------------------------------


class FetchError(Exception):
    """An outbound fetch did not produce a usable response. The message is safe to show to users."""

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


class UnsafeUrlError(FetchError):
    """The URL (or a redirect hop) would leave the public internet, or is not a fetchable URL."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"Refused to fetch {url!r}: {reason}", url=url)
        self.reason = reason


class FetchTimeoutError(FetchError):
    """Connecting, or receiving the answer, took longer than the timeout."""


class FetchConnectionError(FetchError):
    """The host could not be resolved or reached, or the connection broke (TLS errors included)."""


class ResponseTooLargeError(FetchError):
    """The answer is larger than the size cap; reading stopped at the cap."""


class TooManyRedirectsError(FetchError):
    """The server redirected more times than allowed."""


class _PinMismatchError(Exception):
    """urllib3 was about to connect to a host other than the one validated (parser disagreement)."""


# --- Response -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SafeResponse:
    """A fully read answer. `url` is the final URL after redirects."""

    url: str
    status: int
    headers: CaseInsensitiveDict[str]
    content: bytes

    @property
    def ok(self) -> bool:
        return self.status < 400

    @property
    def text(self) -> str:
        charset = _charset_of(self.headers.get("Content-Type", "")) or "utf-8"
        try:
            return self.content.decode(charset, errors="replace")
        except LookupError:  # unknown charset name sent by the server
            return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON; raises `ValueError` when it is not JSON."""
        return jsonlib.loads(self.content)


def _charset_of(content_type: str) -> str | None:
    for parameter in content_type.split(";")[1:]:
        key, _, value = parameter.partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip("\"'") or None
    return None


# --- Address policy -------------------------------------------------------------------------------------


def _embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, str] | None:
    """The IPv4 address an IPv6 address stands for (mapped, compatible, 6to4, NAT64), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped, "IPv4-mapped IPv6"
    if address.sixtofour is not None:
        return address.sixtofour, "6to4 IPv6"
    if address in _NAT64_WELL_KNOWN:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), "NAT64 IPv6"
    # ::/96 also holds :: and ::1, which are judged as themselves below.
    if address in _IPV4_COMPATIBLE and int(address) > 1:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), "IPv4-compatible IPv6"
    return None


def forbidden_address_reason(address: IPAddress) -> str | None:
    """Why connecting to `address` is refused (a noun phrase), or None for a public address."""
    if address in _METADATA_ADDRESSES:
        return "a cloud metadata endpoint"
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            ipv4, form = embedded
            reason = forbidden_address_reason(ipv4)
            return None if reason is None else f"the {form} form of {ipv4}, {reason}"
        if address in _NAT64_LOCAL_USE:
            return "a local-use NAT64 address"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if any(address in network for network in _PRIVATE_NETWORKS):
        return "a private address"
    if address in _SHARED_ADDRESS_SPACE:
        return "a shared address space (100.64.0.0/10) address"
    if address.is_reserved:
        return "a reserved address"
    # Catch-all for the other special-purpose ranges (documentation, benchmarking, 0/8, ...).
    if address.is_private or not address.is_global:
        return "not a publicly routable address"
    return None


def _is_literal(host: str, address: IPAddress) -> bool:
    """Whether the URL spelled the address itself (in canonical notation or not)."""
    try:
        return ipaddress.ip_address(host) == address
    except ValueError:
        return False


def _normalise_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


@dataclass(frozen=True)
class Allowlist:
    """Hosts and networks admitted although private. Host names match exactly, never by suffix."""

    host_names: frozenset[str]
    networks: tuple[IPNetwork, ...]

    @classmethod
    def parse(cls, entries: Iterable[str]) -> Allowlist:
        host_names: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in entries:
            normalised = _normalise_host(str(entry))
            if not normalised:
                continue
            try:
                networks.append(ipaddress.ip_network(normalised, strict=False))
            except ValueError:
                host_names.add(normalised)
        return cls(frozenset(host_names), tuple(networks))

    def admits_host(self, host: str) -> bool:
        return _normalise_host(host) in self.host_names

    def admits_address(self, address: IPAddress) -> bool:
        candidates: list[IPAddress] = [address]
        if isinstance(address, ipaddress.IPv6Address) and (embedded := _embedded_ipv4(address)):
            candidates.append(embedded[0])
        for candidate in candidates:
            for network in self.networks:
                # Metadata endpoints need an exact entry: a broad range such as 100.64.0.0/10
                # must not silently open the cloud's credential service.
                if candidate in _METADATA_ADDRESSES and network.num_addresses != 1:
                    continue
                if candidate in network:
                    return True
        return False


# --- Pinned connections (DNS rebinding defence) ---------------------------------------------------------


def _open_pinned_socket(connection: HTTPConnection, pinned_addresses: tuple[str, ...]) -> socket.socket:
    """urllib3's `_new_conn`, but connecting to the validated addresses instead of resolving the host.

    Addresses are tried in resolver order (e.g. ::1 then 127.0.0.1 for localhost); all were checked.
    The connection keeps its host name, so the Host header, TLS SNI and certificate checks all use
    the name the caller asked for.
    """
    last_error: OSError | None = None
    for address in pinned_addresses:
        try:
            sock = urllib3_connection.create_connection(
                (address, connection.port),
                connection.timeout,
                source_address=connection.source_address,
                socket_options=connection.socket_options,
            )
        except TimeoutError as error:
            raise ConnectTimeoutError(
                connection,
                f"Connection to {connection.host} timed out. (connect timeout={connection.timeout})",
            ) from error
        except OSError as error:
            last_error = error
            continue
        sys.audit("http.client.connect", connection, connection.host, connection.port)
        return sock
    raise NewConnectionError(connection, f"Failed to establish a new connection: {last_error}") from last_error


class _PinnedHTTPConnection(HTTPConnection):
    def __init__(self, *args: Any, pinned_addresses: tuple[str, ...], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pinned_addresses = pinned_addresses

    def _new_conn(self) -> socket.socket:
        return _open_pinned_socket(self, self.pinned_addresses)


class _PinnedHTTPSConnection(HTTPSConnection):
    def __init__(self, *args: Any, pinned_addresses: tuple[str, ...], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pinned_addresses = pinned_addresses

    def _new_conn(self) -> socket.socket:
        return _open_pinned_socket(self, self.pinned_addresses)


class _PinnedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _PinnedHTTPConnection


class _PinnedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _PinnedHTTPSConnection


class _PinnedPoolManager(PoolManager):
    """Builds pools whose connections go only to the validated addresses of the one validated host."""

    def __init__(self, *, pinned_host: str, pinned_addresses: tuple[str, ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pool_classes_by_scheme = {"http": _PinnedHTTPConnectionPool, "https": _PinnedHTTPSConnectionPool}
        self.pinned_host = pinned_host
        self.pinned_addresses = pinned_addresses

    def _new_pool(
        self, scheme: str, host: str, port: int, request_context: dict[str, Any] | None = None
    ) -> HTTPConnectionPool:
        if _normalise_host(host) != self.pinned_host:
            raise _PinMismatchError(f"validated {self.pinned_host!r} but asked to connect to {host!r}")
        context = dict(request_context if request_context is not None else self.connection_pool_kw)
        context["pinned_addresses"] = self.pinned_addresses
        return super()._new_pool(scheme, host, port, context)


class _PinnedAdapter(HTTPAdapter):
    def __init__(self, *, pinned_host: str, pinned_addresses: tuple[str, ...]) -> None:
        self.pinned_host = pinned_host
        self.pinned_addresses = pinned_addresses
        super().__init__(max_retries=0)  # no silent retries: they would resend bodies and outlive the deadline

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any) -> None:
        self.poolmanager = _PinnedPoolManager(
            pinned_host=self.pinned_host,
            pinned_addresses=self.pinned_addresses,
            num_pools=connections,
            maxsize=maxsize,
            block=block,
            **pool_kwargs,
        )


# --- The client -----------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _prepared_url(url: str) -> str:
    prepared = requests.PreparedRequest()
    prepared.prepare_url(url, None)
    assert prepared.url is not None
    return prepared.url


class _PreparedRequest(requests.PreparedRequest):
    """requests' preparation, with the URL step (IDNA, quoting; a third of a request's preparation) done once per
    URL: an MCP handshake sends four requests to one URL. The result is the same string, and is validated as
    before."""

    def prepare_url(self, url: Any, params: Any) -> None:
        if params or not isinstance(url, str):
            super().prepare_url(url, params)
        else:
            self.url = _prepared_url(url)


def _setting(name: str, default: Any) -> Any:
    """A Django setting, or `default` when Django is absent or not configured (e.g. plain pytest)."""
    try:
        from django.conf import settings
    except ImportError:  # pragma: no cover - Django is a dependency, but this module must not need it
        return default
    if not settings.configured:
        return default
    return getattr(settings, name, default)


@functools.lru_cache(maxsize=16)
def _parsed_allowlist(entries: tuple[str, ...]) -> Allowlist:
    """The setting's entries parsed once per distinct value, not once per request."""
    return Allowlist.parse(entries)


@dataclass(frozen=True)
class _Target:
    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[IPAddress, ...]


def _origin(parts: SplitResult) -> tuple[str, str, int | None]:
    scheme = parts.scheme.lower()
    return scheme, _normalise_host(parts.hostname or ""), parts.port or _DEFAULT_PORTS.get(scheme)


def _redact(url: str) -> str:
    """The URL without query, fragment or user info: safe for logs (tokens often live in queries)."""
    try:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"
    except ValueError:
        return "<unparseable url>"


class SafeHttpClient:
    """SSRF-safe HTTP client. Stateless between calls, so one instance may be shared by threads.

    `allowlist`, `timeout` and `max_bytes` override the settings; `verify` is passed to requests
    (True, False or a CA bundle path).
    """

    def __init__(
        self,
        *,
        allowlist: Iterable[str] | None = None,
        timeout: float | None = None,
        max_bytes: int | None = None,
        max_redirects: int = DEFAULT_MAX_REDIRECTS,
        verify: bool | str = True,
        user_agent: str = USER_AGENT,
    ) -> None:
        self._allowlist = Allowlist.parse(allowlist) if allowlist is not None else None
        self._timeout = timeout
        self._max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.verify = verify
        self.user_agent = user_agent
        # Inside session(): adapters kept by pinned target, so requests to one server reuse their connection.
        self._adapters: dict[tuple[str, int, tuple[str, ...]], _PinnedAdapter] | None = None

    @contextlib.contextmanager
    def session(self) -> Iterator[SafeHttpClient]:
        """A copy of this client that keeps connections alive between its requests (closed at the end).

        Every request is still checked and resolved; a connection is reused only for the same scheme, host, port
        and resolved addresses, so a host whose name now resolves elsewhere gets a new, pinned one. For several
        calls to one server in a row (an MCP handshake); not to be shared by threads."""
        session = copy.copy(self)
        session._adapters = {}
        try:
            yield session
        finally:
            for adapter in session._adapters.values():
                adapter.close()
            session._adapters = None

    def _adapter_for(self, target: _Target) -> tuple[_PinnedAdapter, bool]:
        """The adapter for a target and whether it stays open after the request (inside a session)."""
        addresses = tuple(str(address) for address in target.addresses)
        if self._adapters is None:
            return _PinnedAdapter(pinned_host=target.host, pinned_addresses=addresses), False
        key = (f"{target.scheme}://{target.host}", target.port, addresses)
        adapter = self._adapters.get(key)
        if adapter is None:
            adapter = self._adapters[key] = _PinnedAdapter(pinned_host=target.host, pinned_addresses=addresses)
        return adapter, True

    # Settings are read per call so `override_settings` and late configuration are honoured.
    def allowlist(self) -> Allowlist:
        if self._allowlist is not None:
            return self._allowlist
        entries = _setting("SSRF_ALLOWLIST", None) or []
        return _parsed_allowlist(tuple([entries] if isinstance(entries, str) else entries))

    def default_timeout(self) -> float:
        if self._timeout is not None:
            return float(self._timeout)
        return float(_setting("OUTBOUND_HTTP_TIMEOUT", None) or DEFAULT_TIMEOUT_SECONDS)

    def default_max_bytes(self) -> int:
        if self._max_bytes is not None:
            return int(self._max_bytes)
        return int(_setting("OUTBOUND_HTTP_MAX_BYTES", None) or DEFAULT_MAX_BYTES)

    def get(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        max_bytes: int | None = None,
    ) -> SafeResponse:
        return self.request("GET", url, headers=headers, timeout=timeout, max_bytes=max_bytes)

    def post(
        self,
        url: str,
        *,
        json: Any = None,
        data: bytes | str | Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        max_bytes: int | None = None,
    ) -> SafeResponse:
        return self.request("POST", url, json=json, data=data, headers=headers, timeout=timeout, max_bytes=max_bytes)

    def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        data: bytes | str | Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        max_bytes: int | None = None,
    ) -> SafeResponse:
        """Send a request, following redirects safely, and read the whole answer into memory.

        `timeout` bounds the whole exchange (all hops and the body), not each socket operation.
        """
        if json is not None and data is not None:
            raise ValueError("pass either json= or data=, not both")
        timeout_seconds = timeout if timeout is not None else self.default_timeout()
        size_cap = max_bytes if max_bytes is not None else self.default_max_bytes()
        deadline = time.monotonic() + timeout_seconds
        allowlist = self.allowlist()
        request_headers: CaseInsensitiveDict[str] = CaseInsensitiveDict({"User-Agent": self.user_agent})
        request_headers.update(headers or {})
        method = method.upper()
        current_url = url
        previous_url: str | None = None

        for _hop in range(self.max_redirects + 1):
            self._check_scheme(current_url, redirected_from=previous_url)
            prepared = self._prepare(method, current_url, request_headers, json=json, data=data)
            # Validate what will really be sent: preparing may re-encode the host (IDNA) or the path.
            target = self._validate(current_url, str(prepared.url), allowlist, redirected_from=previous_url)
            adapter, kept = self._adapter_for(target)
            try:
                response = self._send(adapter, prepared, target, deadline=deadline, timeout_seconds=timeout_seconds)
                try:
                    location = response.headers.get("Location")
                    if response.status_code in REDIRECT_STATUSES and location:
                        next_url = urljoin(target.url, location)
                        logger.debug("outbound %s %s -> %s redirect", method, _redact(target.url), response.status_code)
                        new_method = _method_after_redirect(response.status_code, method)
                        if new_method != method:  # the body does not follow a switch to GET
                            json = data = None
                            request_headers.pop("Content-Type", None)
                            method = new_method
                        if _is_cross_origin(target.url, next_url):
                            for header in _CREDENTIAL_HEADERS:
                                request_headers.pop(header, None)
                        previous_url, current_url = target.url, next_url
                        continue
                    content = self._read_body(
                        response,
                        target.url,
                        size_cap=size_cap,
                        deadline=deadline,
                        timeout_seconds=timeout_seconds,
                    )
                    if kept:
                        # Read whole: the connection goes back to the session's pool instead of being closed.
                        response.raw.release_conn()
                finally:
                    response.close()
            finally:
                if not kept:
                    adapter.close()
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "outbound %s %s -> %s (%d bytes)", method, _redact(target.url), response.status_code, len(content)
                )
            return SafeResponse(
                url=target.url,
                status=response.status_code,
                headers=CaseInsensitiveDict(response.headers),
                content=content,
            )
        raise TooManyRedirectsError(f"Gave up on {url!r}: more than {self.max_redirects} redirects", url=url)

    # --- steps ----------------------------------------------------------------------------------------

    def check_url(self, url: str) -> None:
        """Validate a URL exactly as a fetch would (scheme, credentials, every resolved address) without
        fetching it: for tools that connect themselves, such as git."""
        self._check_scheme(url, redirected_from=None)
        self._validate(url, url.strip(), self.allowlist(), redirected_from=None)

    @staticmethod
    def _refusal(url: str, reason: str, redirected_from: str | None) -> UnsafeUrlError:
        if redirected_from is not None:
            reason = f"{reason} (reached by a redirect from {redirected_from!r})"
        return UnsafeUrlError(url, reason)

    def _check_scheme(self, url: str, *, redirected_from: str | None) -> None:
        # Before preparing: requests leaves URLs of unknown schemes untouched rather than failing.
        try:
            scheme = urlsplit(url.strip()).scheme.lower()
        except ValueError as error:
            raise self._refusal(url, f"it is not a valid URL ({error})", redirected_from) from error
        if not scheme:
            raise self._refusal(url, "the URL has no scheme; use http or https", redirected_from)
        if scheme not in ALLOWED_SCHEMES:
            raise self._refusal(url, f"scheme {scheme!r} is not allowed; use http or https", redirected_from)

    def _validate(self, url: str, prepared_url: str, allowlist: Allowlist, *, redirected_from: str | None) -> _Target:
        """Check the prepared URL and resolve its host once; the answer is the address to pin."""
        try:
            parts = urlsplit(prepared_url)
            port = parts.port
        except ValueError as error:
            raise self._refusal(url, f"it is not a valid URL ({error})", redirected_from) from error
        scheme = parts.scheme.lower()
        if scheme not in ALLOWED_SCHEMES:
            raise self._refusal(url, f"scheme {scheme!r} is not allowed; use http or https", redirected_from)
        if parts.username is not None or parts.password is not None:
            raise self._refusal(
                url, "credentials inside the URL are not allowed; send them in a header", redirected_from
            )
        host = _normalise_host(parts.hostname or "")
        if not host:
            raise self._refusal(url, "the URL has no host", redirected_from)
        port = port or _DEFAULT_PORTS[scheme]

        addresses = self._resolve(url, host, port)
        if not allowlist.admits_host(host):
            for address in addresses:
                if allowlist.admits_address(address):
                    continue
                reason = forbidden_address_reason(address)
                if reason is not None:
                    where = f"{host} is" if _is_literal(host, address) else f"host {host!r} resolves to {address},"
                    logger.info("refused outbound fetch to %s: %s", host, reason)
                    raise self._refusal(url, f"{where} {reason}, and it is not in SSRF_ALLOWLIST", redirected_from)
        return _Target(url=prepared_url, scheme=scheme, host=host, port=port, addresses=tuple(addresses))

    @staticmethod
    def _resolve(url: str, host: str, port: int) -> list[IPAddress]:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as error:
            raise FetchConnectionError(f"Could not resolve host {host!r} for {url!r}: {error}", url=url) from error
        addresses: list[IPAddress] = []
        for family, _type, _proto, _canonname, sockaddr in infos:
            if family not in (socket.AF_INET, socket.AF_INET6):
                continue
            address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise FetchConnectionError(f"Host {host!r} for {url!r} has no IP address", url=url)
        return addresses

    @staticmethod
    def _prepare(
        method: str, url: str, headers: CaseInsensitiveDict[str], *, json: Any, data: Any
    ) -> requests.PreparedRequest:
        prepared = _PreparedRequest()
        try:
            prepared.prepare(method=method, url=url.strip(), headers=dict(headers), json=json, data=data)
        except (requests.exceptions.RequestException, ValueError) as error:
            raise UnsafeUrlError(url, f"it is not a valid URL ({error})") from error
        return prepared

    def _send(
        self,
        adapter: _PinnedAdapter,
        prepared: requests.PreparedRequest,
        target: _Target,
        *,
        deadline: float,
        timeout_seconds: float,
    ) -> requests.Response:
        url = target.url
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchTimeoutError(f"Timed out after {timeout_seconds:g} s fetching {url!r}", url=url)
        try:
            return adapter.send(prepared, stream=True, timeout=(remaining, remaining), verify=self.verify, proxies={})
        except _PinMismatchError as error:
            raise UnsafeUrlError(url, f"the URL is ambiguous ({error})") from error
        except requests.exceptions.Timeout as error:
            raise FetchTimeoutError(f"Timed out after {timeout_seconds:g} s fetching {url!r}", url=url) from error
        except requests.exceptions.SSLError as error:
            raise FetchConnectionError(f"TLS error talking to {url!r}: {error}", url=url) from error
        except requests.exceptions.ConnectionError as error:
            raise FetchConnectionError(
                f"Could not connect to {target.host} port {target.port} for {url!r}",
                url=url,
            ) from error
        except requests.exceptions.RequestException as error:
            raise FetchError(f"Request to {url!r} failed: {error}", url=url) from error

    @staticmethod
    def _read_body(
        response: requests.Response, url: str, *, size_cap: int, deadline: float, timeout_seconds: float
    ) -> bytes:
        too_large = ResponseTooLargeError(
            f"The answer from {url!r} is larger than the limit of {size_cap} bytes", url=url
        )
        declared_length = response.headers.get("Content-Length", "")
        if declared_length.isdigit() and int(declared_length) > size_cap:
            raise too_large
        chunks: list[bytes] = []
        received = 0
        try:
            for chunk in response.raw.stream(_CHUNK_SIZE, decode_content=True):
                received += len(chunk)
                if received > size_cap:  # counted after decompression, so gzip bombs stop too
                    raise too_large
                if time.monotonic() > deadline:  # a trickling server must not hold us forever
                    raise FetchTimeoutError(
                        f"Timed out after {timeout_seconds:g} s reading the answer from {url!r}", url=url
                    )
                chunks.append(chunk)
        except ReadTimeoutError as error:
            raise FetchTimeoutError(
                f"Timed out after {timeout_seconds:g} s reading the answer from {url!r}", url=url
            ) from error
        except (Urllib3HttpError, OSError) as error:
            raise FetchConnectionError(f"The connection broke while reading {url!r}: {error}", url=url) from error
        return b"".join(chunks)


def _method_after_redirect(status: int, method: str) -> str:
    """What browsers (and requests) do: 303 always becomes GET, 301/302 turn a POST into a GET."""
    if status == 303 and method != "HEAD":
        return "GET"
    if status in (301, 302) and method == "POST":
        return "GET"
    return method


def _is_cross_origin(from_url: str, to_url: str) -> bool:
    try:
        return _origin(urlsplit(from_url)) != _origin(urlsplit(to_url))
    except ValueError:  # an unparseable target is certainly not the same origin
        return True


# --- Module-level conveniences --------------------------------------------------------------------------


def get_client() -> SafeHttpClient:
    """A client configured from settings. Cheap to create; the seam for code that wants one to pass on."""
    return SafeHttpClient()


def safe_get(
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    timeout: float | None = None,
    max_bytes: int | None = None,
) -> SafeResponse:
    return get_client().get(url, headers=headers, timeout=timeout, max_bytes=max_bytes)


def safe_post(
    url: str,
    *,
    json: Any = None,
    data: bytes | str | Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float | None = None,
    max_bytes: int | None = None,
) -> SafeResponse:
    return get_client().post(url, json=json, data=data, headers=headers, timeout=timeout, max_bytes=max_bytes)
