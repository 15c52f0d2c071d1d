"""Keep keys and tokens out of everything that leaves the process."""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"
_AUTH_HEADER = re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)(basic|bearer)\s+[^\s'\",}]+")


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret containing another is masked whole.
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return _AUTH_HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)} {MASK}", text)
