"""App API reads the notebooks need, as Requests, and a pager that follows `next` cursors.

Knows Customer.io's wire format and nothing of pandas; the transport adds auth, the rate limit
and retries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ..wire.kinds import Request, Response
from ..wire.kinds.answers import cursor_pages
from ..wire.kinds.app import Search, SegmentMembers
from ..wire.types import path_id

SEARCH_PAGE = 1000  # the App API's maximum page for people search
MEMBERSHIP_PAGE = 30000  # ... and for segment membership
ATTRIBUTES_BATCH = 100  # ids per bulk attribute read
ACTIVITIES_PAGE = 100
ID_TYPES = ("id", "email", "cio_id")

# Search needs a filter; "has an id or an email" matches every person.
EVERYONE: dict[str, Any] = {
    "or": [
        {"attribute": {"field": "id", "operator": "exists"}},
        {"attribute": {"field": "email", "operator": "exists"}},
    ]
}

Send = Callable[[Request], Response]


def search_page(flt: dict[str, Any], start: str, limit: int = SEARCH_PAGE) -> Request:
    return Search().page_request({"filter": flt, "limit": limit}, start)


def membership_page(segment_id: int | str, start: str, limit: int = MEMBERSHIP_PAGE) -> Request:
    return SegmentMembers().page_request({"segment_id": segment_id, "limit": limit}, start)


def bulk_attributes(ids: list[str], id_type: str = "id") -> Request:
    """POST /v1/customers/attributes: up to 100 people per call; unknown ids are left out."""
    if not 1 <= len(ids) <= ATTRIBUTES_BATCH:
        raise ValueError(f"a bulk attribute read takes 1 to {ATTRIBUTES_BATCH} ids")
    return Request(
        "app", "POST", "/v1/customers/attributes", {"ids": ids}, params=(("id_type", id_type),)
    )


def person_attributes(ident: str, id_type: str = "id") -> Request:
    _check_id_type(id_type)
    path = f"/v1/customers/{path_id(ident)}/attributes"
    return Request("app", "GET", path, params=(("id_type", id_type),))


def person_segments(ident: str, id_type: str = "id") -> Request:
    _check_id_type(id_type)
    path = f"/v1/customers/{path_id(ident)}/segments"
    return Request("app", "GET", path, params=(("id_type", id_type),))


def person_activities(ident: str, id_type: str, start: str, limit: int) -> Request:
    _check_id_type(id_type)
    params = [("id_type", id_type), ("limit", str(limit))]
    if start:
        params.append(("start", start))
    path = f"/v1/customers/{path_id(ident)}/activities"
    return Request("app", "GET", path, params=tuple(params))


def list_segments() -> Request:
    return Request("app", "GET", "/v1/segments")


def segment_count(segment_id: int | str) -> Request:
    return Request("app", "GET", f"/v1/segments/{path_id(segment_id)}/customer_count")


def pages(send: Send, page: Callable[[str], Request], items: str) -> Iterator[dict[str, Any]]:
    """Every page's body, following `next`; `items` names the list that shows a page is empty.
    The step kinds' pager (wire/kinds/answers.cursor_pages), with its stop rules."""
    return cursor_pages(send, page, lambda body: bool(body.get(items)))


def lookup_key(identifiers: dict[str, Any]) -> tuple[str, str] | None:
    """(id_type, value) to read a person by: cio_id always exists on Customer.io, then id, email."""
    for id_type in ("cio_id", "id", "email"):
        value = identifiers.get(id_type)
        if value not in (None, ""):
            return id_type, str(value)
    return None


def batches(values: list[str], size: int = ATTRIBUTES_BATCH) -> Iterator[list[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _check_id_type(id_type: str) -> None:
    if id_type not in ID_TYPES:
        raise ValueError(f"id_type must be one of {', '.join(ID_TYPES)}, not {id_type!r}")
