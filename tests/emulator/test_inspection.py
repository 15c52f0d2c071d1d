"""The /_emulator view and emulator.inspect: what was received, never a key."""

from __future__ import annotations

import json

from cio_flows.emulator import DEMO_CREDENTIALS as C


def test_http_views_match_python_views(client, emu):
    client.pipelines("/identify", {"userId": "i1", "traits": {"plan": "pro"}})
    client.pipelines("/track", {"userId": "i1", "event": "e"})
    client.app(
        "POST",
        "/v1/send/email",
        {"transactional_message_id": 1, "identifiers": {"id": "i1"}, "to": "i1@x.io"},
    )
    for name in ("people", "events", "deliveries", "segments", "devices"):
        over_http = client.http.get(f"{client.url}/_emulator/{name}").json()
        assert over_http == json.loads(json.dumps(getattr(emu.inspect, name)())), name
    assert emu.inspect.person("i1")["attributes"] == {"plan": "pro"}
    assert emu.inspect.events()[-1]["name"] == "e"
    assert emu.inspect.deliveries()[0]["person"]["id"] == "i1"
    pro = next(s for s in emu.inspect.segments() if s["name"] == "Pro plan")
    assert "i1" in [m["id"] for m in pro["members"]] and pro["count"] == len(pro["members"])


def test_request_log_records_calls_without_keys(client, emu):
    client.pipelines(
        "/identify",
        {
            "userId": "log1",
            "writeKey": C.pipelines_key,
            "traits": {"note": f"my key is {C.track_key}"},
        },
    )
    client.track("PUT", "/api/v1/customers/log1", {"a": 1})
    client.app("GET", "/v1/segments")
    log = emu.inspect.requests()
    assert [(r["method"], r["path"], r["family"], r["status"]) for r in log] == [
        ("POST", "/v1/identify", "pipelines", 200),
        ("PUT", "/api/v1/customers/log1", "track", 200),
        ("GET", "/v1/segments", "app", 200),
    ]
    assert log[0]["body"]["userId"] == "log1" and log[1]["body"] == {"a": 1}
    text = json.dumps(log) + client.http.get(f"{client.url}/_emulator/requests").text
    for secret in (C.track_key, C.pipelines_key, C.app_key, "Authorization", "Basic ", "Bearer "):
        assert secret not in text
    assert "[REDACTED]" in text
    assert [r["path"] for r in emu.inspect.requests("track")] == ["/api/v1/customers/log1"]


def test_request_log_http_filters(client):
    client.app("GET", "/v1/segments")
    client.track("GET", "/api/v1/accounts/region")
    rows = client.http.get(f"{client.url}/_emulator/requests", params={"family": "app"}).json()
    assert [r["path"] for r in rows] == ["/v1/segments"]
    rows = client.http.get(f"{client.url}/_emulator/requests", params={"limit": 1}).json()
    assert [r["path"] for r in rows] == ["/api/v1/accounts/region"]


def test_inspect_returns_copies(client, emu):
    client.app("GET", "/v1/segments")
    client.track("PUT", "/api/v1/customers/cp", {"a": 1})
    emu.inspect.requests()[1]["body"]["a"] = "changed"
    assert emu.inspect.requests()[1]["body"] == {"a": 1}
    emu.inspect.requests()[0]["status"] = 999
    emu.inspect.people()[0]["attributes"]["plan"] = "hacked"
    assert emu.inspect.requests()[0]["status"] == 200
    assert emu.inspect.people()[0]["attributes"]["plan"] != "hacked"


def test_reset_over_http(client, emu):
    client.track("DELETE", "/api/v1/customers/user_0001")
    assert client.http.post(f"{client.url}/_emulator/reset").json() == {"ok": True}
    assert emu.inspect.person("user_0001") is not None
    assert emu.inspect.requests() == []
    client.http.post(f"{client.url}/_emulator/reset", params={"empty": "1"})
    assert emu.inspect.people() == [] and emu.inspect.segments() == []


def test_request_log_is_bounded(client, emu, monkeypatch):
    from cio_flows.emulator import state

    monkeypatch.setattr(state, "REQUEST_LOG_BYTES", 2_000)
    for i in range(10):
        client.track("PUT", f"/api/v1/customers/b{i}", {"pad": "x" * 500})
    log = emu.inspect.requests()
    assert 2 <= len(log) <= 4
    assert log[-1]["path"] == "/api/v1/customers/b9" and log[-1]["seq"] == 10
