"""Credentials, rate-limit and fault settings for the emulator.

Plain frozen dataclasses so the CLI, tests and the workspace file all build the same objects.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

FAMILIES = ("track", "pipelines", "app")
# Rate-limit buckets: one per family, plus endpoints with a limit of their own.
TRIGGERS = "triggers"  # API-triggered broadcasts: 1 request per 10 s
TRANSACTIONAL = "transactional"  # /v1/send/*: 100/s, in place of the App API's 10/s
BUCKETS = (*FAMILIES, TRIGGERS, TRANSACTIONAL)
# Buckets that replace their family's when set (a send is not also an App API request).
INSTEAD_OF_FAMILY = frozenset({TRANSACTIONAL})

# Bounds a setting must stay within: past them a sleep overflows or nothing is ever answered.
MAX_RATE = 1e9
MAX_LATENCY = 3600.0


def _check_number(
    what: str, value: float, low: float, high: float, *, low_open: bool = False
) -> None:
    """ValueError unless `value` is a finite number within [low, high] ((low, high] if open)."""
    ok = (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (low < value if low_open else low <= value)
        and value <= high
    )
    if not ok:
        bound = f"over {low:g}" if low_open else f"from {low:g}"
        raise ValueError(f"{what}: expected a number {bound} to {high:g}, found {value!r}")


_ENV_NAMES = {
    "site_id": "CUSTOMERIO_SITE_ID",
    "track_key": "CUSTOMERIO_TRACK_TOKEN",
    "pipelines_key": "CUSTOMERIO_PIPELINES_KEY",
    "app_key": "CUSTOMERIO_APP_TOKEN",
}


@dataclass(frozen=True)
class Credentials:
    """The keys the emulator accepts, one set per workspace."""

    site_id: str
    track_key: str
    pipelines_key: str
    app_key: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Credentials:
        """Read the CUSTOMERIO_* variables, each falling back to the demo value."""
        values = {
            name: environ.get(var) or getattr(DEMO_CREDENTIALS, name)
            for name, var in _ENV_NAMES.items()
        }
        return cls(**values)

    def describe(self, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
        """Printable view: demo values shown, anything taken from the environment hidden."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            demo = getattr(DEMO_CREDENTIALS, f.name)
            if value == demo:
                out[f.name] = value
            elif environ.get(_ENV_NAMES[f.name]) == value:
                out[f.name] = f"(from {_ENV_NAMES[f.name]})"
            else:
                out[f.name] = "(custom, hidden)"
        return out

    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in logs (the site id is not secret)."""
        return tuple(v for v in (self.track_key, self.pipelines_key, self.app_key) if v)


DEMO_CREDENTIALS = Credentials(
    "emulator-site", "emulator-track-key", "emulator-pipelines-key", "emulator-app-key"
)


@dataclass(frozen=True)
class RateLimit:
    """Token bucket: `rate` requests per second, bursts up to `burst` (defaults to rate)."""

    rate: float
    burst: float | None = None

    def __post_init__(self) -> None:
        _check_number("rate limit (requests per second)", self.rate, 0, MAX_RATE, low_open=True)
        if self.burst is not None:
            _check_number("burst", self.burst, 0, MAX_RATE, low_open=True)

    @property
    def capacity(self) -> float:
        return self.burst if self.burst is not None else max(self.rate, 1.0)


@dataclass(frozen=True)
class Faults:
    """Misbehaviour injected before a request is handled.

    latency: seconds added to every answer (asyncio.sleep, so other requests keep flowing).
    error_rate: share of requests answered 500/503 (picked from `error_statuses`) without handling.
    drop_rate: share of requests whose connection is closed without any answer.
    seed: random seed so a run with faults is reproducible.
    """

    latency: float = 0.0
    error_rate: float = 0.0
    error_statuses: tuple[int, ...] = (500, 503)
    drop_rate: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        _check_number("latency (seconds)", self.latency, 0, MAX_LATENCY)
        _check_number("error rate (a share)", self.error_rate, 0, 1)
        _check_number("drop rate (a share)", self.drop_rate, 0, 1)

    @property
    def active(self) -> bool:
        return bool(self.latency or self.error_rate or self.drop_rate)


# Customer.io's documented limits, available as limits="customerio": Track 100/s, Pipelines
# 3,000 calls per 3 s, transactional sends 100/s, broadcast triggers 1 per 10 s, the rest of
# the App API 10/s.
CUSTOMERIO_LIMITS = {
    "track": RateLimit(100),
    "pipelines": RateLimit(1000, 3000),
    "app": RateLimit(10),
    TRIGGERS: RateLimit(0.1, 1),
    TRANSACTIONAL: RateLimit(100),
}


@dataclass(frozen=True)
class DeliveryTiming:
    """Seconds after a message starts (its send time) until each lifecycle step shows.

    sent: the `sent` metric (or `undeliverable`) appears; delivered: `delivered` (or `bounced`).
    trigger: a broadcast trigger is processed (its messages appear) this long after the POST.
    Derived on read, so no background work is needed.
    """

    sent: float = 0.5
    delivered: float = 1.5
    trigger: float = 0.5
    export: float = 1.0  # an export is `pending` this long, then `done`


def parse_delivery(spec: Any) -> DeliveryTiming | None:
    """None, a DeliveryTiming, or {sent, delivered, trigger} (seconds, all optional)."""
    if spec is None or isinstance(spec, DeliveryTiming):
        return spec
    if not isinstance(spec, Mapping):
        raise ValueError("delivery must be a mapping {sent, delivered, trigger} of seconds")
    unknown = set(spec) - {f.name for f in fields(DeliveryTiming)}
    if unknown:
        raise ValueError(f"delivery: unknown settings {sorted(unknown)}")
    values = {k: float(v) for k, v in spec.items()}
    if any(v < 0 for v in values.values()):
        raise ValueError("delivery: seconds must not be negative")
    timing = DeliveryTiming(**values)
    if timing.delivered < timing.sent:
        raise ValueError("delivery: 'delivered' must not come before 'sent'")
    return timing


def parse_limits(spec: Any) -> dict[str, RateLimit]:
    """Accept None, "customerio", or {family: RateLimit | number | {rate, burst}}."""
    if spec is None or spec == {}:
        return {}
    if isinstance(spec, str):
        if spec.lower() in ("customerio", "customer.io", "cio"):
            return dict(CUSTOMERIO_LIMITS)
        raise ValueError(f"unknown limits preset {spec!r} (known: 'customerio')")
    if not isinstance(spec, Mapping):
        raise ValueError("limits must be a preset name or a mapping of family to limit")
    out: dict[str, RateLimit] = {}
    for family, value in spec.items():
        _check_family(family, BUCKETS)
        if value is None:
            continue
        if isinstance(value, RateLimit):
            out[family] = value
        elif isinstance(value, int | float):
            out[family] = RateLimit(float(value))
        elif isinstance(value, Mapping):
            out[family] = RateLimit(float(value["rate"]), _opt_float(value.get("burst")))
        else:
            raise ValueError(f"limits.{family}: expected a number or {{rate, burst}}")
    return out


def parse_faults(spec: Any) -> dict[str, Faults]:
    """Accept None or {family: Faults | {latency, error_rate, error_statuses, drop_rate, seed}}."""
    if not spec:
        return {}
    if not isinstance(spec, Mapping):
        raise ValueError("faults must be a mapping of family to settings")
    out: dict[str, Faults] = {}
    for family, value in spec.items():
        _check_family(family)
        if isinstance(value, Faults):
            out[family] = value
        elif isinstance(value, Mapping):
            unknown = set(value) - {f.name for f in fields(Faults)}
            if unknown:
                raise ValueError(f"faults.{family}: unknown settings {sorted(unknown)}")
            kwargs = dict(value)
            if "error_statuses" in kwargs:
                kwargs["error_statuses"] = tuple(int(s) for s in kwargs["error_statuses"])
            out[family] = Faults(**kwargs)
        elif value is not None:
            raise ValueError(f"faults.{family}: expected a mapping")
    return out


def _check_family(family: str, known: tuple[str, ...] = FAMILIES) -> None:
    if family not in known:
        raise ValueError(f"unknown API family {family!r} (known: {', '.join(known)})")


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)
