"""Coalescing people writes into Pipelines /v1/batch or Track /api/v2/batch.

A kind takes part by declaring `batch=` on its StepKind (see people_calls.people_kind). identify
and track predate that field; their entries are built here.

Batches are split by count and by bytes before sending, so none exceeds Customer.io's 500 KB and
no item its 32 KB. Batches are safe to resend: every item carries its messageId / event id, or is
idempotent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import orjson

from ...printable import printable
from ..timestamps import to_unix
from ..types import Request, StepKeys
from .people import event_id, track_attributes
from .registry import BatchItem, get

MAX_BATCH_BYTES = 500 * 1024
MAX_ITEM_BYTES = 32 * 1024
MAX_BATCH_ITEMS = 1000  # keeps one failed batch's blast radius and latency small
_ENVELOPE_BYTES = len('{"batch":[]}')


def _identify_or_track(kind: str) -> BatchItem:
    def item(payload: dict[str, Any], keys: StepKeys, family: str) -> dict[str, Any] | None:
        if family == "pipelines":  # {"type": kind, **with_message_id(payload, keys)}, one copy
            if "messageId" in payload:
                return {"type": kind, **payload}
            return {"type": kind, **payload, "messageId": keys.message_id}
        if "userId" not in payload:  # Track v2 needs a person; anonymous events go one by one
            return None
        entry: dict[str, Any] = {"type": "person", "identifiers": {"id": str(payload["userId"])}}
        if kind == "identify":
            entry.update(action="identify", attributes=track_attributes(payload))
            return entry
        entry.update(action="event", name=payload["event"], id=event_id(payload, keys))
        if "properties" in payload:
            entry["attributes"] = payload["properties"]
        if "timestamp" in payload:
            entry["timestamp"] = to_unix(payload["timestamp"])
        return entry

    return item


_PEOPLE_ITEMS: dict[str, BatchItem] = {
    "identify": _identify_or_track("identify"),
    "track": _identify_or_track("track"),
}


def _builder(kind: str) -> BatchItem | None:
    return _PEOPLE_ITEMS.get(kind) or get(kind).batch


def batchable_kind(kind: str) -> bool:
    """Whether steps of this kind can share batch calls."""
    return _builder(kind) is not None


def batch_item(
    kind: str, payload: dict[str, Any], keys: StepKeys, family: str
) -> dict[str, Any] | None:
    """The batch entry for one step, or None when this payload cannot go in a batch."""
    build = _builder(kind)
    return None if build is None else build(payload, keys, family)


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_SHORT_EXPONENT = re.compile(rb"e-[5-9][,\]}]")  # json writes 1e-05 .. 1e-09 with two digits
_ZEROS = re.compile(rb"0\.0000")
_NULL = re.compile(rb"null")


def encode_item(item: Any) -> bytes:
    """The JSON of one item, byte for byte what json.dumps(separators=(",", ":"),
    ensure_ascii=False) gives, at a tenth of the cost.

    orjson differs from json only on a few floats (7e-05 is `0.00007`, 1e-07 is `1e-7`) and on
    NaN and infinities (null); its output then holds `e-5`..`e-9` ending a number, `0.0000` or
    `null`, and json encodes the item instead. What orjson refuses (big integers, non-string
    keys) json encodes as before.
    """
    try:
        encoded = orjson.dumps(item)
    except (orjson.JSONEncodeError, TypeError):
        return _ENCODER.encode(item).encode("utf-8")
    # Compiled searches: on a short item each is about half a `bytes in bytes`.
    if _SHORT_EXPONENT.search(encoded) or _ZEROS.search(encoded) or _NULL.search(encoded):
        return _ENCODER.encode(item).encode("utf-8")
    # orjson's bytes keep the 4 KB it allocated to write into: a copy of the exact size, or a
    # thousand items in flight per chunk hold 4 MB instead of 0.2
    return bytes(memoryview(encoded))


class EncodedBody(dict[str, Any]):
    """A request body whose JSON is already made: the transport sends `encoded` as it is."""

    def __init__(self, value: dict[str, Any], encoded: bytes) -> None:
        super().__init__(value)
        self.encoded = encoded


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


def batch_request(
    family: str, items: list[dict[str, Any]], encoded: list[bytes] | None = None
) -> Request:
    """The batch call; with `encoded` (each item's encode_item), its body is not encoded again."""
    path = "/v1/batch" if family == "pipelines" else "/api/v2/batch"
    body: dict[str, Any] = {"batch": items}
    if encoded is not None:
        body = EncodedBody(body, b'{"batch":[' + b",".join(encoded) + b"]}")
    return Request(family, "POST", path, body)


def batch_errors(body: Any, size: int) -> dict[int, str] | None:
    """Per-item failures of a 207 answer to a batch of `size` items: batch_index -> reason.

    None when the answer cannot be matched to items (no list of errors, an index that is not
    an integer in range): the caller fails every item, as it cannot know which were kept.
    """
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list) or not errors:
        return None
    rejected: dict[int, str] = {}
    for error in errors:
        index = error.get("batch_index") if isinstance(error, dict) else None
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < size:
            return None
        parts = [error.get("reason"), error.get("field"), error.get("message")]
        rejected[index] = printable(": ".join(str(p) for p in parts if p)[:300]) or "rejected"
    return rejected
