"""App API operations: transactional sends (email, push, SMS, in-app, inbox), people search and
lookup, segments."""

from __future__ import annotations

from typing import Any

from ..types import Request, Send, SingleRequest, StepKeys, path_id
from .answers import answer_list, answer_object, cursor_pages, max_pages
from .registry import StepKind, register


class TransactionalSend(SingleRequest):
    """Not idempotent: Customer.io has no idempotency key for sends (its kinds say repeatable=False)."""

    def __init__(self, channel: str) -> None:
        self.channel = channel

    def first_request(self, payload: dict[str, Any], keys: StepKeys, people_family: str) -> Request:
        return Request("app", "POST", f"/v1/send/{self.channel}", payload, bucket="app_send")


class GetPerson(SingleRequest):
    def first_request(self, payload: dict[str, Any], keys: StepKeys, people_family: str) -> Request:
        params = (("id_type", payload.get("id_type", "id")),)
        return Request(
            "app", "GET", f"/v1/customers/{path_id(payload['id'])}/attributes", params=params
        )

    def read(self, body: Any) -> Any:
        return answer_object(body).get("customer")


class ListSegments(SingleRequest):
    def first_request(self, payload: dict[str, Any], keys: StepKeys, people_family: str) -> Request:
        return Request("app", "GET", "/v1/segments")

    def read(self, body: Any) -> Any:
        return {"segments": answer_list(answer_object(body), "segments")}


class PagedIdentifiers:
    """Reads that answer identifiers/ids/next: every page is followed and the pages combined."""

    def page_request(self, payload: dict[str, Any], start: str) -> Request:
        raise NotImplementedError

    def first_request(self, payload: dict[str, Any], keys: StepKeys, people_family: str) -> Request:
        return self.page_request(payload, "")

    def execute(
        self, payload: dict[str, Any], keys: StepKeys, people_family: str, send: Send
    ) -> Any:
        identifiers: list[Any] = []
        ids: list[Any] = []
        pages = 0
        for body in cursor_pages(
            send,
            lambda start: self.page_request(payload, start),
            lambda body: bool(answer_list(body, "identifiers") or answer_list(body, "ids")),
            max_pages(payload),
        ):
            identifiers.extend(answer_list(body, "identifiers"))
            ids.extend(answer_list(body, "ids"))
            pages += 1
        return {
            "identifiers": identifiers,
            "ids": ids,
            "count": len(identifiers or ids),
            "pages": pages,
        }


class Search(PagedIdentifiers):
    def page_request(self, payload: dict[str, Any], start: str) -> Request:
        params = [("limit", str(payload.get("limit", 1000)))]
        if start:
            params.append(("start", start))
        return Request(
            "app", "POST", "/v1/customers", {"filter": payload["filter"]}, params=tuple(params)
        )


class SegmentMembers(PagedIdentifiers):
    def page_request(self, payload: dict[str, Any], start: str) -> Request:
        params = [("limit", str(payload.get("limit", 30000)))]
        if start:
            params.append(("start", start))
        segment = path_id(payload["segment_id"])
        return Request("app", "GET", f"/v1/segments/{segment}/membership", params=tuple(params))


register(
    StepKind(
        "send_email",
        "Transactional email (App API /v1/send/email body).",
        TransactionalSend("email"),
        family="app",
        repeatable=False,
    )
)
register(
    StepKind(
        "send_push",
        "Transactional push (App API /v1/send/push body).",
        TransactionalSend("push"),
        family="app",
        repeatable=False,
    )
)
register(
    StepKind(
        "send_sms",
        "Transactional SMS (App API /v1/send/sms body).",
        TransactionalSend("sms"),
        family="app",
        repeatable=False,
    )
)
register(
    StepKind(
        "send_in_app",
        "Transactional in-app message (App API /v1/send/in_app body).",
        TransactionalSend("in_app"),
        family="app",
        repeatable=False,
    )
)
register(
    StepKind(
        "send_inbox",
        "Transactional inbox message (App API /v1/send/inbox_message body).",
        TransactionalSend("inbox_message"),
        family="app",
        repeatable=False,
    )
)
register(
    StepKind(
        "search",
        "People search: filter, optional limit (page size). Every page is followed.",
        Search(),
        family="app",
        reads=True,
    )
)
register(
    StepKind(
        "get_person",
        "A person's attributes: id, optional id_type (id | email | cio_id).",
        GetPerson(),
        family="app",
        reads=True,
    )
)
register(
    StepKind("list_segments", "All segments. No payload.", ListSegments(), family="app", reads=True)
)
register(
    StepKind(
        "segment_members",
        "Members of a segment: segment_id. Every page is followed.",
        SegmentMembers(),
        family="app",
        reads=True,
    )
)
