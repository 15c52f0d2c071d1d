"""HTTP for the three API families: auth, hosts, pools, timeouts, rate limits and retries.

Knows nothing of flows. Errors from requests/urllib3 are translated to TransportError here,
at one boundary, with an outcome saying whether the server may have acted on the request.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests.auth import HTTPBasicAuth

from .config import Credentials, Endpoints
from .errors import TransportError
from .operations import FAMILIES, Request, Response
from .ratelimit import RateLimiter, RateLimits
from .retry import RetryPolicy, parse_retry_after, status_is_retryable

USER_AGENT = "cio-flows/0.1"


@dataclass(frozen=True)
class TransportSettings:
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    pool_size: int = 32
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    rate_limits: RateLimits = field(default_factory=RateLimits.defaults)


class BearerAuth(requests.auth.AuthBase):
    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request


def auth_for(family: str, credentials: Credentials) -> requests.auth.AuthBase:
    """Each family's own scheme: Pipelines Basic KEY:, Track Basic SITE_ID:KEY, App Bearer."""
    if family == "pipelines":
        return HTTPBasicAuth(credentials.pipelines_key, "")
    if family == "track":
        return HTTPBasicAuth(credentials.site_id, credentials.track_token)
    return BearerAuth(credentials.app_token)


def auth_description(family: str) -> str:
    """What `plan` prints instead of the Authorization header: the scheme, never the key."""
    return {
        "pipelines": "HTTP Basic, user CUSTOMERIO_PIPELINES_KEY, empty password",
        "track": "HTTP Basic, user CUSTOMERIO_SITE_ID, password CUSTOMERIO_TRACK_TOKEN",
        "app": "Bearer CUSTOMERIO_APP_TOKEN",
    }[family]


class Transport:
    """Sends Requests. Thread-safe: one pooled session per family, shared rate limiters."""

    def __init__(
        self,
        endpoints: Endpoints,
        credentials: Credentials,
        settings: TransportSettings | None = None,
        session_factory: Callable[[], requests.Session] = requests.Session,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.endpoints = endpoints
        self.settings = settings or TransportSettings()
        self._credentials = credentials
        self._sleep = sleep
        self._limiters: dict[str, RateLimiter] = self.settings.rate_limits.build()
        self._sessions = {family: self._session(family, session_factory) for family in FAMILIES}
        self._stats_lock = threading.Lock()
        self.stats = {"requests": 0, "retries": 0, "throttled": 0}

    def _session(self, family: str, factory: Callable[[], requests.Session]) -> requests.Session:
        session = factory()
        adapter = HTTPAdapter(
            pool_connections=1, pool_maxsize=self.settings.pool_size, max_retries=0
        )
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.auth = auth_for(family, self._credentials)
        session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        if family == "pipelines":
            # Without it Pipelines answers 200 even to a bad key or payload: failures must show.
            session.headers["X-Strict-Mode"] = "1"
        return session

    def url(self, request: Request) -> str:
        return self.endpoints.root(request.family) + request.path

    def close(self) -> None:
        for session in self._sessions.values():
            session.close()

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _count(self, key: str) -> None:
        with self._stats_lock:
            self.stats[key] += 1

    def send(self, request: Request) -> Response:
        """Send with rate limiting and retries; return a 2xx Response or raise TransportError."""
        policy = self.settings.retry
        limiter = self._limiters.get(request.rate_bucket)
        attempt = 0
        throttled = 0
        while True:
            attempt += 1
            if limiter:
                limiter.acquire()
            self._count("requests")
            try:
                raw = self._sessions[request.family].request(
                    request.method,
                    self.url(request),
                    params=request.params or None,
                    data=None if request.body is None else _encode(request.body),
                    headers={"Content-Type": "application/json"}
                    if request.body is not None
                    else None,
                    timeout=(self.settings.connect_timeout, self.settings.read_timeout),
                )
            except requests.exceptions.RequestException as exc:
                reached = _may_have_reached_server(exc)
                if (request.repeatable or not reached) and attempt < policy.max_attempts:
                    self._count("retries")
                    self._sleep(policy.backoff(attempt))
                    continue
                outcome = "unknown" if reached else "failed"
                raise TransportError(
                    f"{_describe_exception(exc)} after {attempt} attempt(s)",
                    outcome=outcome,
                    attempts=attempt,
                ) from None
            if raw.status_code < 300:
                return Response(raw.status_code, _decode(raw), dict(raw.headers), attempt)
            retry_after = parse_retry_after(raw.headers.get("Retry-After"))
            if raw.status_code == 429:
                self._count("throttled")
                if limiter and retry_after:
                    limiter.pause(retry_after)
            retryable = status_is_retryable(raw.status_code, request.repeatable)
            too_long = retry_after is not None and retry_after > policy.max_retry_after
            if raw.status_code == 429:
                throttled += 1
            failures = attempt - throttled  # attempts that failed for other reasons than 429
            within_budget = failures < policy.max_attempts and throttled <= policy.max_throttled
            if retryable and within_budget and not too_long:
                self._count("retries")
                if not (limiter and raw.status_code == 429 and retry_after):
                    self._sleep(policy.delay(attempt, retry_after))
                continue
            # A 5xx on a send: the server had the body and may have acted on it.
            outcome = "unknown" if raw.status_code >= 500 and not request.repeatable else "failed"
            raise TransportError(
                f"HTTP {raw.status_code}{_error_detail(raw)} after {attempt} attempt(s)",
                outcome=outcome,
                status=raw.status_code,
                attempts=attempt,
                retry_after=retry_after,
            )


def _encode(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _decode(raw: requests.Response) -> Any:
    if not raw.content:
        return None
    try:
        return raw.json()
    except ValueError:
        return None


def _may_have_reached_server(exc: requests.exceptions.RequestException) -> bool:
    """False only when the request provably never left: refused or timed out while connecting."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return False
    if isinstance(exc, requests.exceptions.ConnectionError):
        text = repr(exc)
        return not any(
            marker in text
            for marker in ("NewConnectionError", "Connection refused", "NameResolutionError")
        )
    return True


def _describe_exception(exc: requests.exceptions.RequestException) -> str:
    if isinstance(exc, requests.exceptions.Timeout):
        return "timed out"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return "connection failed"
    return type(exc).__name__


def _error_detail(raw: requests.Response) -> str:
    """Customer.io's error text, from any of its envelopes; never the request payload."""
    try:
        body = raw.json()
    except ValueError:
        return ""
    messages: list[str] = []
    if isinstance(body, dict):
        meta = body.get("meta") or {}
        if isinstance(meta, dict):
            if isinstance(meta.get("error"), str):
                messages.append(meta["error"])
            messages.extend(str(m) for m in meta.get("errors") or [])
        for error in body.get("errors") or []:
            if isinstance(error, dict):
                messages.append(str(error.get("detail") or error.get("message") or error))
    text = "; ".join(messages)[:300]
    return f": {text}" if text else ""
