"""An in-memory transport for tests, as httpx's MockTransport: no sockets, answers from a function.

    def handler(method, url, headers, body):  # body: the request's JSON (None when empty)
        return 200, {}, {"count": 0}

    transport = Transport(endpoints, credentials, session_factory=mock_sessions(handler))

The handler may raise a requests exception (requests.ConnectionError, requests.ReadTimeout) to
stand for a network fault; the Transport translates it as it would a real one.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

# (method, url, headers, JSON body) -> (status, headers, body: JSON value, str or bytes)
Handler = Callable[[str, str, Mapping[str, str], Any], tuple[int, Mapping[str, str], Any]]


@dataclass(frozen=True)
class MockCall:
    """A request the mock received."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: Any


class MockAdapter(BaseAdapter):
    """A requests adapter that answers every request by calling `handler`."""

    def __init__(self, handler: Handler) -> None:
        super().__init__()
        self.handler = handler
        self.calls: list[MockCall] = []
        self._lock = threading.Lock()

    def send(  # the options requests passes (timeouts, TLS, proxies) mean nothing here
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        headers = dict(request.headers)
        body = _decode(request.body)
        with self._lock:
            self.calls.append(MockCall(request.method or "", request.url or "", headers, body))
        status, answer_headers, answer = self.handler(
            request.method or "", request.url or "", headers, body
        )
        return _response(request, status, answer_headers, answer)

    def close(self) -> None:
        pass


class MockSession(requests.Session):
    """A session whose every URL goes to one adapter, whatever is mounted on it later."""

    def __init__(self, adapter: MockAdapter) -> None:
        super().__init__()
        self.mock = adapter

    def get_adapter(self, url: str) -> BaseAdapter:
        return self.mock


def mock_sessions(handler: Handler | MockAdapter) -> Callable[[], requests.Session]:
    """A session_factory for Transport: every family's session answers through `handler`."""
    adapter = handler if isinstance(handler, MockAdapter) else MockAdapter(handler)
    return lambda: MockSession(adapter)


def _decode(body: bytes | str | None) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body


def _response(
    request: requests.PreparedRequest, status: int, headers: Mapping[str, str], body: Any
) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.request = request
    response.url = request.url or ""
    response.headers = CaseInsensitiveDict(headers)
    if isinstance(body, bytes):
        response._content = body
    elif isinstance(body, str):
        response._content = body.encode("utf-8")
    elif body is None:
        response._content = b""
    else:
        response._content = json.dumps(body).encode("utf-8")
        response.headers.setdefault("Content-Type", "application/json")
    response.encoding = "utf-8"
    return response
