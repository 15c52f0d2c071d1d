"""Transport: auth per family, retries, Retry-After, unknown outcomes, rate limits."""

from __future__ import annotations

import base64
import socket
import threading
import time
from dataclasses import replace

import pytest

from cio_flows.errors import TransportError
from cio_flows.wire.config import Credentials, Endpoints
from cio_flows.wire.kinds import Request
from cio_flows.wire.ratelimit import RateLimiter, RateLimits
from cio_flows.wire.retry import RetryPolicy, parse_retry_after
from cio_flows.wire.transport import Transport, TransportSettings

CREDS = Credentials("site-1", "track-key", "pipe-key", "app-key")
FAST = TransportSettings(
    retry=RetryPolicy(max_attempts=4, base_delay=0.001, max_delay=0.01),
    rate_limits=RateLimits({}),
)


def transport_for(server, settings=FAST, sleeps=None) -> Transport:
    root = server.url
    sleep = sleeps.append if sleeps is not None else (lambda s: None)
    return Transport(Endpoints(root, root, root), CREDS, settings, sleep=sleep)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_each_family_uses_its_own_auth_scheme(recording_server):
    with transport_for(recording_server) as transport:
        transport.send(Request("pipelines", "POST", "/v1/identify", {"userId": "u"}))
        transport.send(Request("track", "PUT", "/api/v1/customers/u", {}))
        transport.send(Request("app", "GET", "/v1/segments"))
    auths = [r.headers["Authorization"] for r in recording_server.requests]
    assert auths == [basic("pipe-key", ""), basic("site-1", "track-key"), "Bearer app-key"]
    strict = [r.headers.get("X-Strict-Mode") for r in recording_server.requests]
    assert strict == ["1", None, None]  # Pipelines only: its permissive 200s would hide errors


def test_retry_after_is_honoured_then_succeeds(recording_server):
    answers = iter(
        [(429, {"Retry-After": "2"}, {"errors": [{"detail": "slow down", "status": "429"}]})]
    )
    recording_server.handler = lambda r: next(answers, (200, {}, {}))
    sleeps: list[float] = []
    with transport_for(recording_server, sleeps=sleeps) as transport:
        response = transport.send(Request("app", "GET", "/v1/segments"))
    assert response.status == 200 and response.attempts == 2
    assert sleeps == [2.0]


def test_send_is_retried_after_429_but_not_after_500(recording_server):
    recording_server.handler = lambda r: (500, {}, {"meta": {"error": "boom"}})
    send = Request("app", "POST", "/v1/send/email", {"x": 1}, repeatable=False)
    with transport_for(recording_server) as transport, pytest.raises(TransportError) as info:
        transport.send(send)
    assert info.value.outcome == "unknown"
    assert len(recording_server.requests) == 1  # never resent
    assert "boom" in str(info.value)

    answers = iter([(429, {"Retry-After": "0"}, None)])
    recording_server.handler = lambda r: next(answers, (200, {}, {"delivery_id": "d"}))
    recording_server.requests.clear()
    with transport_for(recording_server) as transport:
        assert transport.send(send).body == {"delivery_id": "d"}
    assert len(recording_server.requests) == 2


def test_repeatable_requests_retry_5xx_until_success(recording_server):
    answers = iter([(503, {}, None), (502, {}, None)])
    recording_server.handler = lambda r: next(answers, (200, {}, {}))
    with transport_for(recording_server) as transport:
        assert transport.send(Request("track", "DELETE", "/api/v1/customers/u")).attempts == 3


def test_gives_up_after_max_attempts(recording_server):
    recording_server.handler = lambda r: (503, {}, None)
    with transport_for(recording_server) as transport, pytest.raises(TransportError) as info:
        transport.send(Request("track", "DELETE", "/api/v1/customers/u"))
    assert info.value.attempts == 4 and info.value.outcome == "failed"


def test_client_errors_are_not_retried(recording_server):
    recording_server.handler = lambda r: (400, {}, {"meta": {"errors": ["bad name"]}})
    with (
        transport_for(recording_server) as transport,
        pytest.raises(TransportError, match="bad name"),
    ):
        transport.send(Request("track", "POST", "/api/v1/customers/u/events", {}))
    assert len(recording_server.requests) == 1


def test_connection_refused_is_provably_not_sent():
    endpoints = Endpoints("http://127.0.0.1:9", "http://127.0.0.1:9", "http://127.0.0.1:9")
    transport = Transport(endpoints, CREDS, FAST, sleep=lambda s: None)
    send = Request("app", "POST", "/v1/send/email", {}, repeatable=False)
    with pytest.raises(TransportError) as info:
        transport.send(send)
    assert info.value.outcome == "failed" and info.value.attempts == 4


def test_parse_retry_after():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("soon") is None


def test_rate_limiter_spaces_requests_evenly():
    clock = [0.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)

    limiter = RateLimiter(10, clock=lambda: clock[0], sleep=sleep)
    for _ in range(5):
        limiter.acquire()
    assert waits == pytest.approx([0.1, 0.2, 0.3, 0.4])


def test_rate_limiter_pause_holds_back_the_next_request():
    clock = [0.0]
    waits: list[float] = []
    limiter = RateLimiter(100, clock=lambda: clock[0], sleep=waits.append)
    limiter.pause(2.0)
    limiter.acquire()
    assert waits == pytest.approx([2.0])


def test_region_hosts_and_overrides():
    eu = Endpoints.for_region("eu", {})
    assert (eu.pipelines, eu.track, eu.app) == (
        "https://cdp-eu.customer.io",
        "https://track-eu.customer.io",
        "https://api-eu.customer.io",
    )
    custom = Endpoints.for_region("us", {"CUSTOMERIO_APP_URL": "http://127.0.0.1:8710/"})
    assert custom.app == "http://127.0.0.1:8710" and custom.track == "https://track.customer.io"


def test_credentials_repr_hides_keys():
    assert "track-key" not in repr(CREDS) and "app-key" not in repr(CREDS)


def test_429s_do_not_use_up_the_attempts_for_failures(recording_server):
    answers = iter([(429, {"Retry-After": "0"}, None)] * 8)
    recording_server.handler = lambda r: next(answers, (200, {}, {}))
    with transport_for(recording_server) as transport:  # max_attempts=4
        response = transport.send(Request("pipelines", "POST", "/v1/batch", {"batch": []}))
    assert response.status == 200 and response.attempts == 9
    assert transport.stats["throttled"] == 8


@pytest.fixture
def dropping_server():
    """Reads each request, then closes the connection without an answer: the answer is lost."""
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                received.append(connection.recv(65536))

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", received
    listener.close()


def endpoints(url: str) -> Endpoints:
    return Endpoints(url, url, url)


def test_lost_answer_fails_a_repeatable_request_and_leaves_a_send_unknown(dropping_server):
    url, received = dropping_server
    port = url.rsplit(":", 1)[1]
    transport = Transport(endpoints(url), CREDS, FAST, sleep=lambda s: None)
    with pytest.raises(TransportError) as identify:
        transport.send(Request("pipelines", "POST", "/v1/identify", {"messageId": "m1"}))
    assert identify.value.outcome == "failed" and identify.value.attempts == 4
    assert f"connection to 127.0.0.1:{port} closed mid-answer after 4 attempt(s)" in str(
        identify.value
    )
    received.clear()
    with pytest.raises(TransportError) as send:
        transport.send(Request("app", "POST", "/v1/send/email", {}, repeatable=False))
    assert send.value.outcome == "unknown" and len(received) == 1


def test_tls_to_a_plain_http_port_names_host_and_is_not_sent(recording_server):
    port = recording_server.url.rsplit(":", 1)[1]
    transport = Transport(endpoints(f"https://127.0.0.1:{port}"), CREDS, FAST, sleep=lambda s: None)
    with pytest.raises(TransportError) as info:
        transport.send(Request("app", "POST", "/v1/send/email", {}, repeatable=False))
    assert info.value.outcome == "failed"  # the handshake failed before the request was written
    assert f"TLS handshake with 127.0.0.1:{port} failed" in str(info.value)
    assert "plain-http" in str(info.value) and recording_server.requests == []


def test_tls_handshake_timeout_is_not_a_read_timeout():
    """urllib3 reports it as a read timeout; no byte of the request has left, though."""
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        port = silent.getsockname()[1]
        settings = replace(FAST, connect_timeout=0.2, read_timeout=0.2)
        transport = Transport(endpoints(f"https://127.0.0.1:{port}"), CREDS, settings)
        send = Request("app", "POST", "/v1/send/email", {}, repeatable=False)
        with pytest.raises(TransportError) as info:
            transport.send(send)
    assert info.value.outcome == "failed"
    assert f"TLS handshake with 127.0.0.1:{port} timed out" in str(info.value)


def test_read_timeout_leaves_a_send_unknown():
    with socket.create_server(("127.0.0.1", 0)) as silent:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        settings = replace(FAST, read_timeout=0.2)
        transport = Transport(endpoints(url), CREDS, settings)
        with pytest.raises(TransportError) as info:
            transport.send(Request("app", "POST", "/v1/send/email", {}, repeatable=False))
    assert info.value.outcome == "unknown" and info.value.attempts == 1
    assert "timed out reading the answer from 127.0.0.1:" in str(info.value)


def test_unknown_host_fails_fast_naming_the_host():
    transport = Transport(endpoints("http://cio-flows-test.invalid"), CREDS, FAST)
    with pytest.raises(TransportError) as info:
        transport.send(Request("app", "POST", "/v1/send/email", {}, repeatable=False))
    assert info.value.outcome == "failed"
    assert "DNS lookup failed for cio-flows-test.invalid:80" in str(info.value)


def test_refused_connection_names_host_and_port():
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # closed again on leaving: nothing listens there
    transport = Transport(endpoints(f"http://127.0.0.1:{port}"), CREDS, FAST, sleep=lambda s: 0)
    with pytest.raises(TransportError, match=f"connection refused by 127.0.0.1:{port} after 4"):
        transport.send(Request("track", "DELETE", "/api/v1/customers/u"))


def test_interrupt_ends_a_long_backoff_at_once(recording_server):
    recording_server.handler = lambda r: (503, {"Retry-After": "20"}, None)
    transport = Transport(endpoints(recording_server.url), CREDS, FAST)  # real, waiting sleep
    threading.Timer(0.3, transport.interrupt).start()
    started = time.monotonic()
    with pytest.raises(TransportError) as info:
        transport.send(Request("pipelines", "POST", "/v1/identify", {"messageId": "m"}))
    assert time.monotonic() - started < 15  # hang guard: the Retry-After was 20 s
    assert info.value.outcome == "failed" and info.value.attempts == 1
    assert "HTTP 503 after 1 attempt(s); interrupted before retrying" in str(info.value)
    assert len(recording_server.requests) == 1 and transport.stats["retries"] == 0
