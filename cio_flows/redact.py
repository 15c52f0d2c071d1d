"""Keep keys and tokens out of everything that leaves the process.

A key can leave in more forms than it was given in: the transport sends `KEY:` and
`SITE_ID:KEY` base64-encoded in Basic auth (a server may echo that header back in an error
body), JSON escapes quotes and non-ASCII characters, and URLs percent-encode. The redactor
masks every one of those forms of every secret, in one pass over the text.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote, quote_plus

# Customer.io's keys: a template never reads them (the runner sends them in headers itself).
CREDENTIAL_VARS = frozenset(
    {"CUSTOMERIO_TRACK_TOKEN", "CUSTOMERIO_PIPELINES_KEY", "CUSTOMERIO_APP_TOKEN"}
)
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD", re.IGNORECASE)


def is_secret_name(name: str) -> bool:
    """Environment variables whose values are masked in every output."""
    return bool(_SECRET_NAME.search(name))


MASK = "***"
MIN_LENGTH = 4  # shorter values would mask ordinary text, and guessing them is easy anyway
# Other variables named like secrets (`GITHUB_TOKEN`): a shorter value is more likely a flag
# (`KEEP_TOKENS=yes`) than a secret.
MIN_ENV_LENGTH = 6
_AUTH_HEADER = re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)(basic|bearer)\s+[^\s'\",}]+")
# Bearer tokens of other services too, wherever they appear (those have digits, unlike
# `Bearer CUSTOMERIO_APP_TOKEN`, the variable's name as `plan` prints it).
_BEARER = re.compile(r"\b(Bearer\s+)(?=[\w.~+/-]*\d)[\w.~+/-]{8,}=*")


def forms(secret: str) -> set[str]:
    """The ways `secret` can appear in output: raw, base64 (alone and as a Basic user with an
    empty password), JSON-escaped, and percent-encoded."""
    encoded = secret.encode("utf-8")
    found = {secret, quote(secret, safe=""), quote_plus(secret)}
    found |= {json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    for raw in (encoded, encoded + b":"):
        padded = base64.b64encode(raw).decode("ascii")
        found |= {padded, padded.rstrip("=")}  # a copy whose padding was stripped too
    return found


def environ_secrets(environ: Mapping[str, str]) -> list[str]:
    """Values of variables whose names say KEY, TOKEN, SECRET or PASSWORD (keys included)."""
    return [
        value
        for name, value in environ.items()
        if is_secret_name(name)
        and value
        and (name in CREDENTIAL_VARS or len(value) >= MIN_ENV_LENGTH)
    ]


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        masked = {form for s in secrets if s and len(s) >= MIN_LENGTH for form in forms(s)}
        masked = {form for form in masked if len(form) >= MIN_LENGTH}
        # Longest first, so a secret containing another is masked whole.
        alternatives = sorted(masked, key=len, reverse=True)
        self._secrets = re.compile("|".join(map(re.escape, alternatives))) if alternatives else None

    def __call__(self, text: str) -> str:
        if self._secrets is not None:
            text = self._secrets.sub(MASK, text)
        text = _AUTH_HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)} {MASK}", text)
        if "Bearer" in text:
            text = _BEARER.sub(lambda m: f"{m.group(1)}{MASK}", text)
        return text
