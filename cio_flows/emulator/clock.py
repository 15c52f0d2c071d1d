"""The emulator's clock: wall time plus an offset that tests move forward.

Everything the emulator stamps (people, events, messages and their metrics, exports) reads
`state.clock.now()`, so a journey's "wait 1 day" can pass in a test: `POST /_emulator/clock
{"advance": "1d"}` moves the clock and runs what became due (journeys.py). Between advances the
clock runs at wall speed, so a "wait 2 s" passes on its own. A workspace's `clock: {start:
ISO-8601}` sets where it starts; `reset()` puts it back there.
"""

from __future__ import annotations

import math
import re
import time
from datetime import UTC, datetime
from typing import Any

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
# The clock must stay a datetime (ISO stamps, the web page): no duration past 1,000 years and
# no time past the last second of year 9999. NaN or infinity would turn every stamp into NaN.
MAX_DURATION = 1000 * 365.25 * 86400
LATEST = 253_402_300_799.0  # 9999-12-31T23:59:59Z
EARLIEST = -62_135_596_800.0  # 0001-01-01T00:00:00Z


class ClockError(ValueError):
    """A duration or start time the clock cannot read."""


def parse_duration(value: Any, what: str = "duration") -> float:
    """Seconds from a number or a string such as "90", "2h", "1d", "1h30m", "1.5d"."""
    if isinstance(value, bool):
        raise ClockError(f"{what}: expected seconds or a duration like '2h', found {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        try:
            seconds = float(text)
        except ValueError:
            parts = _DURATION.findall(text)
            if not parts or "".join(n + u for n, u in parts) != text:
                raise ClockError(
                    f"{what}: expected seconds or a duration like '2h', '1d', '1h30m', "
                    f"found {value!r}"
                ) from None
            seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    else:
        raise ClockError(f"{what}: expected seconds or a duration like '2h', found {value!r}")
    if not math.isfinite(seconds) or seconds > MAX_DURATION:
        raise ClockError(
            f"{what}: expected a finite duration of at most 1000 years, found {value!r}"
        )
    if seconds < 0:
        raise ClockError(f"{what}: must not be negative, found {value!r}")
    return seconds


def parse_start(value: Any) -> float:
    """Unix seconds from an ISO-8601 time (no zone means UTC) or a unix timestamp."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if not (math.isfinite(value) and EARLIEST <= value <= LATEST):
            raise ClockError(f"clock.start: expected a time before the year 10000, found {value!r}")
        return float(value)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ClockError(f"clock.start: expected an ISO-8601 time, found {value!r}") from None
    else:
        raise ClockError(f"clock.start: expected an ISO-8601 time, found {value!r}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def parse_clock(spec: Any) -> float | None:
    """The workspace's `clock: {start: ...}`: its start as unix seconds, or None."""
    if spec is None:
        return None
    if not isinstance(spec, dict) or set(spec) - {"start"}:
        raise ClockError("clock: expected {start: ISO-8601 time}")
    return None if spec.get("start") is None else parse_start(spec["start"])


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class Clock:
    """Wall time shifted by `offset` seconds; `start` (unix) pins where it begins and resets to."""

    def __init__(self, start: float | None = None) -> None:
        self.start = start
        self.offset = 0.0
        self.reset()

    def reset(self) -> None:
        self.offset = 0.0 if self.start is None else self.start - time.time()

    def now(self) -> float:
        return time.time() + self.offset

    def ts(self) -> int:
        """Now in whole seconds, as Customer.io stamps most things."""
        return int(self.now())

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ClockError("the clock only moves forward")
        if not self.now() + seconds <= LATEST:  # NaN too
            raise ClockError(f"the clock cannot pass {iso(LATEST)}")
        self.offset += seconds
        return self.now()

    def view(self) -> dict[str, Any]:
        at = self.now()
        return {"now": round(at, 3), "iso": iso(at), "offset": round(self.offset, 3)}
