"""`cio-flows workspace pull`: read a workspace (Customer.io or an emulator) with the App key and
write a workspace file the emulator starts from.

What the App API shows becomes entries: transactional messages (id, name, channel, subject, body,
from), segments (id, name, description), campaigns (id, name, trigger event or segment, message
actions), broadcasts (id, name, channel, segment), optionally N people with their attributes.
What it does not show is said in comments: segment conditions (a dynamic segment becomes a
manual one holding the pulled people who are in it), transactional trigger names, the waits,
conditions and branches between a campaign's actions, campaigns of other trigger types, and
newsletters (the emulator has no model for them). An emulator also answers
`/_emulator/definitions`, so a file pulled from one keeps all of that.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import CredentialsError
from ..wire.config import Credentials, Endpoints, resolve_region
from ..wire.transport import Transport
from .file import Pulled
from .reads import Reader, read_workspace

__all__ = ["Pulled", "Reader", "pull", "read_workspace"]


def pull(environ: Mapping[str, str], *, people: int = 0, region: str | None = None) -> Pulled:
    """Read the workspace the environment's App key (and CUSTOMERIO_APP_URL) points at."""
    credentials = Credentials.from_env(environ)
    missing = credentials.missing_for("app")
    if missing:
        raise CredentialsError(
            "missing credentials: set " + ", ".join(missing),
            expected="environment variables " + ", ".join(missing),
            found="unset",
        )
    region = resolve_region(region, None, environ)
    endpoints = Endpoints.for_region(region, environ)
    with Transport(endpoints, credentials) as transport:
        return read_workspace(Reader(transport), endpoints.app, people)
