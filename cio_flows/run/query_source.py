"""Rows from a SQL query (`--query SQL [--database URL]`, `for_each: {query:, database:}`).

Without a database URL the query runs in DuckDB, in process, which reads CSV, Parquet and JSON
files by path (`SELECT * FROM 'users.parquet'`; a flow's relative paths are from its folder).
With a SQLAlchemy URL (sqlite:///x.db, postgresql://..., snowflake://..., with the user's
driver) the rows stream from that database through a server-side cursor.

Either way the rows are read once, before anything is sent, into a JSON Lines spool that the
run reads like a data file: the same checks (keys, columns) and one consistent snapshot.
A URL's password never appears in a message.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import FlowInputError, Location
from .plain_values import plain

FETCH = 1000  # rows per round trip
EXTRA = "pip install 'cio-flows[sql]'"


def spool_query(sql: str, database: str | None, spool: Path, folder: Path, where: Location) -> int:
    """Run the query, write its rows to `spool` (one JSON object a line); how many rows.
    `folder`: where DuckDB resolves relative file paths."""
    batches = _sqlalchemy(sql, database, where) if database else _duckdb(sql, folder, where)
    names: Sequence[str] = next(batches)  # the column names come first, then rows in batches
    count = 0
    with spool.open("w", encoding="utf-8") as out:
        for batch in batches:
            for values in batch:
                record = {name: plain(value) for name, value in zip(names, values, strict=True)}
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
                count += 1
    return count


def _duckdb(sql: str, folder: Path, where: Location) -> Iterator[Any]:
    try:
        import duckdb
    except ImportError:
        raise _missing("a query without --database runs in DuckDB", "duckdb", where) from None
    connection = duckdb.connect(":memory:")
    try:
        connection.execute("SET file_search_path = ?", [str(folder)])
        try:
            cursor = connection.execute(sql)
        except duckdb.Error as exc:
            raise _failed(f"DuckDB: {exc}", sql, where) from None
        if cursor.description is None:
            raise _failed("the query returns no rows (not a SELECT?)", sql, where)
        yield [str(column[0]) for column in cursor.description]
        while True:
            try:
                batch = cursor.fetchmany(FETCH)
            except duckdb.Error as exc:
                raise _failed(f"DuckDB: {exc}", sql, where) from None
            if not batch:
                return
            yield batch
    finally:
        connection.close()


def _sqlalchemy(sql: str, database: str, where: Location) -> Iterator[Any]:
    try:
        import sqlalchemy
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
    except ImportError:
        raise _missing("--database reads through SQLAlchemy", "sqlalchemy", where) from None
    try:
        url = sqlalchemy.engine.make_url(database)
    except ArgumentError:
        raise FlowInputError(
            "the database is not a SQLAlchemy URL",
            location=where,
            expected="dialect[+driver]://user:password@host/database, e.g. sqlite:///users.db",
            found="a value that does not parse (not shown: it may hold a password)",
        ) from None
    shown = url.render_as_string(hide_password=True)
    try:
        engine = sqlalchemy.create_engine(url)
    except (NoSuchModuleError, ImportError) as exc:
        raise FlowInputError(
            f"no driver for {shown}: {exc}",
            location=where,
            expected=f"the database's driver installed (and SQLAlchemy: {EXTRA})",
            found=url.drivername,
        ) from None
    except (ArgumentError, SQLAlchemyError) as exc:  # its text shows the URL masked
        raise FlowInputError(
            f"the database URL is refused: {str(exc).splitlines()[0]}",
            location=where,
            expected="a SQLAlchemy URL, e.g. sqlite:///users.db",
            found=shown,
        ) from None
    try:
        with engine.connect() as connection:
            streaming = connection.execution_options(stream_results=True, yield_per=FETCH)
            result = streaming.execute(sqlalchemy.text(sql))
            if not result.returns_rows:
                raise _failed("the query returns no rows (not a SELECT?)", sql, where)
            yield [str(name) for name in result.keys()]  # noqa: SIM118 (a Result, not a dict)
            for part in result.partitions(FETCH):
                yield [tuple(row) for row in part]
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise _failed(f"{shown}: {reason}", sql, where) from None
    finally:
        engine.dispose()


def _missing(what: str, module: str, where: Location) -> FlowInputError:
    return FlowInputError(
        f"{what}, which is not installed: {EXTRA}",
        location=where,
        expected=f"the Python package {module}",
        found="not installed",
    )


def _failed(reason: str, sql: str, where: Location) -> FlowInputError:
    short = " ".join(sql.split())
    return FlowInputError(
        f"the query failed: {reason}",
        location=where,
        expected="a query that returns rows",
        found=short if len(short) <= 200 else short[:197] + "...",
    )
