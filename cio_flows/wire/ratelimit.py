"""Client-side rate limits: one pacing bucket per API family, shared by every worker thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

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

    def acquire(self, sleep: Callable[[float], None] | None = None) -> float:
        """Block until a slot is free; returns the seconds waited.

        `sleep` waits instead of the limiter's own: a limiter shared by several transports
        lets each wait in a way its own interrupt() can end.
        """
        with self._lock:
            now = self._clock()
            slot = max(self._next_free, now)
            wait = max(0.0, slot - self.interval * (self.burst - 1) - now)
            self._next_free = slot + self.interval
        if wait > 0:
            (sleep or self._sleep)(wait)
        return wait

    def pause(self, seconds: float) -> None:
        """Hold every worker of this family back, e.g. after a 429 with Retry-After."""
        with self._lock:
            self._next_free = max(self._next_free, self._clock() + seconds)


@dataclass(frozen=True)
class RateLimits:
    """Requests per second per bucket. Each Transport builds its own limiters from these, unless
    they are `shared()`: then every transport given them paces through the same limiters."""

    rates: Mapping[str, float]
    limiters: Mapping[str, RateLimiter] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def defaults(cls, overrides: Mapping[str, float] | None = None) -> RateLimits:
        return cls({**DEFAULT_RATES, **(overrides or {})})

    def build(self) -> dict[str, RateLimiter]:
        """The limiters a transport uses: the shared ones, or a new set."""
        if self.limiters is not None:
            return dict(self.limiters)
        return {bucket: RateLimiter(rate) for bucket, rate in self.rates.items() if rate > 0}

    def shared(self) -> RateLimits:
        """These rates with one set of limiters, so concurrent runs against one workspace
        (`cio-flows test --jobs N`) stay under its limits together, not N times over."""
        if self.limiters is not None:
            return self
        return replace(self, limiters=self.build())
