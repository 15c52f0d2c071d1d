"""Fixed answers for documented operations the emulator has no model of.

For each one the answer is the lowest documented 2xx status with a body built from its response
schema: the documented example when it is valid, otherwise values generated from the schema
(every property, then only the required ones), the first candidate the schema accepts. Built
once per operation on first use and cached.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from . import Operation, deref, document, errors

MAX_DEPTH = 12
_STRING_BY_FORMAT = {
    "date-time": "2025-01-01T00:00:00Z",
    "date": "2025-01-01",
    "email": "person@example.com",
    "uri": "https://example.com",
    "url": "https://example.com",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "ipv4": "192.0.2.1",
}


def success_status(op: Operation) -> int:
    ok = [s for s in op.statuses if 200 <= s < 300]
    return ok[0] if ok else 200


def example(name: str, schema: Any, *, full: bool, use_examples: bool, depth: int = 0) -> Any:
    """A value for `schema` (OpenAPI 3.0/3.1) of document `name`, never null."""
    schema = deref(name, schema)
    if not isinstance(schema, dict):
        return {}
    if use_examples and "example" in schema and schema["example"] is not None:
        return copy.deepcopy(schema["example"])
    if use_examples and isinstance(schema.get("examples"), list) and schema["examples"]:
        return copy.deepcopy(schema["examples"][0])
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list):
        values = [v for v in schema["enum"] if v is not None]
        if values:
            return values[0]

    def sub(s: Any, d: int = depth + 1) -> Any:
        return example(name, s, full=full and d < MAX_DEPTH, use_examples=use_examples, depth=d)

    if "allOf" in schema:
        merged: Any = None
        for part in schema["allOf"]:
            merged = _merge(merged, sub(part, depth))
        rest = {k: v for k, v in schema.items() if k != "allOf"}
        if "properties" in rest or "required" in rest:
            merged = _merge(merged, sub(rest, depth))
        return merged
    for key in ("oneOf", "anyOf"):
        if schema.get(key):
            return sub(_non_null(schema[key])[0], depth)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind is None:
        kind = "object" if "properties" in schema else ("array" if "items" in schema else "string")
    if kind == "object":
        props: dict[str, Any] = schema.get("properties") or {}
        required = set(schema.get("required") or ())
        names = list(props) if full else [p for p in props if p in required]
        return {p: sub(props[p]) for p in names}
    if kind == "array":
        count = max(int(schema.get("minItems") or 0), 1 if full else 0)
        return [sub(schema.get("items") or {}) for _ in range(count)]
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        value = max(1, int(low) + 1) if isinstance(low, int | float) else 1
        return value if kind == "integer" else float(value)
    if kind == "boolean":
        return False
    text = _STRING_BY_FORMAT.get(str(schema.get("format")), "string")
    return text.ljust(int(schema.get("minLength") or 0), "x")


def _non_null(options: list[Any]) -> list[Any]:
    kept = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
    return kept or options


def _merge(a: Any, b: Any) -> Any:
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for k, v in b.items():
            out[k] = _merge(out[k], v) if k in out else v
        return out
    return b if b is not None else a


def answer(op: Operation) -> tuple[int, Any]:
    """(status, body) for `op`: body None means no body (e.g. 204)."""
    return _answer(op.document, op.method, op.path)


@cache
def _answer(name: str, method: str, path: str) -> tuple[int, Any]:
    op = Operation(name, method, path, document(name)["paths"][path][method.lower()])
    status = success_status(op)
    pointer = op.json_schema_pointer(status)
    if pointer is None:
        return status, None if status == 204 else {}
    response = op.response(status) or {}
    media: dict[str, Any] = next(
        (m for k, m in (response.get("content") or {}).items() if "json" in k), {}
    )
    schema = media.get("schema")
    candidates: list[Any] = []
    if "example" in media:
        candidates.append(media["example"])
    for named in (media.get("examples") or {}).values():
        value = deref(op.document, named)
        if isinstance(value, dict) and "value" in value:
            candidates.append(value["value"])
    for full in (True, False):
        for use_examples in (True, False):
            candidates.append(example(op.document, schema, full=full, use_examples=use_examples))
    for candidate in candidates:
        if not errors(op.document, pointer, candidate):
            return status, candidate
    raise LookupError(f"no schema-valid answer for {op.method} {op.path}")
