"""Request hardening (issue 18, items 8 and 14). The request log never keeps a key, in any form
a client may send it (query strings, base64 of `key:` and of `site_id:track_key`, inside bodies,
URL-encoded); credentials are checked before a body is read; chunked bodies count against 4 MB."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

from cio_flows.emulator import DEMO_CREDENTIALS as C

from .conftest import Client


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


FORMS = [
    C.app_key,
    C.track_key,
    C.pipelines_key,
    _b64(f"{C.pipelines_key}:"),
    _b64(f"{C.site_id}:{C.track_key}"),
    quote(_b64(f"{C.site_id}:{C.track_key}"), safe=""),
    _b64(f"{C.pipelines_key}:").rstrip("="),
]


def _logged(client: Client) -> str:
    return json.dumps(client.emulator.inspect.requests())


def test_keys_in_query_strings_are_scrubbed(client: Client) -> None:
    for form in FORMS:
        client.app("GET", "/v1/segments", params={"api_key": form})
        client.app("GET", "/v1/segments", params={"auth": form})
        client.app("GET", f"/v1/nothing-here?x={form}")
    logged = _logged(client)
    for form in FORMS:
        assert form not in logged, form
    assert "api_key=[REDACTED]" in logged


def test_api_key_params_are_scrubbed_whatever_they_hold(client: Client) -> None:
    client.app("GET", "/v1/segments", params={"api_key": "some-other-workspace-key"})
    assert "some-other-workspace-key" not in _logged(client)


def test_base64_keys_inside_bodies_are_scrubbed(client: Client) -> None:
    body = {
        "userId": "u1",
        "traits": {
            "note": "Basic " + _b64(f"{C.site_id}:{C.track_key}"),
            "other": _b64(f"{C.pipelines_key}:"),
        },
    }
    client.pipelines("/identify", body)
    client.track("PUT", "/api/v1/customers/u1", {"auth": _b64(f"{C.site_id}:{C.track_key}")})
    logged = _logged(client)
    for form in FORMS:
        assert form not in logged, form
    assert logged.count("[REDACTED]") >= 3


# -- issue 18, item 14: auth before the body; chunked bodies count against 4 MB --------------


def _chunks(total: int, size: int = 64 * 1024):
    sent = 0
    while sent < total:
        yield b" " * min(size, total - sent)
        sent += size


def test_a_chunked_body_without_credentials_is_not_read(client: Client) -> None:
    r = client.http.post(
        client.url + "/v1/segments",
        data=_chunks(64 * 1024),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 401
    entry = client.emulator.inspect.requests()[-1]
    assert entry["status"] == 401 and entry["body"] is None


def test_a_chunked_body_over_4_mb_is_refused(client: Client) -> None:
    from .conftest import APP_AUTH

    r = client.http.post(
        client.url + "/v1/segments",
        data=_chunks(5 * 1024 * 1024),
        headers={"Content-Type": "application/json", **APP_AUTH},
    )
    assert r.status_code == 413


def test_an_endless_chunked_body_is_cut_at_4_mb() -> None:
    import asyncio

    import pytest
    from starlette.requests import Request

    from cio_flows.emulator.app import MAX_BODY, _read_body
    from cio_flows.emulator.core import ApiError

    pulled = 0

    async def receive() -> dict:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": b"x" * 65536, "more_body": True}

    scope = {"type": "http", "method": "POST", "headers": [], "path": "/", "query_string": b""}
    with pytest.raises(ApiError) as refused:
        asyncio.run(_read_body(Request(scope, receive)))
    assert refused.value.status == 413
    assert pulled == MAX_BODY // 65536 + 1  # stopped at the first chunk past the limit
