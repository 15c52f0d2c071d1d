"""Regions, endpoints and credentials, from the environment or given directly."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ..errors import CredentialsError
from .families import FAMILY_SPECS, PEOPLE_FAMILIES, family_spec

REGIONS = ("us", "eu")


@dataclass(frozen=True)
class Endpoints:
    """Root URL (scheme and host) per API family; the runner appends Customer.io's own paths."""

    pipelines: str
    track: str
    app: str

    @classmethod
    def for_region(cls, region: str, environ: Mapping[str, str] | None = None) -> Endpoints:
        environ = os.environ if environ is None else environ
        if region not in REGIONS:
            raise CredentialsError("unknown region", expected="us or eu", found=repr(region))
        roots = {
            name: (
                check_root_url(spec.url_override, environ[spec.url_override])
                if environ.get(spec.url_override)
                else spec.hosts[region]
            ).rstrip("/")
            for name, spec in FAMILY_SPECS.items()
        }
        return cls(**roots)

    def root(self, family: str) -> str:
        root: str = getattr(self, family)
        return root


def check_root_url(variable: str, value: str) -> str:
    """A URL override as given, or CredentialsError naming the variable (nothing sent yet)."""
    problem = _url_problem(value)
    if problem:
        raise CredentialsError(
            f"{variable} is not a usable root URL: {problem}",
            expected="http:// or https:// and a host, such as http://127.0.0.1:8710",
            found=repr(_without_password(value)),
        )
    return value


def _url_problem(value: str) -> str | None:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        return str(exc)
    if not parts.scheme:
        return "it has no scheme"
    if parts.scheme.lower() not in ("http", "https"):
        return f"the scheme must be http or https, not '{parts.scheme}'"
    if any(c.isspace() or ord(c) < 32 for c in value):
        return "it contains spaces or control characters"
    if not parts.hostname:
        return "it has no host"
    if parts.query or parts.fragment:
        return "it has a query or fragment (the runner appends paths to it)"
    return None


def _without_password(value: str) -> str:
    """The URL to print: a password in it is masked."""
    try:
        parts = urlsplit(value)
        if parts.password:
            return value.replace(f":{parts.password}@", ":***@", 1)
    except ValueError:
        pass
    return value


# Environment variable -> Credentials field.
CREDENTIAL_FIELDS = {
    "CUSTOMERIO_SITE_ID": "site_id",
    "CUSTOMERIO_TRACK_TOKEN": "track_token",
    "CUSTOMERIO_PIPELINES_KEY": "pipelines_key",
    "CUSTOMERIO_APP_TOKEN": "app_token",
}


@dataclass(frozen=True)
class Credentials:
    """API keys. repr() never shows them."""

    site_id: str = field(default="", repr=False)
    track_token: str = field(default="", repr=False)
    pipelines_key: str = field(default="", repr=False)
    app_token: str = field(default="", repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Credentials:
        environ = os.environ if environ is None else environ
        return cls(**{name: environ.get(var, "") for var, name in CREDENTIAL_FIELDS.items()})

    def value(self, variable: str) -> str:
        """The key held for an environment variable, e.g. CUSTOMERIO_APP_TOKEN."""
        key: str = getattr(self, CREDENTIAL_FIELDS[variable])
        return key

    @property
    def people_family(self) -> str:
        """Where identify/track/delete go: Pipelines when its key is set, else Track."""
        for name in PEOPLE_FAMILIES[:-1]:
            if not self.missing_for(name):
                return name
        return PEOPLE_FAMILIES[-1]

    def missing_for(self, family: str) -> list[str]:
        """Environment variables to set before `family` can be called."""
        return [var for var in family_spec(family).credentials if not self.value(var)]

    def secrets(self) -> list[str]:
        """Every value that must never reach output, as the transport sends it too: `KEY:` for
        Pipelines and `SITE_ID:KEY` for Track (the redactor adds their base64 forms). The site
        id is not secret on its own."""
        found = [s for s in (self.track_token, self.pipelines_key, self.app_token) if s]
        if self.pipelines_key:
            found.append(f"{self.pipelines_key}:")
        if self.track_token:
            found.append(f"{self.site_id}:{self.track_token}")
        return found


def resolve_region(
    cli_region: str | None, flow_region: str | None, environ: Mapping[str, str] | None = None
) -> str:
    """CLI --region beats CUSTOMERIO_REGION beats the flow's region; default us."""
    environ = os.environ if environ is None else environ
    region = cli_region or environ.get("CUSTOMERIO_REGION") or flow_region or "us"
    region = region.lower()
    if region not in REGIONS:
        raise CredentialsError("unknown region", expected="us or eu", found=repr(region))
    return region
