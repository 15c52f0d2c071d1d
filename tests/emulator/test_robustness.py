"""Bad input of every kind gets a proper answer, and nothing takes the server down."""

from __future__ import annotations

import contextlib
import json
import socket

import pytest
import requests

from cio_flows.emulator import pipelines as pipelines_module

from .conftest import APP_AUTH, PIPELINES_AUTH, TRACK_AUTH


def raw(client, method: str, path: str, data: bytes, headers: dict) -> requests.Response:
    return client.http.request(method, client.url + path, data=data, headers=headers)


JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    "body", [b"{not json", b"\xff\xfe", b'{"a": 1'], ids=["syntax", "bytes", "cut"]
)
def test_malformed_json(client, emu, body):
    r = raw(client, "PUT", "/api/v1/customers/m", body, TRACK_AUTH | JSON)
    assert r.status_code == 400 and r.json() == {
        "meta": {"errors": ["malformed JSON in request body"]}
    }
    r = raw(client, "POST", "/v1/customers", body, APP_AUTH | JSON)
    assert r.status_code == 400 and r.json()["errors"][0]["status"] == "400"
    r = raw(client, "POST", "/v1/send/email", body, APP_AUTH | JSON)
    assert r.status_code == 400 and r.json()["meta"]["error"]
    r = raw(client, "POST", "/v1/identify", body, PIPELINES_AUTH | JSON)
    assert (r.status_code, r.json()) == (200, {})
    r = raw(client, "POST", "/v1/identify", body, PIPELINES_AUTH | JSON | {"X-Strict-Mode": "1"})
    assert r.status_code == 400 and r.json()["meta"]["errors"]
    r = raw(client, "POST", "/api/v2/batch", body, TRACK_AUTH | JSON)
    assert r.status_code == 400 and r.json()["errors"][0]["message"]
    assert emu.inspect.person("m") is None


def _nested(depth: int, kind: str) -> bytes:
    if kind == "arrays":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


TOO_DEEP = "JSON in request body is nested deeper than 128 levels"


# 100,000 levels overflow the decoder's stack; 500 parse but would overflow whatever walks them
# later (the store, the request log, the inspection API).
@pytest.mark.parametrize("kind", ["arrays", "objects"])
@pytest.mark.parametrize("depth", [100_000, 500, 129])
def test_deeply_nested_json_gets_the_family_400(client, emu, depth, kind):
    body = _nested(depth, kind)
    events = len(emu.inspect.events())
    r = raw(client, "PUT", "/api/v1/customers/deep", body, TRACK_AUTH | JSON)
    assert (r.status_code, r.json()) == (400, {"meta": {"errors": [TOO_DEEP]}})
    r = raw(client, "POST", "/api/v2/batch", body, TRACK_AUTH | JSON)
    assert r.status_code == 400 and r.json()["errors"][0]["message"] == TOO_DEEP
    r = raw(client, "POST", "/v1/customers", body, APP_AUTH | JSON)
    assert (r.status_code, r.json()) == (400, {"errors": [{"detail": TOO_DEEP, "status": "400"}]})
    r = raw(client, "POST", "/v1/send/email", body, APP_AUTH | JSON)
    assert (r.status_code, r.json()) == (400, {"meta": {"error": TOO_DEEP}})
    # Pipelines answers bad JSON as it answers malformed JSON: 200 {} unless strict.
    r = raw(client, "POST", "/v1/identify", body, PIPELINES_AUTH | JSON)
    assert (r.status_code, r.json()) == (200, {})
    r = raw(client, "POST", "/v1/batch", body, PIPELINES_AUTH | JSON | {"X-Strict-Mode": "1"})
    assert (r.status_code, r.json()) == (400, {"meta": {"errors": [TOO_DEEP]}})
    # Nothing was stored, the request log (kept as text) still reads, and the server carries on.
    assert emu.inspect.person("deep") is None and len(emu.inspect.events()) == events
    logged = client.http.get(client.url + "/_emulator/requests")
    assert logged.status_code == 200 and len(logged.json()) == 6
    assert client.app("GET", "/v1/segments").status_code == 200


def test_nesting_up_to_the_limit_is_stored_and_read_back(client, emu):
    properties = json.loads(_nested(127, "objects"))  # 128 levels with the event around it
    event = {"userId": "nest", "event": "deep", "properties": properties}
    r = client.pipelines("/track", event, headers={"X-Strict-Mode": "1"})
    assert (r.status_code, r.json()) == (200, {})
    assert [e["data"] for e in emu.inspect.events() if e["name"] == "deep"] == [properties]
    assert client.http.get(client.url + "/_emulator/requests").status_code == 200


@pytest.mark.parametrize("body", [b"[]", b'"text"', b"42", b"null"])
def test_json_that_is_not_an_object(client, body):
    assert raw(client, "PUT", "/api/v1/customers/m", body, TRACK_AUTH | JSON).status_code == 400
    assert raw(client, "POST", "/v1/customers", body, APP_AUTH | JSON).status_code == 400
    assert raw(client, "POST", "/api/v2/entity", body, TRACK_AUTH | JSON).status_code == 400


def test_wrong_content_type_is_415(client, emu):
    headers = TRACK_AUTH | {"Content-Type": "text/plain"}
    r = raw(client, "PUT", "/api/v1/customers/ct", b'{"a": 1}', headers)
    assert r.status_code == 415 and r.json()["meta"]["errors"]
    r = raw(client, "POST", "/v1/send/email", b"{}", APP_AUTH | {"Content-Type": "application/xml"})
    assert r.status_code == 415
    assert emu.inspect.person("ct") is None


def test_json_with_charset_is_fine(client):
    r = raw(
        client,
        "PUT",
        "/api/v1/customers/cs",
        b'{"a": 1}',
        TRACK_AUTH | {"Content-Type": "application/json; charset=utf-8"},
    )
    assert r.status_code == 200


def test_oversized_body_is_413_without_reading_it(client):
    big = b'{"a": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    r = raw(client, "PUT", "/api/v1/customers/big", big, TRACK_AUTH | JSON)
    assert r.status_code == 413 and r.json()["meta"]["errors"]


def test_unknown_paths_and_methods(client):
    r = client.app("GET", "/v1/nothing-here")
    assert r.status_code == 404 and r.json()["errors"][0]["status"] == "404"
    r = client.track("GET", "/api/v1/nope")
    assert r.status_code == 404 and r.json()["meta"]["errors"]
    assert client.track("PATCH", "/api/v1/customers/x").status_code == 405
    assert client.http.get(client.url + "/nothing-here").status_code == 404  # "/" is the web page


def test_empty_body_on_put_is_an_empty_attribute_map(client):
    r = raw(client, "PUT", "/api/v1/customers/empty", b"", TRACK_AUTH)
    assert r.status_code == 200
    assert client.attributes("empty").status_code == 200


def test_handler_crash_answers_500_and_leaves_nothing_half_written(client, emu, monkeypatch):
    real = pipelines_module.EFFECTS["track"]

    def explode(store, msg, *args):
        if msg["event"] == "boom":
            raise RuntimeError("simulated bug")
        return real(store, msg, *args)

    monkeypatch.setitem(pipelines_module.EFFECTS, "track", explode)
    batch = [
        {"type": "identify", "userId": "half", "traits": {"a": 1}},
        {"type": "track", "userId": "half", "event": "fine"},
        {"type": "track", "userId": "half", "event": "boom"},
    ]
    r = client.pipelines("/batch", {"batch": batch})
    assert r.status_code == 500
    assert r.json() == {"meta": {"errors": ["internal server error"]}}
    assert emu.inspect.person("half") is None
    assert not [e for e in emu.inspect.events() if e["name"] == "fine"]
    assert emu.inspect.requests()[-1]["status"] == 500
    # ... and the server carries on.
    monkeypatch.undo()
    assert client.pipelines("/batch", {"batch": batch[:2]}).status_code == 200
    assert emu.inspect.person("half") is not None


def test_garbage_on_the_socket_does_not_kill_the_server(client, emu):
    host, port = client.url.removeprefix("http://").split(":")
    for junk in (b"NOT HTTP AT ALL\r\n\r\n", b"GET /v1/segments HTTP/1.1\r\nHost", b"\x00" * 100):
        with socket.create_connection((host, int(port)), timeout=2) as s:
            s.sendall(junk)
            s.shutdown(socket.SHUT_WR)
            with contextlib.suppress(OSError):
                s.recv(1024)
    assert client.app("GET", "/v1/segments").status_code == 200


def test_percent_encoded_identifiers_are_decoded(client):
    client.track("PUT", "/api/v1/customers/a%2Fb%20c", {"x": 1})
    r = client.app("GET", "/v1/customers/attributes", params=None)  # not a real path: GET
    assert r.status_code == 405
    r = client.app("POST", "/v1/customers/attributes", {"ids": ["a/b c"]})
    assert [c["customer"]["id"] for c in r.json()["customers"]] == ["a/b c"]
