"""Rate limits (429 + Retry-After) and injected faults: latency, 5xx, dropped connections."""

from __future__ import annotations

import time

import pytest
import requests

from cio_flows.emulator import Emulator, RateLimit
from cio_flows.emulator.config import CUSTOMERIO_LIMITS, parse_faults, parse_limits
from cio_flows.emulator.faults import TokenBucket, retry_after

from .conftest import Client


def test_token_bucket_refills_at_rate():
    now = [0.0]
    bucket = TokenBucket(RateLimit(10, burst=2), clock=lambda: now[0])
    assert bucket.take() == 0 and bucket.take() == 0
    wait = bucket.take()
    assert wait == pytest.approx(0.1)
    now[0] += 0.1
    assert bucket.take() == 0
    assert retry_after(0.1) == "1" and retry_after(2.01) == "3"


def test_customerio_preset():
    assert parse_limits("customerio") == CUSTOMERIO_LIMITS
    assert CUSTOMERIO_LIMITS["track"].rate == 100 and CUSTOMERIO_LIMITS["app"].rate == 10
    assert CUSTOMERIO_LIMITS["pipelines"].rate == 1000
    with pytest.raises(ValueError):
        parse_limits({"smtp": 1})
    with pytest.raises(ValueError):
        parse_faults({"app": {"latency": 1, "bogus": 2}})


@pytest.fixture
def limited(emulator):
    emulator.reset()
    emulator.configure(
        limits={
            "app": {"rate": 1, "burst": 2},
            "track": {"rate": 1, "burst": 1},
            "pipelines": {"rate": 1, "burst": 1},
        }
    )
    yield Client(emulator)
    emulator.reset()


def test_app_429_has_retry_after_and_errors_body(limited):
    codes = [limited.app("GET", "/v1/segments").status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    r = limited.app("GET", "/v1/segments")
    assert r.headers["Retry-After"] == "1"
    assert r.json() == {"errors": [{"detail": "rate limit exceeded", "status": "429"}]}


def test_families_have_separate_buckets(limited, emulator):
    assert limited.track("PUT", "/api/v1/customers/rl", {"a": 1}).status_code == 200
    r = limited.track("PUT", "/api/v1/customers/rl", {"a": 2})
    assert r.status_code == 429 and "Retry-After" in r.headers and r.json()["meta"]["errors"]
    assert limited.pipelines("/identify", {"userId": "rl2"}).status_code == 200
    assert limited.pipelines("/identify", {"userId": "rl3"}).status_code == 429
    assert limited.app("GET", "/v1/segments").status_code == 200
    assert emulator.inspect.person("rl")["attributes"] == {"a": 1}
    assert emulator.inspect.person("rl3") is None


def test_limits_recover_after_retry_after(limited):
    limited.track("PUT", "/api/v1/customers/rr", {})
    r = limited.track("PUT", "/api/v1/customers/rr", {})
    assert r.status_code == 429
    time.sleep(float(r.headers["Retry-After"]))
    assert limited.track("PUT", "/api/v1/customers/rr", {}).status_code == 200


def test_error_faults_answer_5xx_and_store_nothing(emulator):
    emulator.reset()
    emulator.configure(faults={"track": {"error_rate": 1.0, "seed": 3}})
    try:
        c = Client(emulator)
        statuses = {
            c.track("PUT", f"/api/v1/customers/f{i}", {"a": 1}).status_code for i in range(20)
        }
        assert statuses == {500, 503}
        r = c.track("PUT", "/api/v1/customers/f", {"a": 1})
        assert r.json()["meta"]["errors"]
        assert not [p for p in emulator.inspect.people() if p["id"].startswith("f")]
        assert c.app("GET", "/v1/segments").status_code == 200  # other families unaffected
    finally:
        emulator.reset()


def test_error_rate_is_seeded_and_roughly_right():
    def run() -> list[int]:
        with Emulator(workspace={}, faults={"app": {"error_rate": 0.3, "seed": 42}}) as emu:
            c = Client(emu)
            return [c.app("GET", "/v1/segments").status_code for _ in range(100)]

    first, second = run(), run()
    assert first == second
    assert 15 <= sum(s != 200 for s in first) <= 45


def test_latency_is_added(emulator):
    emulator.reset()
    emulator.configure(faults={"app": {"latency": 0.2}})
    try:
        c = Client(emulator)
        started = time.perf_counter()
        assert c.app("GET", "/v1/segments").status_code == 200
        assert time.perf_counter() - started >= 0.2
    finally:
        emulator.reset()


def test_dropped_connection_gets_no_answer(emulator):
    emulator.reset()
    emulator.configure(faults={"pipelines": {"drop_rate": 1.0}})
    try:
        c = Client(emulator)
        with pytest.raises(requests.ConnectionError):
            c.pipelines("/identify", {"userId": "dropped"})
        assert emulator.inspect.person("dropped") is None
        assert emulator.inspect.requests()[-1]["note"] == "fault: connection dropped"
        assert c.app("GET", "/v1/segments").status_code == 200  # the server lives on
    finally:
        emulator.reset()


def test_workspace_sections_and_constructor_args(tmp_path):
    ws = tmp_path / "ws.yaml"
    ws.write_text("limits: {app: {rate: 1, burst: 1}}\nfaults: {track: {error_rate: 1.0}}\n")
    with Emulator(workspace=ws, faults={"track": None}) as emu:
        c = Client(emu)
        assert [c.app("GET", "/v1/segments").status_code for _ in range(2)] == [200, 429]
        assert c.track("PUT", "/api/v1/customers/w", {}).status_code in (500, 503)
    with Emulator(workspace=ws, limits={"app": {"rate": 100}}, faults={"track": {}}) as emu:
        c = Client(emu)
        assert [c.app("GET", "/v1/segments").status_code for _ in range(2)] == [200, 200]
        assert c.track("PUT", "/api/v1/customers/w", {}).status_code == 200


def test_reset_restores_constructor_behaviour(emulator):
    emulator.configure(limits={"app": {"rate": 0.001, "burst": 1}})
    c = Client(emulator)
    c.app("GET", "/v1/segments")
    assert c.app("GET", "/v1/segments").status_code == 429
    emulator.reset()
    assert all(c.app("GET", "/v1/segments").status_code == 200 for _ in range(5))
