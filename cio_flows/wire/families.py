"""The API families, each declared once: keys, auth scheme, hosts per region, URL override, rate limit.

Credentials, endpoints, the transport's auth, `plan`'s auth line, the default rate limits and the
docs table all look a family up here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Auth:
    """How a family authenticates, named by the environment variables that hold the keys."""

    scheme: str  # "basic" | "bearer"
    user: str  # the Basic user, or the Bearer token
    password: str = ""  # the Basic password; "" sends an empty one

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(v for v in (self.user, self.password) if v)

    def describe(self) -> str:
        """What `plan` prints instead of the Authorization header: the scheme, never the key."""
        if self.scheme == "bearer":
            return f"Bearer {self.user}"
        password = f"password {self.password}" if self.password else "empty password"
        return f"HTTP Basic, user {self.user}, {password}"


# The rate-limit bucket of App POST /v1/campaigns/{id}/triggers: its own, 1 request per 10 s.
BROADCAST_BUCKET = "app_broadcast"


@dataclass(frozen=True)
class Family:
    name: str
    auth: Auth
    url_override: str  # environment variable holding a root URL (a proxy, the emulator)
    hosts: Mapping[str, str]  # region -> root URL
    # Requests per second, per rate-limit bucket: the family's own bucket and any of its own.
    rate_limits: Mapping[str, float]

    @property
    def credentials(self) -> tuple[str, ...]:
        """Environment variables that must be set before this family can be called."""
        return self.auth.variables


# Customer.io: Track fair use 100/s, Pipelines 3000/3 s, App 10/s, transactional sends share the
# 3000/3 s limit (we stay at 100/s unless told otherwise), API-triggered broadcast triggers 1 per
# 10 s (BROADCAST_BUCKET). Declared in the order the CLI lists them.
_DECLARED = (
    Family(
        "track",
        Auth("basic", "CUSTOMERIO_SITE_ID", "CUSTOMERIO_TRACK_TOKEN"),
        "CUSTOMERIO_TRACK_URL",
        {"us": "https://track.customer.io", "eu": "https://track-eu.customer.io"},
        {"track": 100.0},
    ),
    Family(
        "pipelines",
        Auth("basic", "CUSTOMERIO_PIPELINES_KEY"),
        "CUSTOMERIO_PIPELINES_URL",
        {"us": "https://cdp.customer.io", "eu": "https://cdp-eu.customer.io"},
        {"pipelines": 100.0},
    ),
    Family(
        "app",
        Auth("bearer", "CUSTOMERIO_APP_TOKEN"),
        "CUSTOMERIO_APP_URL",
        {"us": "https://api.customer.io", "eu": "https://api-eu.customer.io"},
        {"app_send": 100.0, BROADCAST_BUCKET: 0.1, "app": 10.0},
    ),
)

FAMILY_SPECS: Mapping[str, Family] = {family.name: family for family in _DECLARED}
FAMILIES: tuple[str, ...] = tuple(FAMILY_SPECS)

# Where identify/track/delete go, by preference: the first whose keys are all set, else the last.
PEOPLE_FAMILIES: tuple[str, ...] = ("pipelines", "track")


def family_spec(name: str) -> Family:
    """The family called `name`; KeyError naming the known ones otherwise."""
    try:
        return FAMILY_SPECS[name]
    except KeyError:
        raise KeyError(f"unknown API family {name!r}; known: {', '.join(FAMILIES)}") from None


def default_rates() -> dict[str, float]:
    """Requests per second for every rate-limit bucket of every family."""
    return {bucket: rate for spec in _DECLARED for bucket, rate in spec.rate_limits.items()}
