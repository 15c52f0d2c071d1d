"""Client-side rate limits: one pacing bucket per API family, shared by every worker thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .families import default_rates

# Requests per second per bucket, as each API family declares them (see families.py).
DEFAULT_RATES: Mapping[str, float] = default_rates()


class RateLimiter:
    """Evenly spaced slots (GCRA): at most `rate` per second with a burst of `burst`.

    Spacing rather than a bursty bucket keeps every window under the server's limit, while
    a full pool of workers still uses the limit completely.
    """

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.interval = 1.0 / rate
        self.burst = max(1, burst)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_free = 0.0  # theoretical arrival time of the next request

    def acquire(self) -> float:
        """Block until a slot is free; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            slot = max(self._next_free, now)
            wait = max(0.0, slot - self.interval * (self.burst - 1) - now)
            self._next_free = slot + self.interval
        if wait > 0:
            self._sleep(wait)
        return wait

    def pause(self, seconds: float) -> None:
        """Hold every worker of this family back, e.g. after a 429 with Retry-After."""
        with self._lock:
            self._next_free = max(self._next_free, self._clock() + seconds)


@dataclass(frozen=True)
class RateLimits:
    rates: Mapping[str, float]

    @classmethod
    def defaults(cls, overrides: Mapping[str, float] | None = None) -> RateLimits:
        return cls({**DEFAULT_RATES, **(overrides or {})})

    def build(self) -> dict[str, RateLimiter]:
        return {bucket: RateLimiter(rate) for bucket, rate in self.rates.items() if rate > 0}
