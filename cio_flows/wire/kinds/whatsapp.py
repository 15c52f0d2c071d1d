"""Transactional WhatsApp: App API POST /v1/send/whatsapp, the body of an SMS send.

The API reference lists no WhatsApp send; the official Ruby client's `send_whatsapp` posts
identifiers, transactional_message_id, `to` (E.164) and tracked there, so the kind follows it.
"""

from __future__ import annotations

from .app import TransactionalSend
from .registry import StepKind, register

register(
    StepKind(
        "send_whatsapp",
        "Transactional WhatsApp message (App API /v1/send/whatsapp body).",
        TransactionalSend("whatsapp"),
        family="app",
        repeatable=False,
    )
)
