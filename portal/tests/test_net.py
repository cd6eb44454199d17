"""The SSRF-safe client against real local servers; no mocks of requests.

Only the resolver (`socket.getaddrinfo`) and, for the pinning tests, `socket.socket.connect` are
patched: they stand in for DNS and for "the public internet", which tests must not depend on.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from portal.net import (
    USER_AGENT,
    FetchConnectionError,
    FetchError,
    FetchTimeoutError,
    ResponseTooLargeError,
    SafeHttpClient,
    TooManyRedirectsError,
    UnsafeUrlError,
    safe_get,
)
from portal.testing.servers import LocalHttpServer, RecordedRequest, Reply

PUBLIC_ADDRESS = "93.184.216.34"  # globally routable; never actually contacted (connect is redirected)
LOCAL_ONLY = SafeHttpClient(allowlist=["127.0.0.1"], timeout=5)
# An explicit empty allowlist, so refusals hold whatever SSRF_ALLOWLIST the environment sets.
STRICT = SafeHttpClient(allowlist=[], timeout=5)

RealGetaddrinfo = Callable[..., list[Any]]
_real_getaddrinfo: RealGetaddrinfo = socket.getaddrinfo


def _fake_answer(address: str, port: Any) -> tuple[Any, ...]:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sockaddr = (address, int(port or 0), 0, 0) if family == socket.AF_INET6 else (address, int(port or 0))
    return (family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr)


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[list[str]]]:
    """Host name -> successive answers (the last one repeats). Other names resolve for real.

    The dict also collects every looked-up name under the key "__lookups__".
    """
    answers: dict[str, list[list[str]]] = {"__lookups__": []}

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        name = host.decode() if isinstance(host, bytes) else str(host)
        answers["__lookups__"].append([name])
        if name in answers:
            queue = answers[name]
            addresses = queue.pop(0) if len(queue) > 1 else queue[0]
            return [_fake_answer(address, port) for address in addresses]
        return _real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


def _lookups_of(fake_dns: dict[str, list[list[str]]], name: str) -> int:
    return sum(1 for (looked_up,) in fake_dns["__lookups__"] if looked_up == name)


@pytest.fixture
def connect_log(monkeypatch: pytest.MonkeyPatch) -> tuple[list[tuple[Any, ...]], dict[tuple[str, int], int]]:
    """Records every outgoing connect; addresses in the returned redirect map go to a local port instead.

    This plays "the public internet": a connect to (PUBLIC_ADDRESS, port) lands on a local server.
    """
    attempts: list[tuple[Any, ...]] = []
    redirects: dict[tuple[str, int], int] = {}
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> None:
        attempts.append(tuple(address))
        key = (str(address[0]), int(address[1]))
        if key in redirects:
            return real_connect(self, ("127.0.0.1", redirects[key]))
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return attempts, redirects


@pytest.fixture
def server() -> Iterator[LocalHttpServer]:
    with LocalHttpServer({"/hello": Reply(body="hello from the test server")}) as running:
        yield running


# --- Schemes and malformed URLs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "scheme 'file' is not allowed; use http or https"),
        ("gopher://127.0.0.1:25/_HELO", "scheme 'gopher' is not allowed; use http or https"),
        ("ftp://example.com/file", "scheme 'ftp' is not allowed; use http or https"),
        ("data:text/plain,hello", "scheme 'data' is not allowed; use http or https"),
        ("javascript:alert(1)", "scheme 'javascript' is not allowed; use http or https"),
        ("FILE:///etc/passwd", "scheme 'file' is not allowed; use http or https"),
        ("example.com/path", "the URL has no scheme; use http or https"),
        ("//example.com/path", "the URL has no scheme; use http or https"),
        ("http:///path-only", "No host supplied"),
        ("http://user:secret@example.com/", "credentials inside the URL are not allowed"),
        ("http://[::1/", "not a valid URL"),
    ],
)
def test_it_refuses_urls_that_are_not_plain_http_or_https(url: str, reason: str) -> None:
    with pytest.raises(UnsafeUrlError) as refused:
        STRICT.get(url)

    assert reason in str(refused.value)
    assert repr(url) in str(refused.value)
    assert isinstance(refused.value, FetchError)


# --- Address policy ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/", "127.0.0.1 is a loopback address"),
        ("http://127.9.9.9:8080/", "127.9.9.9 is a loopback address"),
        ("http://[::1]/", "::1 is a loopback address"),
        ("http://localhost/", "a loopback address"),
        ("http://10.1.2.3/", "10.1.2.3 is a private address"),
        ("http://172.16.5.4/", "172.16.5.4 is a private address"),
        ("http://192.168.1.1/", "192.168.1.1 is a private address"),
        ("http://[fd12:3456::1]/", "fd12:3456::1 is a private address"),
        ("http://169.254.1.2/", "169.254.1.2 is a link-local address"),
        ("http://[fe80::1]/", "fe80::1 is a link-local address"),
        ("http://224.0.0.1/", "224.0.0.1 is a multicast address"),
        ("http://[ff02::1]/", "ff02::1 is a multicast address"),
        ("http://240.0.0.1/", "240.0.0.1 is a reserved address"),
        ("http://0.0.0.0/", "0.0.0.0 is the unspecified address"),
        ("http://[::]/", ":: is the unspecified address"),
        ("http://100.64.0.1/", "100.64.0.1 is a shared address space (100.64.0.0/10) address"),
        ("http://192.0.2.10/", "192.0.2.10 is not a publicly routable address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata endpoint"),
        ("http://[fd00:ec2::254]/", "fd00:ec2::254 is a cloud metadata endpoint"),
        ("http://100.100.100.200/latest/meta-data/", "100.100.100.200 is a cloud metadata endpoint"),
        (
            "http://[::ffff:127.0.0.1]/",
            "::ffff:127.0.0.1 is the IPv4-mapped IPv6 form of 127.0.0.1, a loopback address",
        ),
        (
            "http://[::ffff:a9fe:a9fe]/",
            "::ffff:a9fe:a9fe is the IPv4-mapped IPv6 form of 169.254.169.254, a cloud metadata endpoint",
        ),
        ("http://[::ffff:10.0.0.1]/", "IPv4-mapped IPv6 form of 10.0.0.1, a private address"),
        ("http://[::127.0.0.1]/", "IPv4-compatible IPv6 form of 127.0.0.1, a loopback address"),
        ("http://[2002:7f00:1::]/", "6to4 IPv6 form of 127.0.0.1, a loopback address"),
        ("http://[2002:a9fe:a9fe::]/", "6to4 IPv6 form of 169.254.169.254, a cloud metadata endpoint"),
        ("http://[64:ff9b::7f00:1]/", "NAT64 IPv6 form of 127.0.0.1, a loopback address"),
        ("http://[64:ff9b::a9fe:a9fe]/", "NAT64 IPv6 form of 169.254.169.254, a cloud metadata endpoint"),
        ("http://[64:ff9b:1::a00:1]/", "a local-use NAT64 address"),
        # Alternative IPv4 spellings: the resolver normalises them, and the check sees the result.
        ("http://2130706433/", "host '2130706433' resolves to 127.0.0.1, a loopback address"),
        ("http://0x7f.1/", "host '0x7f.1' resolves to 127.0.0.1, a loopback address"),
        ("http://017700000001/", "host '017700000001' resolves to 127.0.0.1, a loopback address"),
        ("http://0177.0.0.1/", "host '0177.0.0.1' resolves to 127.0.0.1, a loopback address"),
        ("http://127.1/", "host '127.1' resolves to 127.0.0.1, a loopback address"),
        ("http://0xa9fea9fe/", "host '0xa9fea9fe' resolves to 169.254.169.254, a cloud metadata endpoint"),
        ("http://2852039166/", "resolves to 169.254.169.254, a cloud metadata endpoint"),
    ],
)
def test_it_refuses_every_non_public_address(url: str, reason: str) -> None:
    with pytest.raises(UnsafeUrlError) as refused:
        STRICT.get(url)

    assert reason in str(refused.value)
    assert "not in SSRF_ALLOWLIST" in str(refused.value)


def test_it_refuses_a_host_when_any_of_its_addresses_is_private(fake_dns: dict[str, list[list[str]]]) -> None:
    fake_dns["mixed.example"] = [[PUBLIC_ADDRESS, "10.0.0.7"]]

    with pytest.raises(UnsafeUrlError, match=r"'mixed\.example' resolves to 10\.0\.0\.7, a private address"):
        STRICT.get("http://mixed.example/")


def test_it_reports_an_unresolvable_host_as_a_connection_error() -> None:
    with pytest.raises(FetchConnectionError, match=re.escape("Could not resolve host 'no-such-host.invalid'")):
        STRICT.get("http://no-such-host.invalid/")


# --- Allowlist ---------------------------------------------------------------------------------------


def test_it_fetches_from_an_allowlisted_local_server(server: LocalHttpServer) -> None:
    response = LOCAL_ONLY.get(server.url("/hello?x=1"), headers={"X-Trace": "abc"})

    assert response.status == 200
    assert response.ok
    assert response.text == "hello from the test server"
    assert response.url == server.url("/hello?x=1")
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    (received,) = server.requests
    assert received.path == "/hello?x=1"
    assert received.headers["User-Agent"] == USER_AGENT
    assert received.headers["X-Trace"] == "abc"


def test_it_admits_a_cidr_entry_and_an_exact_host_name(server: LocalHttpServer) -> None:
    assert SafeHttpClient(allowlist=["127.0.0.0/8"]).get(server.url("/hello")).status == 200
    # localhost may resolve to ::1 first: the client falls back to the next validated address.
    by_name = SafeHttpClient(allowlist=["LOCALHOST."]).get(f"http://localhost:{server.port}/hello")
    assert by_name.status == 200


def test_it_matches_allowlisted_host_names_exactly(fake_dns: dict[str, list[list[str]]]) -> None:
    fake_dns["localhost.evil.example"] = [["127.0.0.1"]]
    fake_dns["evil-localhost"] = [["127.0.0.1"]]
    client = SafeHttpClient(allowlist=["localhost"])

    for url in ("http://localhost.evil.example/", "http://evil-localhost/"):
        with pytest.raises(UnsafeUrlError, match=re.escape("resolves to 127.0.0.1, a loopback address")):
            client.get(url)


def test_it_needs_an_exact_entry_to_admit_a_metadata_endpoint() -> None:
    broad = SafeHttpClient(allowlist=["169.254.0.0/16", "100.64.0.0/10"], timeout=1)

    with pytest.raises(UnsafeUrlError, match="cloud metadata endpoint"):
        broad.get("http://169.254.169.254/latest/meta-data/")
    with pytest.raises(UnsafeUrlError, match="cloud metadata endpoint"):
        broad.get("http://100.100.100.200/")


def test_it_admits_the_mapped_ipv6_form_of_an_allowlisted_address() -> None:
    client = SafeHttpClient(allowlist=["127.0.0.1"], timeout=1)
    # Admitted by policy; the connection itself then fails or succeeds depending on the host's IPv6.
    try:
        client.get("http://[::ffff:127.0.0.1]:9/")
    except UnsafeUrlError:  # pragma: no cover - this is the failure we test against
        pytest.fail("an allowlisted address was refused in its IPv4-mapped form")
    except FetchError:
        pass


def _django_configured() -> bool:
    from django.conf import settings

    return settings.configured


def test_it_uses_default_limits_without_django_settings() -> None:
    # A process of its own: this one has Django configured (pytest-django), and that cannot be undone in it.
    check = """
from portal.net import DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT_SECONDS, Allowlist, SafeHttpClient
from django.conf import settings
assert not settings.configured
client = SafeHttpClient()
assert client.default_timeout() == DEFAULT_TIMEOUT_SECONDS, client.default_timeout()
assert client.default_max_bytes() == DEFAULT_MAX_BYTES, client.default_max_bytes()
assert client.allowlist() == Allowlist.parse([]), client.allowlist()
print("defaults")
"""
    environment = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run(
        [sys.executable, "-c", check], env=environment, capture_output=True, text=True, timeout=60, check=False
    )

    assert done.returncode == 0 and done.stdout.strip() == "defaults", done.stderr


@pytest.mark.skipif(not _django_configured(), reason="needs Django settings (run under pytest-django)")
def test_it_reads_limits_and_allowlist_from_settings_at_call_time(server: LocalHttpServer) -> None:
    from django.test import override_settings

    client = SafeHttpClient()
    with override_settings(OUTBOUND_HTTP_TIMEOUT=7, OUTBOUND_HTTP_MAX_BYTES=2048, SSRF_ALLOWLIST=["127.0.0.1"]):
        assert client.default_timeout() == 7
        assert client.default_max_bytes() == 2048
        assert client.get(server.url("/hello")).status == 200
    with override_settings(SSRF_ALLOWLIST=[]), pytest.raises(UnsafeUrlError, match="loopback"):
        client.get(server.url("/hello"))


def test_it_lets_constructor_arguments_override_settings() -> None:
    client = SafeHttpClient(timeout=3, max_bytes=100, allowlist=["10.0.0.0/8"])

    assert client.default_timeout() == 3
    assert client.default_max_bytes() == 100
    assert client.allowlist().admits_address(ipaddress.ip_address("10.9.8.7"))


def test_it_ignores_proxies_from_the_environment(monkeypatch: pytest.MonkeyPatch, server: LocalHttpServer) -> None:
    with LocalHttpServer({}) as proxy:
        for variable in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
            monkeypatch.setenv(variable, proxy.base_url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)

        assert LOCAL_ONLY.get(server.url("/hello")).status == 200

        assert proxy.requests == []
    assert len(server.requests) == 1


def test_it_offers_a_module_level_get_that_applies_the_same_policy() -> None:
    with pytest.raises(UnsafeUrlError, match="metadata"):
        safe_get("http://169.254.169.254/latest/meta-data/")


# --- Limits ------------------------------------------------------------------------------------------


def test_it_caps_the_size_of_a_declared_length_answer() -> None:
    with LocalHttpServer({"/big": Reply(body=b"x" * 5000)}) as big:
        with pytest.raises(ResponseTooLargeError, match="larger than the limit of 1000 bytes"):
            LOCAL_ONLY.get(big.url("/big"), max_bytes=1000)
        assert LOCAL_ONLY.get(big.url("/big"), max_bytes=5000).content == b"x" * 5000


def test_it_stops_reading_a_streamed_answer_at_the_cap() -> None:
    endless = Reply(body=b"y" * 2_000_000, chunked=True, chunk_size=1024)
    with LocalHttpServer({"/stream": endless}) as streaming, pytest.raises(ResponseTooLargeError):
        LOCAL_ONLY.get(streaming.url("/stream"), max_bytes=10_000)


def test_it_times_out_on_a_slow_server() -> None:
    with LocalHttpServer({"/slow": Reply(body="late", delay=10)}) as slow:
        started = time.monotonic()
        with pytest.raises(FetchTimeoutError, match=re.escape("Timed out after 0.5 s")):
            LOCAL_ONLY.get(slow.url("/slow"), timeout=0.5)
        assert time.monotonic() - started < 3


def test_it_times_out_on_a_server_that_trickles_its_answer() -> None:
    # Each chunk arrives well within the socket timeout; only the overall deadline catches this.
    trickle = Reply(body=b"z" * 40, chunked=True, chunk_size=1, chunk_delay=0.1)
    with LocalHttpServer({"/trickle": trickle}) as slow:
        started = time.monotonic()
        with pytest.raises(FetchTimeoutError):
            LOCAL_ONLY.get(slow.url("/trickle"), timeout=1)
        assert time.monotonic() - started < 3


def test_it_reports_a_closed_port_as_a_connection_error() -> None:
    stopped = LocalHttpServer().start()
    url = stopped.url("/")
    stopped.stop()

    with pytest.raises(FetchConnectionError, match=re.escape("Could not connect to 127.0.0.1 port")):
        LOCAL_ONLY.get(url)


# --- Redirects ---------------------------------------------------------------------------------------


def _hop_route(total_redirects: int) -> Callable[[RecordedRequest], Reply]:
    def hop(request: RecordedRequest) -> Reply:
        step = int(parse_qs(urlsplit(request.path).query).get("n", ["0"])[0])
        if step < total_redirects:
            return Reply.redirect(f"/hop?n={step + 1}")
        return Reply(body=f"arrived after {step} redirects")

    return hop


def test_it_follows_up_to_five_redirects() -> None:
    with LocalHttpServer({"/hop": _hop_route(5)}) as hops:
        response = LOCAL_ONLY.get(hops.url("/hop"))

    assert response.text == "arrived after 5 redirects"
    assert response.url == hops.url("/hop?n=5")


def test_it_gives_up_after_five_redirects() -> None:
    with LocalHttpServer({"/hop": _hop_route(6)}) as hops:
        with pytest.raises(TooManyRedirectsError, match="more than 5 redirects"):
            LOCAL_ONLY.get(hops.url("/hop"))
        assert len(hops.requests) == 6


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("http://127.0.0.2:{port}/internal", "127.0.0.2 is a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata endpoint"),
        ("http://[::ffff:a9fe:a9fe]/", "IPv4-mapped IPv6 form of 169.254.169.254"),
        ("file:///etc/passwd", "scheme 'file' is not allowed"),
    ],
)
def test_it_validates_every_redirect_hop(location: str, reason: str) -> None:
    with LocalHttpServer() as internal, LocalHttpServer() as allowed:
        allowed.route("/start", Reply.redirect(location.format(port=internal.port)))

        with pytest.raises(UnsafeUrlError) as refused:
            LOCAL_ONLY.get(allowed.url("/start"))

        assert reason in str(refused.value)
        assert f"reached by a redirect from '{allowed.url('/start')}'" in str(refused.value)
        assert internal.requests == []


def test_it_never_forwards_credentials_to_another_host() -> None:
    credentials = {"Authorization": "Bearer s3cret", "Cookie": "session=abc", "X-Other": "kept"}
    with (
        LocalHttpServer({"/landing": Reply(body="landed")}, host="127.0.0.2") as other_host,
        LocalHttpServer({"/start": Reply.redirect(other_host.url("/landing"))}) as origin,
    ):
        client = SafeHttpClient(allowlist=["127.0.0.0/8"])

        assert client.get(origin.url("/start"), headers=credentials).text == "landed"

        assert origin.requests[0].headers["Authorization"] == "Bearer s3cret"
    (landed,) = other_host.requests
    assert landed.headers["Authorization"] is None
    assert landed.headers["Cookie"] is None
    assert landed.headers["X-Other"] == "kept"


def test_it_keeps_credentials_on_a_same_origin_redirect() -> None:
    with LocalHttpServer({"/start": Reply.redirect("/next"), "/next": Reply(body="ok")}) as origin:
        LOCAL_ONLY.get(origin.url("/start"), headers={"Authorization": "Bearer s3cret"})

    assert [request.headers["Authorization"] for request in origin.requests] == ["Bearer s3cret"] * 2


def test_it_turns_a_post_into_a_get_on_303_and_keeps_it_on_307() -> None:
    routes = {
        "POST /see-other": Reply.redirect("/result", status=303),
        "POST /temporary": Reply.redirect("/result", status=307),
        "/result": lambda request: Reply(body={"method": request.method, "body": request.body.decode()}),
    }
    with LocalHttpServer(routes) as forms:
        after_303 = LOCAL_ONLY.post(forms.url("/see-other"), json={"a": 1}).json()
        after_307 = LOCAL_ONLY.post(forms.url("/temporary"), json={"a": 1}).json()

    assert after_303 == {"method": "GET", "body": ""}
    assert after_307 == {"method": "POST", "body": '{"a": 1}'}


# --- DNS rebinding: the connection goes to the validated address -------------------------------------


def test_it_connects_to_the_address_it_validated_not_to_a_second_dns_answer(
    fake_dns: dict[str, list[list[str]]],
    connect_log: tuple[list[tuple[Any, ...]], dict[tuple[str, int], int]],
) -> None:
    attempts, internet = connect_log
    with (
        LocalHttpServer({"/secret": Reply(body="internal secret")}) as internal,
        LocalHttpServer({"/secret": Reply(body="public page")}) as public,
    ):
        # First answer is public (passes the check); any later lookup would say 127.0.0.1.
        fake_dns["rebind.example"] = [[PUBLIC_ADDRESS], ["127.0.0.1"]]
        internet[(PUBLIC_ADDRESS, internal.port)] = public.port

        response = STRICT.get(f"http://rebind.example:{internal.port}/secret")

        assert response.text == "public page"
        assert internal.requests == []
        assert public.requests[0].headers["Host"] == f"rebind.example:{internal.port}"

    assert _lookups_of(fake_dns, "rebind.example") == 1
    assert attempts == [(PUBLIC_ADDRESS, internal.port)]


def test_it_resolves_each_redirect_hop_once_and_connects_to_that_answer(
    fake_dns: dict[str, list[list[str]]],
    connect_log: tuple[list[tuple[Any, ...]], dict[tuple[str, int], int]],
) -> None:
    attempts, internet = connect_log
    with LocalHttpServer({"/data": Reply(body="public data")}) as public:
        fake_dns["first.example"] = [[PUBLIC_ADDRESS], ["127.0.0.1"]]
        fake_dns["second.example"] = [["93.184.216.35"], ["127.0.0.1"]]
        internet[("93.184.216.35", public.port)] = public.port
        public.route("/start", Reply.redirect(f"http://second.example:{public.port}/data"))
        internet[(PUBLIC_ADDRESS, public.port)] = public.port

        response = STRICT.get(f"http://first.example:{public.port}/start")

    assert response.text == "public data"
    assert _lookups_of(fake_dns, "first.example") == 1
    assert _lookups_of(fake_dns, "second.example") == 1
    assert attempts == [(PUBLIC_ADDRESS, public.port), ("93.184.216.35", public.port)]


# --- TLS: pinned address, original name for SNI and certificate checks --------------------------------


def _self_signed_certificate(directory: Path, host_name: str) -> tuple[Path, Path]:
    certificate, key = directory / f"{host_name}.pem", directory / f"{host_name}.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            f"/CN={host_name}",
            "-addext",
            f"subjectAltName=DNS:{host_name}",
            "-keyout",
            str(key),
            "-out",
            str(certificate),
        ],
        check=True,
        capture_output=True,
    )
    return certificate, key


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[LocalHttpServer, Path, list[str | None]]]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    certificate, key = _self_signed_certificate(tmp_path, "secure.example")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate, key)
    server_names: list[str | None] = []
    context.sni_callback = lambda _socket, name, _context: server_names.append(name)
    with LocalHttpServer({"/": Reply(body="over tls")}, ssl_context=context) as server:
        yield server, certificate, server_names


def test_it_pins_the_address_but_verifies_tls_against_the_host_name(
    fake_dns: dict[str, list[list[str]]],
    connect_log: tuple[list[tuple[Any, ...]], dict[tuple[str, int], int]],
    tls_server: tuple[LocalHttpServer, Path, list[str | None]],
) -> None:
    server, certificate, server_names = tls_server
    attempts, internet = connect_log
    fake_dns["secure.example"] = [[PUBLIC_ADDRESS], ["127.0.0.1"]]
    internet[(PUBLIC_ADDRESS, server.port)] = server.port

    response = SafeHttpClient(verify=str(certificate), timeout=5).get(f"https://secure.example:{server.port}/")

    assert response.text == "over tls"
    assert server_names == ["secure.example"]
    assert attempts == [(PUBLIC_ADDRESS, server.port)]
    assert _lookups_of(fake_dns, "secure.example") == 1


def test_it_refuses_a_certificate_for_another_name(
    fake_dns: dict[str, list[list[str]]],
    connect_log: tuple[list[tuple[Any, ...]], dict[tuple[str, int], int]],
    tls_server: tuple[LocalHttpServer, Path, list[str | None]],
) -> None:
    server, certificate, _server_names = tls_server
    _attempts, internet = connect_log
    fake_dns["impostor.example"] = [[PUBLIC_ADDRESS]]
    internet[(PUBLIC_ADDRESS, server.port)] = server.port

    with pytest.raises(FetchConnectionError, match="TLS error"):
        SafeHttpClient(verify=str(certificate), timeout=5).get(f"https://impostor.example:{server.port}/")


# --- Sessions ------------------------------------------------------------------------------------------


def test_a_session_reuses_one_connection_for_requests_to_the_same_server(server: LocalHttpServer) -> None:
    with LOCAL_ONLY.session() as http:
        answers = [http.get(server.url("/hello")).text for _ in range(3)]
    outside = [LOCAL_ONLY.get(server.url("/hello")).status for _ in range(2)]

    assert answers == ["hello from the test server"] * 3 and outside == [200, 200]
    in_session, separate = server.requests[:3], server.requests[3:]
    assert len({request.client_port for request in in_session}) == 1
    assert len({request.client_port for request in separate}) == 2  # without a session: one connection each


def test_a_session_still_checks_every_request() -> None:
    with LOCAL_ONLY.session() as http, pytest.raises(UnsafeUrlError):
        http.get("http://169.254.169.254/latest/meta-data/")
