"""Coalescing identify and track into Pipelines /v1/batch or Track /api/v2/batch.

Batches are split by count and by bytes before sending, so none exceeds Customer.io's 500 KB and
no item its 32 KB. Batches are safe to resend: every item carries its messageId / event id.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from ..timestamps import to_unix
from ..types import Request, StepKeys
from .people import event_id, track_attributes, with_message_id

BATCH_KINDS = frozenset({"identify", "track"})
MAX_BATCH_BYTES = 500 * 1024
MAX_ITEM_BYTES = 32 * 1024
MAX_BATCH_ITEMS = 1000  # keeps one failed batch's blast radius and latency small
_ENVELOPE_BYTES = len('{"batch":[]}')


def batch_item(kind: str, payload: dict[str, Any], keys: StepKeys, family: str) -> dict | None:
    """The batch entry for one step, or None when this payload cannot go in a batch."""
    if kind not in BATCH_KINDS:
        return None
    if family == "pipelines":
        return {"type": kind, **with_message_id(payload, keys)}
    if "userId" not in payload:  # Track v2 needs a person; anonymous events go one by one
        return None
    item: dict[str, Any] = {"type": "person", "identifiers": {"id": str(payload["userId"])}}
    if kind == "identify":
        item.update(action="identify", attributes=track_attributes(payload))
        return item
    item.update(action="event", name=payload["event"], id=event_id(payload, keys))
    if "properties" in payload:
        item["attributes"] = payload["properties"]
    if "timestamp" in payload:
        item["timestamp"] = to_unix(payload["timestamp"])
    return item


def item_size(item: dict[str, Any]) -> int:
    return len(json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def split_batches(sizes: list[int]) -> Iterator[list[int]]:
    """Indexes grouped into batches under the count and byte limits (items must be <= 32 KB)."""
    current: list[int] = []
    total = _ENVELOPE_BYTES
    for index, size in enumerate(sizes):
        if current and (len(current) >= MAX_BATCH_ITEMS or total + size + 1 > MAX_BATCH_BYTES):
            yield current
            current, total = [], _ENVELOPE_BYTES
        current.append(index)
        total += size + 1  # the comma
    if current:
        yield current


def batch_request(family: str, items: list[dict[str, Any]]) -> Request:
    path = "/v1/batch" if family == "pipelines" else "/api/v2/batch"
    return Request(family, "POST", path, {"batch": items})


def batch_errors(body: Any) -> dict[int, str]:
    """Per-item failures of a 207 answer: batch_index -> reason."""
    errors: dict[int, str] = {}
    for error in (body or {}).get("errors") or [] if isinstance(body, dict) else []:
        if isinstance(error, dict) and isinstance(error.get("batch_index"), int):
            parts = [error.get("reason"), error.get("field"), error.get("message")]
            errors[error["batch_index"]] = ": ".join(str(p) for p in parts if p) or "rejected"
    return errors
