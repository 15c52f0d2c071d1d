"""App API answers -> pandas DataFrames, with the strings the App API returns turned into
numbers and booleans where a whole column allows it."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from typing import Any

import pandas as pd

IDENTIFIER_COLUMNS = ("id", "email", "cio_id")

# Numbers as Customer.io writes them. No leading '+' or zero, so phone numbers and zip codes
# stay text.
_NUMBER = re.compile(r"-?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?")
_BOOLEANS = {"true": True, "false": False}


def customer_row(identifiers: dict[str, Any], customer: dict[str, Any] | None) -> dict[str, Any]:
    """One person's row: identifiers first, then every attribute (values as the API sent them)."""
    row: dict[str, Any] = {name: identifiers.get(name) for name in IDENTIFIER_COLUMNS}
    if customer is None:
        return row
    for name, value in (customer.get("identifiers") or {}).items():
        if name in IDENTIFIER_COLUMNS and row.get(name) in (None, ""):
            row[name] = value
    for name, value in (customer.get("attributes") or {}).items():
        if name not in IDENTIFIER_COLUMNS:
            row[name] = value
    if "unsubscribed" not in row and "unsubscribed" in customer:
        row["unsubscribed"] = customer["unsubscribed"]
    return row


def people_frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows))
    for name in IDENTIFIER_COLUMNS:
        if name not in frame.columns:
            frame[name] = pd.Series(dtype=object)
    ordered = [
        *IDENTIFIER_COLUMNS,
        *sorted(c for c in frame.columns if c not in IDENTIFIER_COLUMNS),
    ]
    return time_columns(coerce_columns(frame[ordered]))


# Unix seconds between 1973 and 2286: a `*_at` column of such numbers is a time, not a count.
_UNIX_RANGE = (1e8, 1e10)


def time_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """`created_at`, `updated_at` and other `*_at` columns of unix seconds as UTC datetimes."""
    for name in frame.columns:
        column = frame[name]
        if not str(name).endswith("_at") or not pd.api.types.is_numeric_dtype(column):
            continue
        present = column.dropna()
        if len(present) and present.between(*_UNIX_RANGE).all():
            frame[name] = timestamps(column)
    return frame


def coerce_columns(frame: pd.DataFrame, skip: Iterable[str] = IDENTIFIER_COLUMNS) -> pd.DataFrame:
    """Columns whose every present value reads as a number (or true/false) get that type."""
    skip = set(skip)
    out = frame.copy()
    for name in out.columns:
        if name in skip or not _is_text(out[name]):
            continue
        converted = _convert(out[name])
        if converted is not None:
            out[name] = converted
    return out


def _is_text(column: pd.Series) -> bool:
    # object in pandas 2; the "str" dtype in pandas 3
    return column.dtype == object or isinstance(column.dtype, pd.StringDtype)


def _convert(column: pd.Series) -> pd.Series | None:
    present = column.dropna()
    if present.empty:
        return None
    values = present.tolist()
    if all(isinstance(v, bool) or (isinstance(v, str) and v in _BOOLEANS) for v in values):
        mapped = column.map(lambda v: v if v is None or isinstance(v, bool) else _BOOLEANS.get(v))
        return mapped.astype("boolean" if len(present) < len(column) else bool)
    if not all(_is_number(v) for v in values):
        return None
    numbers = pd.to_numeric(column)
    if all(_is_integer(v) for v in values):
        return numbers.astype("Int64" if len(present) < len(column) else "int64")
    return numbers


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    return isinstance(value, str) and _NUMBER.fullmatch(value) is not None


def _is_integer(value: Any) -> bool:
    if isinstance(value, int) and not isinstance(value, bool):
        return True
    return isinstance(value, str) and value.lstrip("-").isdigit()


def value_of(text: Any) -> Any:
    """One attribute value as the number or boolean it spells, else unchanged."""
    if isinstance(text, str):
        if text in _BOOLEANS:
            return _BOOLEANS[text]
        if _NUMBER.fullmatch(text):
            return int(text) if text.lstrip("-").isdigit() else float(text)
    return text


def identifiers_frame(identifiers: Iterable[dict[str, Any]]) -> pd.DataFrame:
    rows = [{name: ident.get(name) for name in IDENTIFIER_COLUMNS} for ident in identifiers]
    return pd.DataFrame(rows, columns=list(IDENTIFIER_COLUMNS))


def timestamps(column: pd.Series) -> pd.Series:
    """Unix seconds -> timezone-aware datetimes (UTC); datetimes are returned as they are."""
    if pd.api.types.is_datetime64_any_dtype(column):
        return column
    return pd.to_datetime(pd.to_numeric(column, errors="coerce"), unit="s", utc=True)


def export_rows(data: bytes) -> list[dict[str, Any]]:
    """A people export file (CSV, header row) as rows shaped like customer_row's: identifiers
    always present (None when empty), attributes only when set (an empty cell is unset)."""
    rows = []
    for item in csv.DictReader(io.StringIO(data.decode("utf-8"))):
        row: dict[str, Any] = {name: item.pop(name, "") or None for name in IDENTIFIER_COLUMNS}
        row.update((name, value) for name, value in item.items() if value != "")
        rows.append(row)
    return rows
