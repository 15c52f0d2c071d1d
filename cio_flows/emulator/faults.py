"""Rate limiting (token buckets) and fault injection, one of each per API family.

Both run on the event-loop thread only, so they need no locks.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass

from .config import Faults, RateLimit


class TokenBucket:
    """Classic token bucket; `take()` answers how long to wait (0 means go ahead)."""

    def __init__(self, limit: RateLimit, clock=time.monotonic) -> None:
        self.rate = float(limit.rate)
        self.capacity = float(limit.capacity)
        self.tokens = self.capacity
        self.clock = clock
        self.stamp = clock()

    def take(self) -> float:
        t = self.clock()
        self.tokens = min(self.capacity, self.tokens + (t - self.stamp) * self.rate)
        self.stamp = t
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        if self.rate <= 0:
            return math.inf
        return (1.0 - self.tokens) / self.rate


def retry_after(wait: float) -> str:
    """Whole seconds, at least 1, as Customer.io sends it."""
    if math.isinf(wait):
        return "60"
    return str(max(1, math.ceil(wait)))


@dataclass
class Decision:
    latency: float = 0.0
    status: int | None = None  # an injected error status
    drop: bool = False


class FaultInjector:
    """Seeded, so a given request sequence always sees the same faults."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.rng = random.Random(faults.seed)

    def decide(self) -> Decision:
        f = self.faults
        decision = Decision(latency=f.latency)
        roll = self.rng.random()
        if roll < f.drop_rate:
            decision.drop = True
        elif roll < f.drop_rate + f.error_rate:
            decision.status = self.rng.choice(f.error_statuses or (500,))
        return decision
