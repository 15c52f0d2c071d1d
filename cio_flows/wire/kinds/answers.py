"""How App API answers become a step's `response` (README, "Step kinds").

A single key wrapping one object is removed (`{"message": {...}}` -> the message); lists stay
under the API's own key; a field the API has not filled yet reads as null, so `wait_until` can
poll on it; a paged read follows every page (or stops at `limit`) and adds `count`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ...errors import StepFailure
from ..types import Request, Send, StepKeys

# A paged read fails after this many pages without an end (overridable per step: max_pages):
# a server whose every page has items and a new cursor would otherwise be read forever.
DEFAULT_MAX_PAGES = 1000

# A message's metrics: each is the unix time it happened, absent until then (read as null).
MESSAGE_METRICS = (
    "bounced",
    "clicked",
    "converted",
    "created",
    "delivered",
    "drafted",
    "dropped",
    "failed",
    "human_clicked",
    "human_opened",
    "opened",
    "prefetch_clicked",
    "prefetch_opened",
    "sent",
    "spammed",
    "undeliverable",
    "unsubscribed",
)


def _shape_failure(what: str, expected: str, found: Any) -> StepFailure:
    return StepFailure(
        f"the API's answer {what} is not {expected}",
        expected=expected,
        found=type(found).__name__,
    )


def answer_object(body: Any) -> dict[str, Any]:
    """A read's answer as the JSON object it must be ({} when empty); else a StepFailure."""
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise _shape_failure("", "a JSON object", body)
    return body


def answer_list(body: dict[str, Any], key: str) -> list[Any]:
    """`body[key]` as the list it must be ([] when absent or null); else a StepFailure."""
    value = body.get(key)
    if value is None:
        return []  # Customer.io may answer null
    if not isinstance(value, list):
        raise _shape_failure(f"field {key!r}", "a list", value)
    return value


def max_pages(payload: dict[str, Any]) -> int:
    """The step's page cap: its max_pages, else DEFAULT_MAX_PAGES."""
    cap = payload.get("max_pages")
    return cap if isinstance(cap, int) and cap >= 1 else DEFAULT_MAX_PAGES


def too_many_pages(cap: int) -> StepFailure:
    return StepFailure(
        f"the list did not end after {cap} pages (every page had items and a new cursor);"
        " set max_pages on the step to read more",
        expected=f"at most {cap} pages (max_pages)",
        found=f"a next cursor after page {cap}",
    )


def unwrapped(body: Any) -> Any:
    """The object inside a single-key wrapper, else the answer whole (`{"id": 4}` stays)."""
    if isinstance(body, dict) and len(body) == 1:
        (inner,) = body.values()
        if isinstance(inner, dict):
            return inner
    return body


def with_nulls(item: Any, fields: tuple[str, ...]) -> Any:
    """`item` with each of `fields` it lacks set to None."""
    if not isinstance(item, dict):
        return item
    return {**dict.fromkeys(fields), **item}


def message_view(message: Any) -> Any:
    """A message object whose metrics and failure_message are always there (null until filled)."""
    if not isinstance(message, dict):
        return message
    metrics = message.get("metrics")
    return {
        "failure_message": None,
        **message,
        "metrics": with_nulls(metrics if isinstance(metrics, dict) else {}, MESSAGE_METRICS),
    }


def cursor_pages(
    send: Send,
    page: Callable[[str], Request],
    has_items: Callable[[dict[str, Any]], bool],
    cap: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Every page's answer (a JSON object), following `next` cursors: the one pager.

    The walk ends at an empty, 0 or null cursor (broadcast trigger errors answer an integer, 0 on
    the last page), a page without items, or a cursor seen before, so a misbehaving server
    cannot keep it looping; with `cap`, a walk still going after `cap` pages fails
    (too_many_pages). `has_items` is asked after the caller has read the page.
    """
    seen: set[str] = set()
    start = ""
    pages = 0
    while True:
        body = answer_object(send(page(start)).body)
        yield body
        pages += 1
        cursor = body.get("next")
        if cursor in (None, "", 0, "0") or not has_items(body) or str(cursor) in seen:
            return
        if cap is not None and pages >= cap:
            raise too_many_pages(cap)
        start = str(cursor)
        seen.add(start)


PageRequest = Callable[[dict[str, Any], str, int], Request]  # (payload, start, page size)


class PagedList:
    """A read answering `{KEY: [...], "next": cursor}`: every page followed, `count` added.

    The walk ends at an empty, 0 or null cursor (broadcast trigger errors answer an integer,
    0 on the last page), an empty page, a cursor seen before, or once `limit` items are in.
    """

    def __init__(
        self,
        key: str,
        page_request: PageRequest,
        max_page: int,
        item: Callable[[Any], Any] = lambda item: item,
    ) -> None:
        self.key = key
        self.page_request = page_request
        self.max_page = max_page
        self.item = item

    def _page_size(self, payload: dict[str, Any], have: int) -> int:
        size = min(payload.get("page_size") or self.max_page, self.max_page)
        limit = payload.get("limit")
        return size if limit is None else max(1, min(size, limit - have))

    def first_request(self, payload: dict[str, Any], keys: StepKeys, people_family: str) -> Request:
        return self.page_request(payload, "", self._page_size(payload, 0))

    def execute(
        self, payload: dict[str, Any], keys: StepKeys, people_family: str, send: Send
    ) -> Any:
        items: list[Any] = []
        limit = payload.get("limit")

        def page(start: str) -> Request:
            return self.page_request(payload, start, self._page_size(payload, len(items)))

        def has_items(body: dict[str, Any]) -> bool:
            return bool(answer_list(body, self.key))

        for body in cursor_pages(send, page, has_items, max_pages(payload)):
            items.extend(self.item(entry) for entry in answer_list(body, self.key))
            if limit is not None and len(items) >= limit:
                items = items[:limit]
                break
        return {self.key: items, "count": len(items)}


def page_params(start: str, size: int, *pairs: tuple[str, Any]) -> tuple[tuple[str, str], ...]:
    """Query parameters: the given pairs whose value is set, then limit and start."""
    params = [(name, query_value(value)) for name, value in pairs if value is not None]
    params.append(("limit", str(size)))
    if start:
        params.append(("start", start))
    return tuple(params)


def query_value(value: Any) -> str:
    """A query value as Customer.io reads it: booleans lower-case, numbers in decimal."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
