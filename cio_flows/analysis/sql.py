"""`Workspace.sql`: SQL over the workspace's tables with DuckDB, reading the Parquet files of
the read cache, so a join or group-by runs out of core instead of in pandas memory.

Tables (each read only when the query names it, through the same reads as the methods):
    people           ws.people(): id, email, cio_id and one column per attribute
    messages         ws.messages(): one row per message, metric times as timestamps
    segments         ws.segments(): id, name, type, description, count
    segment_members  every segment's members: segment_id, id, email, cio_id
    activities       ws.activities(limit=ACTIVITIES_LIMIT): the most recent activities
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from . import cache as read_cache
from . import frames

ACTIVITIES_LIMIT = 10_000
TABLES = ("people", "messages", "segments", "segment_members", "activities")


class SqlReads:
    """Workspace.sql (mixed into Workspace)."""

    cache: read_cache.ReadCache | None
    people: Callable[..., pd.DataFrame]
    messages: Callable[..., pd.DataFrame]
    segments: Callable[..., pd.DataFrame]
    activities: Callable[..., pd.DataFrame]
    _membership: Callable[[Any], list[dict[str, Any]]]
    _scratch: tempfile.TemporaryDirectory[str] | None = None

    def sql(self, query: str, *, refresh: bool = False) -> pd.DataFrame:
        """Run `query` (DuckDB's SQL) over the tables it names; a DataFrame.

            ws.sql("select plan, count(*) as n from people group by plan order by n desc")

        Tables come from the read cache when fresh (refresh=True reads them again), else are
        read and written to it; without a cache, to a temporary folder this workspace keeps."""
        import duckdb

        named = [t for t in TABLES if re.search(rf"\b{t}\b", query, re.IGNORECASE)]
        if not named:
            raise ValueError(f"the query names none of the tables {', '.join(TABLES)}")
        connection = duckdb.connect()
        try:
            for table in named:
                path = self._table_file(table, refresh).as_posix().replace("'", "''")
                connection.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{path}')")
            return connection.sql(query).df()
        finally:
            connection.close()

    def _table_file(self, table: str, refresh: bool) -> Path:
        """The Parquet file holding `table`: the cache's, written by the read when absent."""
        call, params, read = self._table_read(table, refresh)
        store = self.cache if call in _CACHED_CALLS and self.cache is not None else None
        if store is None:
            store = self._scratch_cache()
            store.put(call, params, read())
        else:
            read()  # through the cache: answered from a fresh file or written to one
        return store.path(call, params)

    def _table_read(
        self, table: str, refresh: bool
    ) -> tuple[str, dict[str, Any], Callable[[], pd.DataFrame]]:
        from .reads import EVERYONE

        if table == "people":
            params = {"filter": EVERYONE, "attributes": True}
            return "people", params, lambda: self.people(refresh=refresh)
        if table == "messages":
            params = {"start": None, "end": None, "type": None}
            return "messages", params, lambda: self.messages(refresh=refresh)
        if table == "activities":
            params = {"type": None, "name": None, "customer_id": None, "limit": ACTIVITIES_LIMIT}
            return (
                "activities",
                params,
                lambda: self.activities(limit=ACTIVITIES_LIMIT, refresh=refresh),
            )
        if table == "segments":
            return "sql_segments", {}, lambda: self.segments()
        return "sql_segment_members", {}, self._all_members

    def _all_members(self) -> pd.DataFrame:
        parts = []
        for segment_id in self.segments(counts=False)["id"]:
            members = frames.identifiers_frame(self._membership(segment_id))
            members.insert(0, "segment_id", int(segment_id))
            parts.append(members)
        columns = ["segment_id", *frames.IDENTIFIER_COLUMNS]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)

    def _scratch_cache(self) -> read_cache.ReadCache:
        """Parquet files for tables the cache does not keep; removed with the workspace."""
        if self._scratch is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="cio-flows-sql-")
        return read_cache.ReadCache(Path(self._scratch.name), "tables", max_age=None)


# Reads that the cache keeps (the others are written to the scratch folder for each query).
_CACHED_CALLS = ("people", "messages", "activities")
