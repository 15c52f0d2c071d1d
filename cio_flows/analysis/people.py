"""Workspace reads of people: search, attributes (bulk or by export), one person's details."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from ..wire.kinds import Request, Response
from . import exports, frames, reads

VIA = ("auto", "search", "export")
# Above this many people an export is cheaper than search (1 call / 1,000) + bulk attributes
# (1 call / 100): ~55 calls for 5,000 people, where an export takes a few calls and a wait.
EXPORT_ABOVE = 5000


class PeopleReads:
    """Workspace methods over people (mixed into Workspace)."""

    _send: Callable[[Request], Response]
    _bar: Callable[..., Any]
    _cached: Callable[..., pd.DataFrame]
    _fresh: Callable[..., Any]
    export_above: int

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
        max_age: Any = None,
    ) -> pd.DataFrame:
        """Everyone matching `filter` (everyone when None): id, email, cio_id and, unless
        attributes=False, one column per attribute.

        via="search": one search call per 1,000 people and one bulk attribute call per 100;
        via="export": an App API export (a few calls and a wait, whatever the size); "auto"
        (default) searches and switches to an export past `export_above` people. The same
        DataFrame either way. With a cache, a repeated read answers from it (refresh=True
        reads again; max_age, seconds or a timedelta, overrides the cache's for this call).
        `attrs["fetched_at"]` and `attrs["from_cache"]` say when it was read and from where."""
        if via not in VIA:
            raise ValueError(f"via must be one of {', '.join(VIA)}, not {via!r}")
        flt = filter or reads.EVERYONE
        params = {"filter": flt, "attributes": attributes}
        read = lambda: self._people(flt, attributes, via)  # noqa: E731
        return self._cached("people", params, refresh, read, max_age)

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
        return self._fresh(frames.people_frame(rows))

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
        series = pd.Series({**head, **dict(sorted(values.items()))}, name=str(ident), dtype=object)
        return self._fresh(series)

    def person_segments(self, ident: str, id_type: str = "id") -> pd.DataFrame:
        body = self._send(reads.person_segments(ident, id_type)).body or {}
        rows = body.get("segments") or []
        return self._fresh(
            pd.DataFrame(rows).reindex(columns=["id", "name", "type", "description"])
        )

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
        return self._fresh(table)
