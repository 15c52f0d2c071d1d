"""Messages (deliveries) and what happened to a person (App API): one message, the workspace's
messages, a person's messages and activities. Metrics are unix times, null until reached."""

from __future__ import annotations

from typing import Any

from ..timestamps import to_unix
from ..types import Request, SingleRequest, StepKeys, path_id
from .answers import PagedList, message_view, page_params, unwrapped
from .registry import StepKind, register

MESSAGES_PAGE = 1000  # Customer.io's largest page for message lists
ACTIVITIES_PAGE = 100  # and for activities


def _unix(payload: dict[str, Any], name: str) -> int | None:
    """A time filter as unix seconds; flows may write it as ISO-8601 text."""
    return to_unix(payload[name]) if payload.get(name) is not None else None


def _person_path(payload: dict[str, Any], what: str) -> str:
    return f"/v1/customers/{path_id(payload['id'])}/{what}"


class GetMessage(SingleRequest):
    def first_request(self, payload: dict[str, Any], keys: StepKeys, people_family: str) -> Request:
        return Request("app", "GET", f"/v1/messages/{path_id(payload['id'])}")

    def read(self, body: Any) -> Any:
        return message_view(unwrapped(body))


def _messages_page(payload: dict[str, Any], start: str, size: int) -> Request:
    filters = ("type", "metric", "campaign_id", "broadcast_id", "drafts")
    params = page_params(
        start,
        size,
        *((name, payload.get(name)) for name in filters),
        ("start_ts", _unix(payload, "start_ts")),
        ("end_ts", _unix(payload, "end_ts")),
    )
    return Request("app", "GET", "/v1/messages", params=params)


def _person_messages_page(payload: dict[str, Any], start: str, size: int) -> Request:
    params = page_params(
        start,
        size,
        ("id_type", payload.get("id_type", "id")),
        ("start_ts", _unix(payload, "start_ts")),
        ("end_ts", _unix(payload, "end_ts")),
    )
    return Request("app", "GET", _person_path(payload, "messages"), params=params)


def _person_activities_page(payload: dict[str, Any], start: str, size: int) -> Request:
    params = page_params(
        start,
        size,
        ("id_type", payload.get("id_type", "id")),
        ("type", payload.get("type")),
        ("name", payload.get("name")),
    )
    return Request("app", "GET", _person_path(payload, "activities"), params=params)


register(
    StepKind(
        "get_message",
        "One message (a send's delivery_id): id. Metrics not reached yet read as null.",
        GetMessage(),
        family="app",
        reads=True,
    )
)
register(
    StepKind(
        "list_messages",
        "Messages, filtered by type, metric, campaign_id, broadcast_id, start_ts, end_ts;"
        " every page up to limit.",
        PagedList("messages", _messages_page, MESSAGES_PAGE, message_view),
        family="app",
        reads=True,
    )
)
register(
    StepKind(
        "person_messages",
        "A person's messages: id, optional id_type, start_ts, end_ts; every page up to limit.",
        PagedList("messages", _person_messages_page, MESSAGES_PAGE, message_view),
        family="app",
        reads=True,
    )
)
register(
    StepKind(
        "person_activities",
        "A person's activities: id, optional id_type, type, name; every page up to limit.",
        PagedList("activities", _person_activities_page, ACTIVITIES_PAGE),
        family="app",
        reads=True,
    )
)
