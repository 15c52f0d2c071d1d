"""Run ids and deterministic dedupe keys.

messageId (Pipelines) and event id (Track) are derived from run id, row key and step, so a
request resent after a crash or on resume carries the same key and Customer.io drops the copy.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from datetime import UTC, datetime
from functools import lru_cache

from ..wire.kinds import StepKeys

_NAMESPACE = uuid.UUID("8d6f8c4e-3f7a-5a51-9b52-6b3c2c1e9a10")
_NAMESPACE_BYTES = _NAMESPACE.bytes  # UUID.bytes is computed anew on every access
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_TO_CROCKFORD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _CROCKFORD.encode())


def new_run_id(now: datetime | None = None) -> str:
    """Sortable and short: UTC time to the second plus 6 random hex digits."""
    now = now or datetime.now(UTC)
    return now.strftime("%Y%m%d%H%M%S") + secrets.token_hex(3)


@lru_cache(maxsize=64)
def run_started_ms(run_id: str) -> int:
    try:
        when = datetime.strptime(run_id[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:  # a run id chosen by hand: any fixed instant keeps keys stable
        return 0
    return int(when.timestamp() * 1000)


def step_keys(run_id: str, row_key: str, step_key: str) -> StepKeys:
    name = f"{run_id}/{row_key}/{step_key}"
    return StepKeys(lambda: _uuid5(name), lambda: _ulid(run_id, name))


def _uuid5(name: str) -> str:
    """uuid.uuid5(_NAMESPACE, name) without building a UUID object (a hot path over rows).

    The SHA-1's first 32 hex digits with RFC 4122's bits set: the version digit (12) is 5,
    and the variant digit (16) keeps its low two bits under 0b10 (8, 9, a or b)."""
    h = hashlib.sha1(_NAMESPACE_BYTES + name.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def _ulid(run_id: str, name: str) -> str:
    """A ULID whose time is the run's start and whose 80 random bits come from a hash of `name`."""
    digest = hashlib.sha256(name.encode()).digest()
    value = (run_started_ms(run_id) << 80) | int.from_bytes(digest[:10], "big")
    # 26 base-32 digits of the 128 bits: base32 of 20 bytes is 32 digits, the first 6 zeros.
    return base64.b32encode(value.to_bytes(20, "big")).translate(_TO_CROCKFORD)[6:].decode()
