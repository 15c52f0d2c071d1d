"""One requests session per API family: its auth scheme, headers and connection pool.

Its HTTPS connections mark the errors of connect() (TCP and TLS handshake), so a failure is
known to have happened before any byte of the request left (connection_errors.py reads it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests.auth import HTTPBasicAuth
from urllib3.connection import HTTPSConnection
from urllib3.connectionpool import HTTPSConnectionPool

from .config import Credentials
from .connection_errors import IN_CONNECT
from .families import family_spec

USER_AGENT = "cio-flows/0.1"


class BearerAuth(requests.auth.AuthBase):
    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request


def auth_for(family: str, credentials: Credentials) -> requests.auth.AuthBase:
    """Each family's own scheme: Pipelines Basic KEY:, Track Basic SITE_ID:KEY, App Bearer."""
    auth = family_spec(family).auth
    if auth.scheme == "bearer":
        return BearerAuth(credentials.value(auth.user))
    password = credentials.value(auth.password) if auth.password else ""
    return HTTPBasicAuth(credentials.value(auth.user), password)


def auth_description(family: str) -> str:
    """What `plan` prints instead of the Authorization header: the scheme, never the key."""
    return family_spec(family).auth.describe()


def family_session(
    family: str,
    credentials: Credentials,
    pool_size: int,
    factory: Callable[[], requests.Session] = requests.Session,
) -> requests.Session:
    """A session for one family: its auth, pooled connections, no retries of its own."""
    session = factory()
    adapter = _Adapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.auth = auth_for(family, credentials)
    session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
    if family == "pipelines":
        # Without it Pipelines answers 200 even to a bad key or payload: failures must show.
        session.headers["X-Strict-Mode"] = "1"
    return session


class _MarkedHTTPSConnection(HTTPSConnection):
    """Marks errors of connect() (TCP and TLS handshake): no byte of the request has left yet.

    urllib3 reports a handshake timeout as a read timeout; this mark tells them apart.
    """

    def connect(self) -> None:
        try:
            super().connect()
        except Exception as exc:
            setattr(exc, IN_CONNECT, True)
            raise


class _MarkedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _MarkedHTTPSConnection


class _Adapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        classes = self.poolmanager.pool_classes_by_scheme
        self.poolmanager.pool_classes_by_scheme = {**classes, "https": _MarkedHTTPSPool}
