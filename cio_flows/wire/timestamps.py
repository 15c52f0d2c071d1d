"""Timestamps in the forms Customer.io's APIs want."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def to_unix(value: Any) -> int:
    """ISO-8601 text or a number to unix seconds (what the Track and App APIs want)."""
    if isinstance(value, int | float):
        return int(value)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())
