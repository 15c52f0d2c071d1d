"""When to try a request again, and how long to wait first."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    base_delay: float = 0.25  # seconds; doubles each attempt
    max_delay: float = 30.0
    max_retry_after: float = 120.0  # a longer Retry-After (e.g. a daily quota) is a failure
    max_throttled: int = 50  # 429s are the server pacing us, not failures: a separate budget

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Capped exponential backoff with full jitter, for attempt 1, 2, ..."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return (rng or random).uniform(ceiling / 2, ceiling)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Retry-After wins when the server sends it; otherwise backoff."""
        if retry_after is not None:
            return min(retry_after, self.max_retry_after)
        return self.backoff(attempt)


# Longer is the same as forever to a run; the cap keeps `inf`, `1e400` and year 9999 finite.
LONGEST_RETRY_AFTER = 365 * 24 * 3600.0


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds or an HTTP date, within 0..LONGEST_RETRY_AFTER; None if absent or
    unreadable (NaN too)."""
    if not value:
        return None
    value = value.strip()
    seconds: float | None
    try:
        seconds = float(value)
    except ValueError:
        seconds = _seconds_until(value)
    if seconds is None or math.isnan(seconds):
        return None
    return min(max(0.0, seconds), LONGEST_RETRY_AFTER)


def _seconds_until(date: str) -> float | None:
    try:
        when = parsedate_to_datetime(date)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return (when - datetime.now(UTC)).total_seconds()
    except (TypeError, ValueError, OverflowError, IndexError):
        return None


def status_is_retryable(status: int, repeatable: bool) -> bool:
    """429 means the server refused without acting: always safe. 5xx only if repeating is safe."""
    if status == 429:
        return True
    return repeatable and status in RETRYABLE_STATUSES
