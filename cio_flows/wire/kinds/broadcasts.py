"""API-triggered broadcasts: trigger one, read a trigger's status and its errors (App API)."""

from __future__ import annotations

from typing import Any

from ..families import BROADCAST_BUCKET
from ..types import Request, SingleRequest, StepKeys, path_id
from .answers import PagedList, page_params, unwrapped, with_nulls
from .registry import StepKind, register

# What the status answer holds once processed; absent (null) before.
TRIGGER_FIELDS = ("id", "broadcast_id", "created_at", "processed_at")
ERRORS_PAGE = 1000


def _trigger_path(payload: dict[str, Any]) -> str:
    broadcast = path_id(payload["broadcast_id"])
    return f"/v1/campaigns/{broadcast}/triggers/{path_id(payload['trigger_id'])}"


class TriggerBroadcast(SingleRequest):
    """Not idempotent: every POST is a new trigger (its kind says repeatable=False)."""

    def first_request(self, payload: dict[str, Any], keys: StepKeys, people_family: str) -> Request:
        body = {name: value for name, value in payload.items() if name != "broadcast_id"}
        path = f"/v1/campaigns/{path_id(payload['broadcast_id'])}/triggers"
        return Request("app", "POST", path, body, bucket=BROADCAST_BUCKET)


class BroadcastStatus(SingleRequest):
    def first_request(self, payload: dict[str, Any], keys: StepKeys, people_family: str) -> Request:
        return Request("app", "GET", _trigger_path(payload))

    def read(self, body: Any) -> Any:
        status = unwrapped(body)
        return with_nulls(status if isinstance(status, dict) else {}, TRIGGER_FIELDS)


def _errors_page(payload: dict[str, Any], start: str, size: int) -> Request:
    params = page_params(start, size)
    return Request("app", "GET", _trigger_path(payload) + "/errors", params=params)


register(
    StepKind(
        "trigger_broadcast",
        "Trigger an API-triggered broadcast: broadcast_id, then the App trigger body"
        " (data, ids, emails, per_user_data, recipients, data_file_url, flags).",
        TriggerBroadcast(),
        family="app",
        repeatable=False,
    )
)
register(
    StepKind(
        "broadcast_status",
        "A broadcast trigger's status: broadcast_id, trigger_id (processed_at null until done).",
        BroadcastStatus(),
        family="app",
        reads=True,
    )
)
register(
    StepKind(
        "broadcast_errors",
        "A broadcast trigger's errors: broadcast_id, trigger_id. Every page is followed.",
        PagedList("errors", _errors_page, ERRORS_PAGE),
        family="app",
        reads=True,
    )
)
