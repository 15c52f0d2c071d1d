"""`Workspace`: a Customer.io workspace (or the emulator) read as pandas DataFrames.

Every call goes through one Transport, so the App API's rate limit (10 requests/s by default,
see cio_flows.ratelimit) holds across calls, and reads are retried like any other.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from .. import api
from ..errors import CredentialsError
from ..run.prepare import RunOptions
from ..wire.config import Credentials, Endpoints, resolve_region
from ..wire.kinds import Request, Response
from ..wire.transport import Transport, TransportSettings
from . import cache as read_cache
from . import exports, flows, frames, progress, reads
from .deliveries import DeliveryReads
from .paths import find_path

TARGETS = ("auto", "emulator", "env")
VIA = ("auto", "search", "export")
# Above this many people an export is cheaper than search (1 call / 1,000) + bulk attributes
# (1 call / 100): ~55 calls for 5,000 people, where an export takes a few calls and a wait.
EXPORT_ABOVE = 5000


class Workspace(DeliveryReads):
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
        self.emulator = emulator  # the Emulator this workspace started, if any

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
        if self.emulator is not None:
            self.emulator.close()
            self.emulator = None

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Workspace: {self.label}>"

    @property
    def is_emulator(self) -> bool:
        return self.emulator is not None

    @property
    def requests_sent(self) -> int:
        """HTTP requests this workspace has sent (retries included); flows not counted."""
        return self._transport.stats["requests"]

    def _send(self, request: Request) -> Response:
        return self._transport.send(request)

    def _bar(self, total: int | None, description: str, unit: str = "person") -> progress.Progress:
        return progress.bar(progress.wanted(self.progress), total, description, unit)

    def _cached(self, call: str, params: dict[str, Any], refresh: bool, read: Any) -> pd.DataFrame:
        """A read through the cache: answered from it unless refresh or too old."""
        if self.cache is not None and not refresh:
            found = self.cache.get(call, params)
            if found is not None:
                return found
        frame = read()
        if self.cache is not None:
            self.cache.put(call, params, frame)
        return frame

    # --- people ------------------------------------------------------------------------------

    def search(
        self, filter: dict[str, Any] | None = None, *, stop_after: int | None = None
    ) -> list[dict[str, Any]] | None:
        """Identifiers ({id, email, cio_id}) of everyone matching an App API filter
        (None when there are more than `stop_after`)."""
        found: list[dict[str, Any]] = []
        bar = self._bar(None, "searching")
        try:
            page = lambda start: reads.search_page(filter or reads.EVERYONE, start)  # noqa: E731
            for body in reads.pages(self._send, page, "identifiers"):
                identifiers = body.get("identifiers") or []  # Customer.io may send null
                if not identifiers:  # older answers carry only `ids`
                    identifiers = [{"id": i} for i in body.get("ids") or []]
                found.extend(identifiers)
                bar.update(len(identifiers))
                if stop_after is not None and len(found) > stop_after:
                    return None
        finally:
            bar.close()
        return found

    def people(
        self,
        filter: dict[str, Any] | None = None,
        attributes: bool = True,
        *,
        via: str = "auto",
        refresh: bool = False,
    ) -> pd.DataFrame:
        """Everyone matching `filter` (everyone when None): id, email, cio_id and, unless
        attributes=False, one column per attribute.

        via="search": one search call per 1,000 people and one bulk attribute call per 100;
        via="export": an App API export (a few calls and a wait, whatever the size); "auto"
        (default) searches and switches to an export past `export_above` people. The same
        DataFrame either way. With a cache, a repeated read answers from it (refresh=True
        reads again)."""
        if via not in VIA:
            raise ValueError(f"via must be one of {', '.join(VIA)}, not {via!r}")
        flt = filter or reads.EVERYONE
        params = {"filter": flt, "attributes": attributes}
        return self._cached("people", params, refresh, lambda: self._people(flt, attributes, via))

    def _people(self, flt: dict[str, Any], attributes: bool, via: str) -> pd.DataFrame:
        if via == "export":
            return self._people_export(flt, attributes)
        limit = self.export_above if via == "auto" and attributes else None
        identifiers = self.search(flt, stop_after=limit)
        if identifiers is None:  # more than export_above people
            return self._people_export(flt, attributes)
        if not attributes:
            return frames.identifiers_frame(identifiers)
        return self.attributes_of(identifiers)

    def _people_export(self, flt: dict[str, Any], attributes: bool) -> pd.DataFrame:
        data = exports.run(self._send, exports.customers_request(flt), self._bar)
        if not attributes:
            return frames.identifiers_frame(frames.export_rows(data))
        return frames.people_frame(frames.export_rows(data))

    def attributes_of(self, identifiers: list[dict[str, Any]]) -> pd.DataFrame:
        """Attribute columns for people given by identifiers, read 100 at a time."""
        customers = self._bulk_read(identifiers)
        rows = []
        for ident in identifiers:
            key = reads.lookup_key(ident)
            rows.append(frames.customer_row(ident, customers.get(key) if key else None))
        return frames.people_frame(rows)

    def _bulk_read(self, identifiers: list[dict[str, Any]]) -> dict[tuple[str, str], dict]:
        """(id_type, value) -> customer. Grouped by id type: one kind of id per call."""
        wanted: dict[str, dict[str, None]] = {}  # id_type -> values, ordered and unique
        for ident in identifiers:
            key = reads.lookup_key(ident)
            if key:
                wanted.setdefault(key[0], {})[key[1]] = None
        customers: dict[tuple[str, str], dict] = {}
        bar = self._bar(sum(map(len, wanted.values())), "attributes")
        try:
            for id_type, values in wanted.items():
                for batch in reads.batches(list(values)):
                    body = self._send(reads.bulk_attributes(batch, id_type)).body or {}
                    for item in body.get("customers") or []:
                        customer = item.get("customer") or {}
                        value = (customer.get("identifiers") or {}).get(id_type)
                        if value is not None:
                            customers[(id_type, str(value))] = customer
                    bar.update(len(batch))
        finally:
            bar.close()
        return customers

    def person(self, ident: str, id_type: str = "id") -> pd.Series:
        """One person's identifiers and attributes, numbers and booleans converted."""
        body = self._send(reads.person_attributes(ident, id_type)).body or {}
        customer = body.get("customer") or {}
        row = frames.customer_row(customer.get("identifiers") or {}, customer)
        values = {
            k: (v if k in frames.IDENTIFIER_COLUMNS else frames.value_of(v)) for k, v in row.items()
        }
        head = {k: values.pop(k) for k in frames.IDENTIFIER_COLUMNS}
        return pd.Series({**head, **dict(sorted(values.items()))}, name=str(ident), dtype=object)

    def person_segments(self, ident: str, id_type: str = "id") -> pd.DataFrame:
        body = self._send(reads.person_segments(ident, id_type)).body or {}
        rows = body.get("segments") or []
        return pd.DataFrame(rows).reindex(columns=["id", "name", "type", "description"])

    def person_activities(self, ident: str, limit: int = 50, id_type: str = "id") -> pd.DataFrame:
        """The most recent `limit` activities (events, page views, messages), newest first."""
        rows: list[dict[str, Any]] = []
        page_size = max(1, min(limit, reads.ACTIVITIES_PAGE))

        def page(start: str):
            return reads.person_activities(ident, id_type, start, page_size)

        for body in reads.pages(self._send, page, "activities"):
            rows.extend(body.get("activities") or [])
            if len(rows) >= limit:
                break
        table = pd.DataFrame(rows[:limit]).reindex(
            columns=["timestamp", "type", "name", "data", "delivery_id", "delivery_type"]
        )
        table["timestamp"] = frames.timestamps(table["timestamp"])
        return table

    # --- segments ----------------------------------------------------------------------------

    def segments(self, counts: bool = True) -> pd.DataFrame:
        """id, name, type, description and (one call per segment) the member count."""
        listed = (self._send(reads.list_segments()).body or {}).get("segments") or []
        table = pd.DataFrame(listed).reindex(columns=["id", "name", "type", "description"])
        if counts:
            bar = self._bar(len(listed), "segment counts", unit="segment")
            try:
                values = []
                for segment_id in table["id"]:
                    body = self._send(reads.segment_count(segment_id)).body or {}
                    values.append(body.get("count"))
                    bar.update()
            finally:
                bar.close()
            table["count"] = pd.array(values, dtype="Int64")
        return table

    def segment_members(self, segment_id: int | str, attributes: bool = False) -> pd.DataFrame:
        """Members' identifiers (and attributes with attributes=True), every page followed."""
        identifiers = self._membership(segment_id)
        if attributes:
            return self.attributes_of(identifiers)
        return frames.identifiers_frame(identifiers)

    def _membership(self, segment_id: int | str) -> list[dict[str, Any]]:
        members: list[dict[str, Any]] = []
        page = lambda start: reads.membership_page(segment_id, start)  # noqa: E731
        for body in reads.pages(self._send, page, "ids"):
            identifiers = body.get("identifiers") or [{"id": i} for i in body.get("ids") or []]
            members.extend(identifiers)
        return members

    def overlap(
        self, segment_ids: list[int] | None = None, normalize: bool = False
    ) -> pd.DataFrame:
        """Square table of people in both segments (the diagonal is each segment's size).

        normalize=True gives the share of the row's segment that is also in the column's.
        Labels are segment names (with the id when two segments share a name).
        """
        listed = self.segments(counts=False)
        if segment_ids is not None:
            listed = listed[listed["id"].isin(segment_ids)]
        labels = _labels(listed)
        bar = self._bar(len(listed), "memberships", unit="segment")
        members: dict[str, set[tuple[str, str]]] = {}
        try:
            for segment_id, label in zip(listed["id"], labels, strict=True):
                found = self._membership(segment_id)
                members[label] = {k for k in map(reads.lookup_key, found) if k}
                bar.update()
        finally:
            bar.close()
        table = pd.DataFrame(
            [[len(members[a] & members[b]) for b in labels] for a in labels],
            index=pd.Index(labels, name="segment"),
            columns=pd.Index(labels, name="also in"),
        )
        if normalize:
            sizes = pd.Series({label: len(members[label]) for label in labels})
            table = table.div(sizes.replace(0, pd.NA), axis=0).astype(float).fillna(0.0)
        return table

    # --- flows -------------------------------------------------------------------------------

    # Relative flow and data paths go through find_path: a notebook's working directory depends
    # on how it was started (JupyterLab, papermill from the repository root, elsewhere).

    def _flow_options(self, data: str | Path | None, vars: dict[str, Any]) -> RunOptions:
        return replace(
            self.options,
            vars={name: str(value) for name, value in vars.items()},
            data=find_path(data) if data is not None else None,
        )

    def plan_table(
        self, flow_path: str | Path, data: str | Path | None = None, **vars: Any
    ) -> pd.DataFrame:
        """The requests a run would send, one row each (keys never shown); sends nothing.
        Relative paths: see `find_path`."""
        return flows.plan_table(find_path(flow_path), self._flow_options(data, vars))

    def run(
        self, flow_path: str | Path, data: str | Path | None = None, **vars: Any
    ) -> pd.DataFrame:
        """Run a flow against this workspace: one row per step result (step, kind, row,
        status, ms, error, ...); the RunSummary is in `.attrs["summary"]`. Relative paths: see
        `find_path`. Runs through `cio_flows.run_flow`: journaled like `cio-flows run` (the run id
        is `.attrs["summary"].run_id`), so `resume` can finish it."""
        return flows.run_table(find_path(flow_path), self._flow_options(data, vars))

    def resume(
        self, flow_path: str | Path, run_id: str, *, resend_unknown: bool = False
    ) -> pd.DataFrame:
        """Run again what did not succeed in run `run_id` (its vars and data from the journal),
        as `cio-flows run --resume` does; a table like `run`'s."""
        options = replace(self.options, resume=run_id, resend_unknown=resend_unknown)
        return flows.run_table(find_path(flow_path), options)


def _labels(segments: pd.DataFrame) -> list[str]:
    names = [str(n) for n in segments["name"]]
    return [
        name if names.count(name) == 1 else f"{name} ({segment_id})"
        for name, segment_id in zip(names, segments["id"], strict=True)
    ]
