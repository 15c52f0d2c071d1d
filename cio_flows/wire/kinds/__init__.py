"""Step kind -> operation. Operations know Customer.io's wire format and nothing of YAML or HTTP."""

from __future__ import annotations

from ..types import FAMILIES, Operation, Request, Response, Send, StepKeys
from .app import GetPerson, ListSegments, Search, SegmentMembers, TransactionalSend
from .people import Delete, Identify, NeedsPipelines, Track

OPERATIONS: dict[str, Operation] = {
    op.kind: op
    for op in (
        Identify(),
        Track(),
        Delete(),
        TransactionalSend("send_email", "email"),
        TransactionalSend("send_push", "push"),
        TransactionalSend("send_sms", "sms"),
        Search(),
        GetPerson(),
        ListSegments(),
        SegmentMembers(),
    )
}

__all__ = [
    "FAMILIES",
    "OPERATIONS",
    "NeedsPipelines",
    "Operation",
    "Request",
    "Response",
    "Send",
    "StepKeys",
]
