"""`Workspace`: a Customer.io workspace (or the emulator) read as pandas DataFrames.

Every call goes through one Transport, so the App API's rate limit (10 requests/s by default,
see cio_flows.ratelimit) holds across calls, and reads are retried like any other.

This module connects and keeps the read cache; the reads and flow runs are mixins beside it
(people, segments, deliveries, flow_runs), so `Workspace` keeps every method in one place.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from .. import api
from ..errors import CredentialsError
from ..run.prepare import RunOptions
from ..wire.config import Credentials, Endpoints, resolve_region
from ..wire.kinds import Request, Response
from ..wire.settings import TransportSettings
from ..wire.transport import Transport
from . import cache as read_cache
from . import progress
from .deliveries import DeliveryReads
from .flow_runs import FlowRuns
from .freshness import Read, stamp
from .people import EXPORT_ABOVE, PeopleReads
from .segments import SegmentReads
from .sql import SqlReads

TARGETS = ("auto", "emulator", "env")


class Workspace(PeopleReads, SegmentReads, DeliveryReads, FlowRuns, SqlReads):
    """People, segments and flows of one workspace.

    Build one with `Workspace.connect()` (credentials from the environment when
    CUSTOMERIO_APP_TOKEN is set, else the emulator's demo workspace), `Workspace.from_env()` or
    `Workspace.emulator()`. Close it (or use `with`) to stop an emulator it started.
    """

    def __init__(
        self,
        endpoints: Endpoints,
        credentials: Credentials,
        *,
        settings: TransportSettings | None = None,
        options: RunOptions | None = None,
        progress: bool | None = None,
        label: str = "",
        emulator: Any = None,
        cache: read_cache.ReadCache | None = None,
        export_above: int = EXPORT_ABOVE,
    ) -> None:
        self._transport = Transport(endpoints, credentials, settings)
        self.cache = cache  # None: every read goes to the API
        self.export_above = export_above
        self.options = options or RunOptions()  # what flows run with: endpoints and keys
        self.progress = progress  # None: bars in a notebook or on a terminal, else off
        self.label = label or f"Customer.io at {endpoints.app}"
        self._emulator = emulator  # the Emulator this workspace started, if any
        # Public as `ws.emulator` too (notebooks inspect it); on an instance it hides the
        # `Workspace.emulator()` constructor, which mypy sees as assigning to a method.
        self.emulator = emulator  # type: ignore[method-assign]

    # --- connecting ----------------------------------------------------------------------------

    @classmethod
    def connect(
        cls,
        target: str = "auto",
        *,
        region: str | None = None,
        environ: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> Workspace:
        """Connect to a workspace; `target` picks which.

        "auto" (default): the workspace in the CUSTOMERIO_* variables when CUSTOMERIO_APP_TOKEN
        is set, else an emulator with the demo workspace. "env" or "emulator" to choose.

        cache: where reads are kept as Parquet (see cio_flows.analysis.cache). None (default):
        under the user's cache directory for a real workspace, off for an emulator started
        here; True: the default directory; a path: there; False: off. max_age: seconds (or a
        timedelta) after which a cached read is read again (default one day).
        """
        environ = os.environ if environ is None else environ
        if target not in TARGETS:
            raise ValueError(f"target must be one of {', '.join(TARGETS)}, not {target!r}")
        if target == "env" or (target == "auto" and environ.get("CUSTOMERIO_APP_TOKEN")):
            return cls.from_env(environ, region=region, **kwargs)
        return cls.emulator(environ=environ, **kwargs)

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        region: str | None = None,
        settings: TransportSettings | None = None,
        progress: bool | None = None,
        cache: read_cache.Setting = None,
        max_age: Any = read_cache.DEFAULT_MAX_AGE,
    ) -> Workspace:
        """CUSTOMERIO_APP_TOKEN (and the other keys, for running flows), CUSTOMERIO_REGION,
        and the CUSTOMERIO_*_URL overrides."""
        environ = dict(os.environ if environ is None else environ)
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
        settings = settings or TransportSettings()
        options = RunOptions(region=region, environ=environ, transport=settings)
        label = f"Customer.io workspace, region {region}"
        if endpoints.app != Endpoints.for_region(region, {}).app:
            label += f", App API at {endpoints.app}"
        identity = read_cache.workspace_identity(endpoints.app, region, credentials.app_token)
        return cls(
            endpoints,
            credentials,
            settings=settings,
            options=options,
            progress=progress,
            label=label,
            cache=read_cache.configured(cache, True, identity, max_age),
        )

    @classmethod
    def emulator(
        cls,
        workspace: str | Path | dict | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        settings: TransportSettings | None = None,
        progress: bool | None = None,
        cache: read_cache.Setting = None,
        max_age: Any = read_cache.DEFAULT_MAX_AGE,
        **emulator_args: Any,
    ) -> Workspace:
        """Start an in-process emulator (the demo workspace unless `workspace` is given).

        It accepts the keys in the CUSTOMERIO_* variables when set, else its demo keys, like
        `cio-flows run --emulator`. Extra arguments go to `Emulator` (limits, faults, db_path).
        """
        from ..emulator import Credentials as EmulatorCredentials
        from ..emulator import Emulator

        environ = os.environ if environ is None else environ
        keys = EmulatorCredentials.from_env(environ)
        emulator = Emulator(credentials=keys, workspace=workspace, **emulator_args).start()
        try:
            settings = settings or TransportSettings()
            options = api.options_for_emulator(
                emulator, RunOptions(environ=dict(environ), transport=settings)
            )
            credentials = Credentials.from_env(options.environ)
            endpoints = Endpoints.for_region("us", options.environ)
        except BaseException:
            emulator.close()
            raise
        name = "the demo workspace" if workspace is None else "a custom workspace"
        # Its data lives as long as this emulator: a nonce keeps another one's reads apart.
        nonce = os.urandom(8).hex()
        identity = read_cache.workspace_identity(emulator.url, "us", keys.app_key, nonce)
        return cls(
            endpoints,
            credentials,
            settings=settings,
            options=options,
            progress=progress,
            label=f"emulator with {name} at {emulator.url}",
            emulator=emulator,
            cache=read_cache.configured(cache, False, identity, max_age),
        )

    def close(self) -> None:
        self._transport.close()
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None
        if self._emulator is not None:
            self._emulator.close()
            self._emulator = self.emulator = None  # type: ignore[method-assign,assignment]

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Workspace: {self.label}>"

    @property
    def is_emulator(self) -> bool:
        return self._emulator is not None

    @property
    def requests_sent(self) -> int:
        """HTTP requests this workspace has sent (retries included); flows not counted."""
        return self._transport.stats["requests"]

    def _send(self, request: Request) -> Response:
        return self._transport.send(request)

    def _bar(self, total: int | None, description: str, unit: str = "person") -> progress.Progress:
        return progress.bar(progress.wanted(self.progress), total, description, unit)

    def _cached(
        self,
        call: str,
        params: dict[str, Any],
        refresh: bool,
        read: Callable[[], pd.DataFrame],
        max_age: Any = None,
    ) -> pd.DataFrame:
        """A read through the cache: answered from it unless refresh or older than max_age
        (this call's, else the cache's). Either way stamped with fetched_at and from_cache."""
        if self.cache is not None and not refresh:
            found = self.cache.get(call, params, read_cache.seconds(max_age))
            if found is not None:
                return found
        frame = stamp(read(), None, from_cache=False)
        if self.cache is not None:
            self.cache.put(call, params, frame)
        return frame

    def _fresh(self, frame: Read) -> Read:
        """A read that never goes through the cache, stamped as just read."""
        return stamp(frame, None, from_cache=False)

    def forget_reads(self) -> None:
        """Drop this workspace's cached reads: the next reads ask the API again. `run` and
        `resume` call it, since a flow may change people, segments and messages alike."""
        if self.cache is not None:
            self.cache.clear()
