"""How a Transport sends: timeouts, pool, retries, rate limits. Its own module so that what
only describes a run (run/prepare.py's RunOptions) does not import requests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .exchange import ExchangeHook
from .ratelimit import RateLimits
from .retry import RetryPolicy

if TYPE_CHECKING:
    import requests


@dataclass(frozen=True)
class TransportSettings:
    connect_timeout: float = 5.0
    read_timeout: float = 30.0  # for any one read of the socket
    timeout: float = 60.0  # for a whole answer, from sending to its last byte (--timeout)
    max_answer_bytes: int = 16 * 1024 * 1024  # decoded; a bigger answer fails the request
    pool_size: int = 32
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # RateLimits.shared(): several transports (concurrent runs) pace through one set of limiters.
    rate_limits: RateLimits = field(default_factory=RateLimits.defaults)
    on_exchange: ExchangeHook | None = field(default=None, compare=False)  # after each attempt
    # Sessions from here instead (a replay answers from a cassette: wire/mock.py sessions).
    session_factory: Callable[[], requests.Session] | None = field(default=None, compare=False)
