"""Build the flow model (Flow, Step) from checked YAML data and its source map."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import FlowSchemaError
from ..wire import kinds as step_kinds
from .composition import LoadUsed, expand
from .model import Condition, ExpectStatus, Flow, ForEach, Path_, SourceMap, Step, Wait


def build_flow(
    path: Path,
    data: dict[str, Any],
    source: SourceMap,
    load_used: LoadUsed,
    using: tuple[Path, ...] = (),
) -> Flow:
    """The model of a checked flow file; `load_used` loads the files its `use` steps name."""
    for_each = None
    if "for_each" in data:
        spec = data["for_each"]
        location = source.locate(("for_each",))
        given = [name for name in ("file", "http", "query") if spec.get(name)]
        if len(given) > 1:
            raise FlowSchemaError(
                f"for_each takes rows from one source, not {' and '.join(given)}",
                location=location,
                expected="one of for_each.file, for_each.http, for_each.query",
                found=" and ".join(given),
            )
        if spec.get("database") and not spec.get("query"):
            raise FlowSchemaError(
                "for_each.database needs for_each.query (the SQL that reads the rows)",
                location=source.locate(("for_each", "database")),
                expected="for_each.query",
                found="database alone",
            )
        for_each = ForEach(
            spec.get("file"),
            spec.get("key"),
            location,
            spec.get("http"),
            spec.get("on_duplicate_key", "fail"),
            spec.get("query"),
            spec.get("database"),
        )
    known = frozenset(step_kinds.names())

    def build_step(raw: dict[str, Any], section: str, index: int) -> Step:
        return _build_step(raw, section, index, source, known)

    steps, finally_steps, merged = expand(path, data, source, build_step, load_used, using)
    return Flow(
        path=path,
        name=data["name"],
        description=data.get("description", ""),
        region=data.get("region"),
        vars=tuple((data.get("vars") or {}).items()),
        for_each=for_each,
        steps=steps,
        finally_steps=finally_steps,
        source=merged,
        tags=tuple(data.get("tags") or ()),
    )


def _build_step(
    raw: dict[str, Any], section: str, index: int, source: SourceMap, known: frozenset[str]
) -> Step:
    kind = next(key for key in raw if key in known)
    path = (section, index)
    payload = raw[kind]
    save = raw.get("save")
    return Step(
        kind=kind,
        payload={} if payload is None else payload,
        name=raw.get("name") or f"{kind} #{index + 1}",
        index=index,
        section=section,
        location=source.locate(path),
        save=save["name"] if isinstance(save, dict) else save,
        save_value=save.get("value") if isinstance(save, dict) else None,
        when=_condition(raw, (*path, "when"), source),
        expect=_expectations(raw.get("expect"), (*path, "expect"), source),
        wait_until=_wait(raw.get("wait_until"), (*path, "wait_until"), source),
        loop=raw.get("loop"),
        expect_status=_expect_status(raw.get("expect_status"), (*path, "expect_status"), source),
        validate=raw.get("validate", True) is not False,
        once=None if raw.get("once") is None else str(raw["once"]),
        once_location=source.locate((*path, "once")),
    )


def _expect_status(value: Any, path: Path_, source: SourceMap) -> ExpectStatus | None:
    """404, "404", "4xx" or a list of those (the schema has checked the forms)."""
    if value is None:
        return None
    ranges = []
    for item in value if isinstance(value, list) else [value]:
        text = str(item)
        if text.endswith("xx"):
            low = int(text[0]) * 100
            ranges.append((low, low + 99))
        else:
            ranges.append((int(text), int(text)))
    text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return ExpectStatus(tuple(ranges), text, source.locate(path))


def _condition(raw: dict[str, Any], path: Path_, source: SourceMap) -> Condition | None:
    value = raw.get(str(path[-1]))
    if value is None:
        return None
    return Condition(str(value).lower() if isinstance(value, bool) else value, source.locate(path))


def _expectations(value: Any, path: Path_, source: SourceMap) -> tuple[Condition, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    return tuple(
        Condition(str(item), source.locate((*path, i) if isinstance(value, list) else path))
        for i, item in enumerate(items)
    )


def _wait(value: Any, path: Path_, source: SourceMap) -> Wait | None:
    if value is None:
        return None
    if isinstance(value, str):
        return Wait(Condition(value, source.locate(path)))
    condition = Condition(value["condition"], source.locate((*path, "condition")))
    settings = {k: float(value[k]) for k in ("timeout", "interval") if k in value}
    return Wait(condition, **settings)
