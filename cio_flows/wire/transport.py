"""HTTP for the three API families: auth, hosts, pools, timeouts, rate limits and retries.

Knows nothing of flows. Errors from requests/urllib3 are translated to TransportError here,
at one boundary, with an outcome saying whether the server may have acted on the request.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.auth import HTTPBasicAuth
from urllib3.connection import HTTPSConnection
from urllib3.connectionpool import HTTPSConnectionPool

from ..errors import TransportError
from .config import Credentials, Endpoints
from .families import FAMILIES, family_spec
from .ratelimit import RateLimits
from .retry import RetryPolicy, parse_retry_after, status_is_retryable
from .types import Request, Response

USER_AGENT = "cio-flows/0.1"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_NEVER_SENT_URL_ERRORS = (
    requests.exceptions.InvalidURL,
    requests.exceptions.InvalidSchema,
    requests.exceptions.MissingSchema,
)
# OpenSSL's reasons when the other end answers a TLS hello in plain HTTP.
_PLAIN_HTTP_SIGNS = frozenset({"WRONG_VERSION_NUMBER", "HTTP_REQUEST", "RECORD_LAYER_FAILURE"})
_IN_CONNECT = "cio_flows_in_connect"  # set on errors raised while a connection was opening


@dataclass(frozen=True)
class Exchange:
    """One attempt of a request and its answer (`-v`, `--trace`). Never holds the Authorization
    header; the bodies can still hold personal data and echoed keys: redact before output."""

    family: str
    method: str
    url: str  # with its query string
    request_headers: dict[str, str]
    request_body: str | None  # the JSON text sent
    status: int | None  # None: no answer, `error` says why
    response_headers: dict[str, str]
    response_body: str | None
    elapsed: float  # seconds, this attempt alone
    attempt: int
    error: str | None = None
    label: str | None = None  # who sent it, e.g. the flow file in a suite


ExchangeHook = Callable[[Exchange], None]


@dataclass(frozen=True)
class TransportSettings:
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    pool_size: int = 32
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # RateLimits.shared(): several transports (concurrent runs) pace through one set of limiters.
    rate_limits: RateLimits = field(default_factory=RateLimits.defaults)
    on_exchange: ExchangeHook | None = field(default=None, compare=False)  # after each attempt
    # Sessions from here instead (a replay answers from a cassette: wire/mock.py sessions).
    session_factory: Callable[[], requests.Session] | None = field(default=None, compare=False)


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


class _MarkedHTTPSConnection(HTTPSConnection):
    """Marks errors of connect() (TCP and TLS handshake): no byte of the request has left yet.

    urllib3 reports a handshake timeout as a read timeout; this mark tells them apart.
    """

    def connect(self) -> None:
        try:
            super().connect()
        except Exception as exc:
            setattr(exc, _IN_CONNECT, True)
            raise


class _MarkedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _MarkedHTTPSConnection


class _Adapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        classes = self.poolmanager.pool_classes_by_scheme
        self.poolmanager.pool_classes_by_scheme = {**classes, "https": _MarkedHTTPSPool}


class Transport:
    """Sends Requests. Thread-safe: one pooled session per family, shared rate limiters."""

    def __init__(
        self,
        endpoints: Endpoints,
        credentials: Credentials,
        settings: TransportSettings | None = None,
        session_factory: Callable[[], requests.Session] = requests.Session,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.endpoints = endpoints
        self.settings = settings or TransportSettings()
        self._credentials = credentials
        self._stopping = threading.Event()
        # Waits end early on interrupt(): Ctrl-C must not sit out a 20 s Retry-After.
        self._sleep = sleep or self._wait
        self._limiters = self.settings.rate_limits.build()
        session_factory = self.settings.session_factory or session_factory
        self._sessions = {family: self._session(family, session_factory) for family in FAMILIES}
        self._stats_lock = threading.Lock()
        self.stats = {"requests": 0, "retries": 0, "throttled": 0}

    def _session(self, family: str, factory: Callable[[], requests.Session]) -> requests.Session:
        session = factory()
        adapter = _Adapter(pool_connections=1, pool_maxsize=self.settings.pool_size, max_retries=0)
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

    def interrupt(self) -> None:
        """Stop retrying (Ctrl-C): a backoff in progress ends now and nothing more is sent."""
        self._stopping.set()

    def _wait(self, seconds: float) -> None:
        self._stopping.wait(seconds)

    def _post(self, request: Request) -> requests.Response:
        return self._sessions[request.family].request(
            request.method,
            self.url(request),
            params=request.params or None,
            data=None if request.body is None else _encode(request.body),
            headers={"Content-Type": "application/json"} if request.body is not None else None,
            timeout=(self.settings.connect_timeout, self.settings.read_timeout),
        )

    def send(self, request: Request, accept: Container[int] = ()) -> Response:
        """Send with rate limiting and retries; return a 2xx Response or raise TransportError.

        A status in `accept` (one a step expects, as a 404) is raised at once, never retried,
        with the answer's JSON as the error's `body`.
        """
        policy = self.settings.retry
        limiter = self._limiters.get(request.rate_bucket)
        attempt = throttled = 0
        reached = False  # whether some attempt may have reached the server
        last = ""  # why the previous attempt failed
        while True:
            if limiter:
                limiter.acquire(self._wait)
            if self._stopping.is_set():
                raise _stopped(request, attempt, reached, last)
            if attempt:
                self._count("retries")
            attempt += 1
            self._count("requests")
            started = time.monotonic()
            try:
                raw = self._post(request)
            except requests.exceptions.RequestException as exc:
                failure = _failure(exc, self.url(request))
                self._exchanged(request, attempt, started, error=failure.cause)
                reached = reached or failure.opened
                last = failure.cause
                safe = request.repeatable or not failure.opened
                if failure.transient and safe and attempt < policy.max_attempts:
                    self._sleep(policy.backoff(attempt))
                    continue
                raise TransportError(
                    f"{failure.cause} after {attempt} attempt(s)",
                    outcome=_outcome(request, reached),
                    attempts=attempt,
                ) from None
            self._exchanged(request, attempt, started, raw=raw)
            if raw.status_code < 300:
                return Response(raw.status_code, _decode(raw), dict(raw.headers), attempt)
            if raw.status_code in accept:  # the caller expects this refusal: not retried
                raise TransportError(
                    f"HTTP {raw.status_code}{_error_detail(raw)} after {attempt} attempt(s)",
                    outcome=_outcome(request, reached or raw.status_code >= 500),
                    status=raw.status_code,
                    attempts=attempt,
                    body=_decode(raw),
                )
            retry_after = parse_retry_after(raw.headers.get("Retry-After"))
            if raw.status_code == 429:
                self._count("throttled")
                throttled += 1
                if limiter and retry_after:
                    limiter.pause(retry_after)
            reached = reached or raw.status_code >= 500  # a 4xx is the server saying no
            last = f"HTTP {raw.status_code}{_error_detail(raw)}"
            retryable = status_is_retryable(raw.status_code, request.repeatable)
            too_long = retry_after is not None and retry_after > policy.max_retry_after
            failures = attempt - throttled  # attempts that failed for other reasons than 429
            within_budget = failures < policy.max_attempts and throttled <= policy.max_throttled
            if retryable and within_budget and not too_long:
                if not (limiter and raw.status_code == 429 and retry_after):  # else limiter waits
                    self._sleep(policy.delay(attempt, retry_after))
                continue
            raise TransportError(
                f"{last} after {attempt} attempt(s)",
                outcome=_outcome(request, reached),
                status=raw.status_code,
                attempts=attempt,
                retry_after=retry_after,
                body=_decode(raw),
            )

    def _exchanged(
        self,
        request: Request,
        attempt: int,
        started: float,
        *,
        raw: requests.Response | None = None,
        error: str | None = None,
    ) -> None:
        """Tell on_exchange about one attempt; a hook that raises cannot stop the request."""
        hook = self.settings.on_exchange
        if hook is None:
            return
        with contextlib.suppress(Exception):  # the hook's own business (a trace file broke)
            hook(_exchange(self.url(request), request, attempt, started, raw, error))


def _exchange(
    url: str,
    request: Request,
    attempt: int,
    started: float,
    raw: requests.Response | None,
    error: str | None,
) -> Exchange:
    elapsed = time.monotonic() - started
    body = None if request.body is None else _encode(request.body).decode("utf-8")
    if raw is None:
        query = f"?{urlencode(request.params)}" if request.params else ""
        headers = {"Content-Type": "application/json"} if body is not None else {}
        return Exchange(
            request.family,
            request.method,
            url + query,
            headers,
            body,
            None,
            {},
            None,
            elapsed,
            attempt,
            error,
        )
    sent = raw.request
    headers = {k: v for k, v in sent.headers.items() if k.lower() != "authorization"}
    return Exchange(
        request.family,
        request.method,
        sent.url or url,
        headers,
        body,
        raw.status_code,
        dict(raw.headers),
        raw.text if raw.content else None,
        elapsed,
        attempt,
    )


def _outcome(request: Request, reached: bool) -> str:
    """UNKNOWN only for a request that may have reached the server and is unsafe to resend.

    Repeatable requests (reads, and writes that carry a messageId / event id the server
    deduplicates) are "failed": resending them on resume cannot act twice.
    """
    return "unknown" if reached and not request.repeatable else "failed"


def _stopped(request: Request, attempts: int, reached: bool, last: str) -> TransportError:
    if not attempts:
        return TransportError("stopped before sending (interrupted)", attempts=0)
    return TransportError(
        f"{last} after {attempts} attempt(s); interrupted before retrying",
        outcome=_outcome(request, reached),
        attempts=attempts,
    )


def _encode(body: Any) -> bytes:
    encoded = getattr(body, "encoded", None)  # a batch's body, encoded item by item already
    if encoded is not None:
        return encoded
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _decode(raw: requests.Response) -> Any:
    if not raw.content:
        return None
    try:
        return raw.json()
    except ValueError:
        return None


@dataclass(frozen=True)
class _Failure:
    cause: str  # names the host and what went wrong
    opened: bool  # a connection was open, so the server may have the request
    transient: bool = True  # worth another attempt


def _failure(exc: requests.exceptions.RequestException, url: str) -> _Failure:
    """Why a request failed, and whether its connection ever opened (then it may have arrived)."""
    parts = urlsplit(url)
    host = f"{parts.hostname}:{parts.port or _DEFAULT_PORTS.get(parts.scheme, '')}"
    chain = list(_exception_chain(exc))
    if isinstance(exc, _NEVER_SENT_URL_ERRORS):
        where = f"{parts.scheme}://{parts.hostname}" if parts.hostname else "no host"
        return _Failure(f"invalid URL ({where}; expected http(s)://HOST)", False, transient=False)
    dns = _first(chain, socket.gaierror)
    if dns is not None:
        # "not known" is an answer, not an outage: asking again cannot change it.
        permanent = dns.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", None))
        return _Failure(f"DNS lookup failed for {host} ({dns.strerror})", False, not permanent)
    if _first(chain, ConnectionRefusedError) is not None:
        return _Failure(f"connection refused by {host}", opened=False)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return _Failure(f"timed out connecting to {host}", opened=False)
    if any(getattr(e, _IN_CONNECT, False) for e in chain):
        return _Failure(_connect_cause(exc, chain, host), opened=False)
    if isinstance(exc, requests.exceptions.ProxyError):
        return _Failure(f"could not connect to {host} through the proxy", opened=False)
    if isinstance(exc, requests.exceptions.Timeout):
        return _Failure(f"timed out reading the answer from {host}", opened=True)
    if isinstance(exc, requests.exceptions.SSLError):
        return _Failure(f"TLS error with {host} after the request was sent", opened=True)
    if isinstance(
        exc, (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)
    ):
        return _Failure(f"connection to {host} closed mid-answer", opened=True)
    return _Failure(f"{type(exc).__name__} talking to {host}", opened=True)


def _connect_cause(exc: Exception, chain: list[BaseException], host: str) -> str:
    """The cause of a failure while opening a connection (TCP connect and TLS handshake)."""
    tls = _first(chain, ssl.SSLError)
    if tls is None and isinstance(exc, requests.exceptions.Timeout):
        return f"TLS handshake with {host} timed out (is it a plain-http port?)"
    if tls is None:
        reason = next((e.strerror for e in chain if isinstance(e, OSError) and e.strerror), exc)
        return f"could not connect to {host} ({reason})"
    detail = (
        getattr(tls, "verify_message", None) or str(tls.reason or tls).replace("_", " ").lower()
    )
    hint = " (is it a plain-http port?)" if tls.reason in _PLAIN_HTTP_SIGNS else ""
    return f"TLS handshake with {host} failed: {detail}{hint}"


def _exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """exc and every exception it wraps: requests and urllib3 nest the cause several ways."""
    pending: list[BaseException] = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        linked.extend(current.args[:1])
        pending.extend(e for e in linked if isinstance(e, BaseException))


def _first(chain: list[BaseException], kind: type) -> Any:
    return next((e for e in chain if isinstance(e, kind)), None)


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
