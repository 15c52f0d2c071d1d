"""HTTP for the three API families: hosts, timeouts, rate limits and retries.

Knows nothing of flows. Errors from requests/urllib3 are translated to TransportError here,
at one boundary, with an outcome saying whether the server may have acted on the request.
Sessions (auth, pools) are built in sessions.py, failures are put in words in
connection_errors.py, and each attempt is told to the exchange hook (exchange.py).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Container
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from ..errors import Outcome, TransportError
from ..printable import printable
from .bodies import AnswerTooLarge, AnswerTooSlow, read_body
from .config import Credentials, Endpoints
from .connection_errors import classify_failure, error_detail
from .exchange import encode_body, exchange_of
from .families import FAMILIES
from .ratelimit import RateLimiter
from .retry import parse_retry_after, status_is_retryable
from .sessions import family_session
from .settings import TransportSettings as TransportSettings  # re-exported: its old home
from .types import Request, Response


@dataclass
class _Tries:
    """How sending one request has gone so far."""

    attempt: int = 0
    throttled: int = 0  # attempts answered 429
    reached: bool = False  # whether some attempt may have reached the server
    last: str = ""  # why the previous attempt failed


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
        self._stopping = threading.Event()
        # Waits end early on interrupt(): Ctrl-C must not sit out a 20 s Retry-After.
        self._sleep = sleep or self._wait
        self._limiters = self.settings.rate_limits.build()
        session_factory = self.settings.session_factory or session_factory
        pool_size = self.settings.pool_size
        self._sessions = {
            family: family_session(family, credentials, pool_size, session_factory)
            for family in FAMILIES
        }
        self._stats_lock = threading.Lock()
        self.stats = {"requests": 0, "retries": 0, "throttled": 0}

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

    def _post(self, request: Request, started: float) -> requests.Response:
        """One attempt: the answer whole, read within the deadline and the size limit."""
        settings = self.settings
        session = self._sessions[request.family]
        prepared = session.prepare_request(
            requests.Request(
                request.method,
                self.url(request),
                params=request.params or None,
                data=None if request.body is None else encode_body(request.body),
                headers={"Content-Type": "application/json"} if request.body is not None else None,
            )
        )
        prepared.url = dot_segments_encoded(prepared.url or "")
        environment = session.merge_environment_settings(prepared.url, {}, True, None, None)
        raw = session.send(
            prepared,
            timeout=(settings.connect_timeout, min(settings.read_timeout, settings.timeout)),
            allow_redirects=False,  # a redirect is a failure: see _redirected
            **environment,  # stream=True: read_body reads the body, within its limits
        )
        read_body(raw, started + settings.timeout, settings.max_answer_bytes)
        return raw

    def send(self, request: Request, accept: Container[int] = ()) -> Response:
        """Send with rate limiting and retries; return a 2xx Response or raise TransportError.

        A status in `accept` (one a step expects, as a 404) is raised at once, never retried,
        with the answer's JSON as the error's `body`.
        """
        limiter = self._limiters.get(request.rate_bucket)
        tries = _Tries()
        while True:
            if limiter:
                limiter.acquire(self._wait)
            if self._stopping.is_set():
                raise _stopped(request, tries)
            if tries.attempt:
                self._count("retries")
            tries.attempt += 1
            self._count("requests")
            started = time.monotonic()
            try:
                raw = self._post(request, started)
            except requests.exceptions.RequestException as exc:
                self._retry_after_error(request, tries, started, exc)
                continue
            except (AnswerTooLarge, AnswerTooSlow) as exc:
                raise self._unread(request, tries, started, exc) from None
            self._exchanged(request, tries.attempt, started, raw=raw)
            if raw.status_code < 300:
                body = self._json_answer(request, tries, raw)
                return Response(raw.status_code, body, dict(raw.headers), tries.attempt)
            if raw.status_code < 400:
                raise _redirected(request, tries, raw)
            self._retry_after_refusal(request, accept, tries, limiter, raw)

    def _unread(
        self, request: Request, tries: _Tries, started: float, exc: Exception
    ) -> TransportError:
        """An answer given up on: too slow or too big. Not retried: such a server will not mend."""
        settings = self.settings
        if isinstance(exc, AnswerTooSlow):
            cause = f"the answer did not arrive whole within {settings.timeout:g} s (--timeout)"
        else:
            cause = f"the answer is larger than {settings.max_answer_bytes // (1024 * 1024)} MB"
        self._exchanged(request, tries.attempt, started, error=cause)
        return TransportError(
            f"{cause} after {tries.attempt} attempt(s)",
            outcome=_outcome(request, reached=True),
            attempts=tries.attempt,
        )

    def _json_answer(self, request: Request, tries: _Tries, raw: requests.Response) -> Any:
        """A success's JSON; an answer that is not JSON (a proxy's login page) is a failure."""
        if not raw.content.strip():
            return None
        try:
            return raw.json()
        except (ValueError, RecursionError):  # RecursionError: nested past the decoder's stack
            kind = raw.headers.get("Content-Type") or "no Content-Type"
            raise TransportError(
                f"HTTP {raw.status_code} answer is not JSON ({printable(kind[:60])}):"
                f" {_snippet(raw)} after {tries.attempt} attempt(s)",
                outcome=_outcome(request, reached=True),
                status=raw.status_code,
                attempts=tries.attempt,
            ) from None

    def _retry_after_error(
        self,
        request: Request,
        tries: _Tries,
        started: float,
        exc: requests.exceptions.RequestException,
    ) -> None:
        """After an attempt with no answer: wait for the next one, or raise TransportError."""
        failure = classify_failure(exc, self.url(request))
        self._exchanged(request, tries.attempt, started, error=failure.cause)
        tries.reached = tries.reached or failure.opened
        tries.last = failure.cause
        safe = request.repeatable or not failure.opened
        if failure.transient and safe and tries.attempt < self.settings.retry.max_attempts:
            self._sleep(self.settings.retry.backoff(tries.attempt))
            return
        raise TransportError(
            f"{failure.cause} after {tries.attempt} attempt(s)",
            outcome=_outcome(request, tries.reached),
            attempts=tries.attempt,
        ) from None

    def _retry_after_refusal(
        self,
        request: Request,
        accept: Container[int],
        tries: _Tries,
        limiter: RateLimiter | None,
        raw: requests.Response,
    ) -> None:
        """After an answer other than 2xx: wait for the next attempt, or raise TransportError."""
        status = raw.status_code
        if status in accept:  # the caller expects this refusal: not retried
            raise TransportError(
                f"HTTP {status}{error_detail(raw)} after {tries.attempt} attempt(s)",
                outcome=_outcome(request, tries.reached or status >= 500),
                status=status,
                attempts=tries.attempt,
                body=_decode(raw),
            )
        policy = self.settings.retry
        retry_after = parse_retry_after(raw.headers.get("Retry-After"))
        too_long = retry_after is not None and retry_after > policy.max_retry_after
        if status == 429:
            self._count("throttled")
            tries.throttled += 1
            # Too long to wait: this step fails, and the others of the family go on unpaused.
            if limiter and retry_after and not too_long:
                limiter.pause(retry_after)
        tries.reached = tries.reached or status >= 500  # a 4xx is the server saying no
        tries.last = f"HTTP {status}{error_detail(raw)}"
        if too_long:
            tries.last += (
                f" (Retry-After {retry_after:.0f} s: longer than the"
                f" {policy.max_retry_after:g} s a run waits)"
            )
        retryable = status_is_retryable(status, request.repeatable)
        failures = tries.attempt - tries.throttled  # attempts that failed for other reasons
        within_budget = failures < policy.max_attempts and tries.throttled <= policy.max_throttled
        if retryable and within_budget and not too_long:
            if not (limiter and status == 429 and retry_after):  # else the limiter waits
                self._sleep(policy.delay(tries.attempt, retry_after))
            return
        raise TransportError(
            f"{tries.last} after {tries.attempt} attempt(s)",
            outcome=_outcome(request, tries.reached),
            status=status,
            attempts=tries.attempt,
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
            hook(exchange_of(self.url(request), request, attempt, started, raw, error))


def _outcome(request: Request, reached: bool) -> Outcome:
    """UNKNOWN only for a request that may have reached the server and is unsafe to resend.

    Repeatable requests (reads, and writes that carry a messageId / event id the server
    deduplicates) are "failed": resending them on resume cannot act twice.
    """
    return Outcome.UNKNOWN if reached and not request.repeatable else Outcome.FAILED


def _stopped(request: Request, tries: _Tries) -> TransportError:
    if not tries.attempt:
        return TransportError("stopped before sending (interrupted)", attempts=0)
    return TransportError(
        f"{tries.last} after {tries.attempt} attempt(s); interrupted before retrying",
        outcome=_outcome(request, tries.reached),
        attempts=tries.attempt,
    )


def dot_segments_encoded(url: str) -> str:
    """`url` with its `.` and `..` path segments percent-encoded again.

    An id `..` is sent as `%2E%2E` (path_id), but requests decodes unreserved characters and
    urllib3 would then resolve `/customers/../attributes` to `/attributes`: a data row could
    retarget the request, and the run would not match the plan. A flow's own paths cannot hold
    dot segments (the request kind refuses them), so every one here is an encoded id.
    """
    parts = urlsplit(url)
    segments = parts.path.split("/")
    if not any(segment in (".", "..") for segment in segments):
        return url
    path = "/".join("%2E" * len(s) if s in (".", "..") else s for s in segments)
    return urlunsplit(parts._replace(path=path))


def _redirected(request: Request, tries: _Tries, raw: requests.Response) -> TransportError:
    """A 3xx is never followed: a 302 would turn a send into a GET elsewhere answering 200, a
    307 would post personal data to another host."""
    location = raw.headers.get("Location") or "no Location"
    return TransportError(
        f"HTTP {raw.status_code} redirect to {printable(location[:200])} (not followed: check"
        f" the API URL) after {tries.attempt} attempt(s)",
        outcome=_outcome(request, reached=True),
        status=raw.status_code,
        attempts=tries.attempt,
    )


def _snippet(raw: requests.Response) -> str:
    """The start of a body that is not JSON, on one line, escaped."""
    text = " ".join(raw.content[:200].decode("utf-8", "replace").split())
    return repr(printable(text[:80]))


def _decode(raw: requests.Response) -> Any:
    if not raw.content:
        return None
    try:
        return raw.json()
    except (ValueError, RecursionError):
        return None
