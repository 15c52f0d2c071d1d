"""Manual segments: create and delete them (App API), add and remove people (Track API), and the
segments a person is in (App API)."""

from __future__ import annotations

from typing import Any

from ..types import Request, Send, SingleRequest, StepKeys, path_id
from .answers import answer_list, answer_object, unwrapped
from .registry import StepKind, register

# Track's add_customers / remove_customers take at most this many ids per call.
MAX_IDS_PER_CALL = 1000


class SegmentMembership:
    """POST /api/v1/segments/{id}/add_customers (or remove_customers), ids split into calls of
    at most 1,000. Safe to repeat: adding or removing someone twice changes nothing."""

    def __init__(self, action: str) -> None:
        self.action = action

    def requests(self, payload: dict[str, Any]) -> list[Request]:
        ids = [str(value) for value in payload["ids"]]
        path = f"/api/v1/segments/{path_id(payload['segment_id'])}/{self.action}"
        params = (("id_type", payload["id_type"]),) if "id_type" in payload else ()
        return [
            Request("track", "POST", path, {"ids": ids[at : at + MAX_IDS_PER_CALL]}, params=params)
            for at in range(0, len(ids), MAX_IDS_PER_CALL)
        ]

    def first_request(self, payload: dict[str, Any], keys: StepKeys, people_family: str) -> Request:
        return self.requests(payload)[0]

    def execute(
        self, payload: dict[str, Any], keys: StepKeys, people_family: str, send: Send
    ) -> Any:
        calls = self.requests(payload)
        for request in calls:
            send(request)
        return {"ids": sum(len(request.body["ids"]) for request in calls), "calls": len(calls)}


class CreateSegment(SingleRequest):
    def first_request(self, payload: dict[str, Any], keys: StepKeys, people_family: str) -> Request:
        return Request("app", "POST", "/v1/segments", {"segment": payload})

    def read(self, body: Any) -> Any:
        return unwrapped(body)


class DeleteSegment(SingleRequest):
    def first_request(self, payload: dict[str, Any], keys: StepKeys, people_family: str) -> Request:
        return Request("app", "DELETE", f"/v1/segments/{path_id(payload['segment_id'])}")


class PersonSegments(SingleRequest):
    def first_request(self, payload: dict[str, Any], keys: StepKeys, people_family: str) -> Request:
        params = (("id_type", payload.get("id_type", "id")),)
        path = f"/v1/customers/{path_id(payload['id'])}/segments"
        return Request("app", "GET", path, params=params)

    def read(self, body: Any) -> Any:
        return {"segments": answer_list(answer_object(body), "segments")}


register(
    StepKind(
        "add_to_segment",
        "Add people to a manual segment: segment_id, ids, optional id_type (Track API).",
        SegmentMembership("add_customers"),
        family="track",
    )
)
register(
    StepKind(
        "remove_from_segment",
        "Remove people from a manual segment: segment_id, ids, optional id_type (Track API).",
        SegmentMembership("remove_customers"),
        family="track",
    )
)
# A lost answer may have created the segment: creating it again would make a second one.
register(
    StepKind(
        "create_segment",
        "Create a manual segment: name, optional description.",
        CreateSegment(),
        family="app",
        repeatable=False,
    )
)
register(
    StepKind(
        "delete_segment", "Delete a manual segment: segment_id.", DeleteSegment(), family="app"
    )
)
register(
    StepKind(
        "person_segments",
        "The segments a person is in: id, optional id_type.",
        PersonSegments(),
        family="app",
        reads=True,
    )
)
