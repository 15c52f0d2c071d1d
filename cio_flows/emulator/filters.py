"""The App API's people filter grammar, checked and compiled to a SQL condition on `people p`.

FILTER = {"and": [FILTER, ...]} | {"or": [FILTER, ...]} | {"not": FILTER}
       | {"segment": {"id": N}} | {"attribute": {"field": F, "operator": "eq"|"exists", "value": V}}
Exactly one key per level. Values compare as the strings the App API shows (49 matches "49").
Compiling (rather than evaluating in Python) keeps dynamic segments current for free: they are
evaluated against the people table on every read.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

from .store import as_string

MAX_DEPTH = 32
OPERATORS = ("eq", "exists")
_COLUMNS = {"id": "p.id", "email": "p.email", "cio_id": "p.cio_id"}


class FilterError(ValueError):
    """A filter the App API would answer with 400."""


SegmentSql = Callable[[int, frozenset[int]], tuple[str, list[Any]]]


def compile_filter(
    flt: Any, segment_sql: SegmentSql, visited: frozenset[int] = frozenset(), depth: int = 0
) -> tuple[str, list[Any]]:
    """SQL condition and parameters for `flt`; raises FilterError for anything malformed."""
    if depth > MAX_DEPTH:
        raise FilterError("filter is nested too deeply")
    if not isinstance(flt, dict) or len(flt) != 1:
        raise FilterError("each filter must be an object with exactly one key")
    ((key, value),) = flt.items()
    if key in ("and", "or"):
        if not isinstance(value, list) or not value:
            raise FilterError(f"'{key}' must be a non-empty list of filters")
        parts = [compile_filter(f, segment_sql, visited, depth + 1) for f in value]
        joiner = " AND " if key == "and" else " OR "
        return "(" + joiner.join(sql for sql, _ in parts) + ")", [a for _, p in parts for a in p]
    if key == "not":
        sql, args = compile_filter(value, segment_sql, visited, depth + 1)
        return f"(NOT {sql})", args
    if key == "segment":
        if not isinstance(value, dict) or not _is_int(value.get("id")):
            raise FilterError("'segment' needs an integer 'id'")
        return segment_sql(int(value["id"]), visited)
    if key == "attribute":
        return _attribute(value)
    raise FilterError(f"unknown filter key '{key}'")


def _attribute(cond: Any) -> tuple[str, list[Any]]:
    if not isinstance(cond, dict):
        raise FilterError("'attribute' must be an object")
    field, op = cond.get("field"), cond.get("operator")
    if not isinstance(field, str) or not field:
        raise FilterError("'attribute' needs a 'field'")
    if op not in OPERATORS:
        raise FilterError(f"unsupported operator {op!r}: use one of {', '.join(OPERATORS)}")
    column = _COLUMNS.get(field)
    if op == "exists":
        if column:
            return f"({column} IS NOT NULL)", []
        return "EXISTS(SELECT 1 FROM attrs a WHERE a.pk=p.pk AND a.name=?)", [field]
    if "value" not in cond:
        raise FilterError("operator 'eq' needs a 'value'")
    value = cond["value"]
    if value is None or isinstance(value, dict | list):
        raise FilterError("'value' must be a string, number or boolean")
    text = as_string(value)
    if column:
        return f"({column} = ?)", [text]
    return "EXISTS(SELECT 1 FROM attrs a WHERE a.pk=p.pk AND a.name=? AND a.str=?)", [field, text]


def _is_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, str) and value.isdigit()


class SegmentResolver:
    """Turns `{"segment": {"id": N}}` into SQL: manual segments by membership, dynamic ones by
    compiling their own filter (cycles match nobody rather than looping)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __call__(self, seg_id: int, visited: frozenset[int]) -> tuple[str, list[Any]]:
        row = self.db.execute("SELECT type, filter FROM segments WHERE id=?", (seg_id,)).fetchone()
        if row is None or seg_id in visited:
            return "(0)", []
        kind, flt = row
        if kind == "manual":
            return "p.pk IN (SELECT pk FROM segment_members WHERE segment_id=?)", [seg_id]
        return compile_filter(json.loads(flt), self, visited | {seg_id})

    def condition(self, flt: Any) -> tuple[str, list[Any]]:
        return compile_filter(flt, self)

    def segment_condition(self, seg_id: int) -> tuple[str, list[Any]]:
        return self(seg_id, frozenset())
