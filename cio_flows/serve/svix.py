"""Svix webhook signatures (Clerk, and many others, sign their webhooks this way).

The signed content is `{svix-id}.{svix-timestamp}.{body}`; the signature is base64 of its
HMAC-SHA256 keyed with the base64-decoded part of the secret after `whsec_`. `svix-signature`
may list several space-separated `v1,<signature>` entries (during a key rotation): one match is
enough. A timestamp outside the tolerance window is refused, so a captured delivery cannot be
replayed later.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping

TOLERANCE = 300  # seconds either side of now, as Svix's own libraries allow


class SignatureError(Exception):
    """A delivery that is not proven to come from the sender; `status` is the HTTP answer."""

    def __init__(self, reason: str, status: int = 401) -> None:
        super().__init__(reason)
        self.status = status


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_...` secret; ValueError if it is not one."""
    try:
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not a Svix secret (whsec_ followed by base64)") from None


def verify(key: bytes, headers: Mapping[str, str], body: bytes, now: float | None = None) -> str:
    """The delivery's id when its signature and timestamp hold; else SignatureError."""
    msg_id = headers.get("svix-id", "")
    stamp = headers.get("svix-timestamp", "")
    signatures = headers.get("svix-signature", "")
    if not (msg_id and stamp and signatures):
        raise SignatureError("missing svix-id, svix-timestamp or svix-signature", 400)
    try:
        sent = int(stamp)
    except ValueError:
        raise SignatureError("svix-timestamp is not a unix time", 400) from None
    now = time.time() if now is None else now
    if abs(now - sent) > TOLERANCE:
        raise SignatureError(f"svix-timestamp is more than {TOLERANCE} s from now")
    signed = f"{msg_id}.{sent}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    for entry in signatures.split():
        version, _, signature = entry.partition(",")
        if version == "v1" and hmac.compare_digest(signature.encode(), expected):
            return msg_id
    raise SignatureError("no valid signature")
