"""One emulator per test module (starting one costs ~0.1 s); state reset before every test."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
import requests

from cio_flows.emulator import DEMO_CREDENTIALS, Emulator

C = DEMO_CREDENTIALS


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


TRACK_AUTH = {"Authorization": basic(C.site_id, C.track_key)}
PIPELINES_AUTH = {"Authorization": basic(C.pipelines_key, "")}
APP_AUTH = {"Authorization": f"Bearer {C.app_key}"}


class Client:
    """A keep-alive session with one helper per API family."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.url = emulator.url
        self.http = requests.Session()

    def track(self, method: str, path: str, body=None, **kw) -> requests.Response:
        headers = {**TRACK_AUTH, **kw.pop("headers", {})}
        return self.http.request(method, self.url + path, json=body, headers=headers, **kw)

    def pipelines(self, path: str, body=None, **kw) -> requests.Response:
        headers = {**PIPELINES_AUTH, **kw.pop("headers", {})}
        return self.http.post(self.url + "/v1" + path, json=body, headers=headers, **kw)

    def app(self, method: str, path: str, body=None, **kw) -> requests.Response:
        headers = {**APP_AUTH, **kw.pop("headers", {})}
        return self.http.request(method, self.url + path, json=body, headers=headers, **kw)

    def search(self, flt, **params) -> requests.Response:
        return self.app("POST", "/v1/customers", {"filter": flt}, params=params)

    def attributes(self, ident: str, id_type: str = "id") -> requests.Response:
        return self.app("GET", f"/v1/customers/{ident}/attributes", params={"id_type": id_type})


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


@pytest.fixture
def emu(emulator: Emulator) -> Emulator:
    """The module's emulator, back at the demo workspace's initial state."""
    emulator.reset()
    return emulator


@pytest.fixture
def client(emu: Emulator) -> Iterator[Client]:
    c = Client(emu)
    yield c
    c.http.close()


def eq(field: str, value) -> dict:
    return {"attribute": {"field": field, "operator": "eq", "value": value}}
