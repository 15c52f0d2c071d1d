"""Where a frame came from, said plainly: every Workspace read stamps `attrs["fetched_at"]` (UTC)
and `attrs["from_cache"]`, and `freshness(frame)` turns them into "as of ... (cached)"."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypeVar

import pandas as pd

Read = TypeVar("Read", pd.DataFrame, pd.Series)


def stamp(frame: Read, fetched_at: float | None, from_cache: bool) -> Read:
    """Mark `frame` as read at `fetched_at` (unix seconds; None: now) and from the cache or not."""
    when = datetime.now(UTC) if fetched_at is None else datetime.fromtimestamp(fetched_at, UTC)
    frame.attrs["fetched_at"] = pd.Timestamp(when)
    frame.attrs["from_cache"] = from_cache
    return frame


def freshness(frame: pd.DataFrame | pd.Series) -> str:
    """'as of 2026-12-04 21:50:03 UTC (cached, 12 min old)' or '... (just read)'."""
    fetched = frame.attrs.get("fetched_at")
    if fetched is None:
        return "freshness unknown (not a Workspace read)"
    text = f"as of {fetched:%Y-%m-%d %H:%M:%S} UTC"
    if not frame.attrs.get("from_cache"):
        return text + " (just read)"
    age = pd.Timestamp(datetime.now(UTC)) - fetched
    return text + f" (cached, {_age(age.total_seconds())} old)"


def _age(seconds: float) -> str:
    if seconds < 90:
        return f"{max(seconds, 0):.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
