"""Each family checks its own scheme and key; wrong or missing auth answers as Customer.io does."""

from __future__ import annotations

import pytest
import requests

from .conftest import APP_AUTH, PIPELINES_AUTH, TRACK_AUTH, C, basic

WRONG = {
    "none": {},
    "bad key": {"Authorization": basic(C.site_id, "nope")},
    "bearer app key": APP_AUTH,
    "pipelines key": PIPELINES_AUTH,
    "garbage": {"Authorization": "Basic !!!not-base64"},
}


@pytest.mark.parametrize("headers", WRONG.values(), ids=WRONG.keys())
def test_track_rejects_with_401_and_no_body(client, emu, headers):
    r = requests.put(f"{client.url}/api/v1/customers/x", json={"a": 1}, headers=headers)
    assert r.status_code == 401
    assert r.content == b""
    assert emu.inspect.person("x") is None


def test_track_accepts_site_id_and_key(client):
    r = requests.put(f"{client.url}/api/v1/customers/x", json={"a": 1}, headers=TRACK_AUTH)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json; charset=utf-8"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer nope"},
        TRACK_AUTH,
        PIPELINES_AUTH,
        {"Authorization": C.app_key},
    ],
    ids=["none", "wrong key", "track basic", "pipelines basic", "no scheme"],
)
def test_app_rejects_with_401_errors_body(client, headers):
    r = requests.get(f"{client.url}/v1/segments", headers=headers)
    assert r.status_code == 401
    (error,) = r.json()["errors"]
    assert error["status"] == "401" and error["detail"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": basic("wrong", "")}, TRACK_AUTH, APP_AUTH],
    ids=["none", "wrong key", "track pair", "app bearer"],
)
def test_pipelines_permissive_answers_200_but_stores_nothing(client, emu, headers):
    r = requests.post(f"{client.url}/v1/identify", json={"userId": "p1"}, headers=headers)
    assert (r.status_code, r.json()) == (200, {})
    assert emu.inspect.person("p1") is None
    assert emu.inspect.requests()[-1]["note"].startswith("ignored")


def test_pipelines_strict_mode_answers_401(client, emu):
    r = requests.post(
        f"{client.url}/v1/identify",
        json={"userId": "p1"},
        headers={"Authorization": basic("wrong", ""), "X-Strict-Mode": "1"},
    )
    assert r.status_code == 401
    assert r.json()["meta"]["errors"]
    assert emu.inspect.person("p1") is None


def test_pipelines_accepts_basic_key_with_empty_password_and_bearer(client, emu):
    for i, headers in enumerate([PIPELINES_AUTH, {"Authorization": f"Bearer {C.pipelines_key}"}]):
        r = requests.post(f"{client.url}/v1/identify", json={"userId": f"p{i}"}, headers=headers)
        assert r.status_code == 200
    assert emu.inspect.person("p0") and emu.inspect.person("p1")


def test_pipelines_key_with_a_password_is_wrong(client, emu):
    headers = {"Authorization": basic(C.pipelines_key, "x"), "X-Strict-Mode": "1"}
    r = requests.post(f"{client.url}/v1/identify", json={"userId": "p"}, headers=headers)
    assert r.status_code == 401


def test_shared_v1_prefix_is_split_by_path(client):
    # App paths refuse the Pipelines key; Pipelines paths ignore the App key.
    assert client.app("GET", "/v1/segments", headers=PIPELINES_AUTH).status_code == 401
    assert client.pipelines("/identify", {"userId": "a"}, headers=APP_AUTH).json() == {}
