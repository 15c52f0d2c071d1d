"""The flow schema check, worded for people: the first problem in document order, at its
file:line:col, with what was expected, what was found and a did-you-mean for unknown keys."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import FlowSchemaError
from ..wire import kinds as step_kinds
from .composition import USE
from .model import Path_, SourceMap
from .payloads import did_you_mean
from .schemas import FLOW_SCHEMA, error_schema, instance_keys, is_valid, validator

if TYPE_CHECKING:
    from jsonschema import ValidationError


def check_structure(data: Any, source: SourceMap) -> None:
    """Validate against schemas/flow.schema.json; report the first problem in document order."""
    errors = [] if is_valid(FLOW_SCHEMA, data) else list(validator(FLOW_SCHEMA).iter_errors(data))
    if errors:
        first = min(_root_causes(errors), key=lambda e: _position_key(source, e))
        raise _schema_problem(first, source)
    known = frozenset(step_kinds.names()) | {USE}
    for section in ("steps", "finally"):
        for index, step in enumerate(data.get(section) or []):
            kinds = [key for key in step if key in known]
            if len(kinds) != 1:
                found = ", ".join(kinds) if kinds else "none"
                raise FlowSchemaError(
                    "a step needs exactly one step kind",
                    location=source.locate((section, index)),
                    expected=f"one of {', '.join(sorted(known))}",
                    found=found,
                )
            if "with" in step and USE not in step:
                raise FlowSchemaError(
                    "'with' goes on a use step only (it sets the used flow's vars)",
                    location=source.locate((section, index, "with"), key=True),
                    expected="use: FILE next to it",
                    found=kinds[0],
                )


def _root_causes(errors: list[ValidationError]) -> list[ValidationError]:
    """Without 'missing key' errors for a mapping that has an unknown key: `stepz` explains `steps`."""
    unknown = {tuple(e.absolute_path) for e in errors if e.validator == "additionalProperties"}
    kept = [e for e in errors if e.validator != "required" or tuple(e.absolute_path) not in unknown]
    return kept or errors


def _position_key(source: SourceMap, error: ValidationError) -> tuple[int, int]:
    path = tuple(error.absolute_path)
    if error.validator == "additionalProperties":
        loc = source.locate((*path, _unknown_keys(error)[0]), key=True)
    else:
        loc = source.locate(path)
    return (loc.line, loc.column)


def _unknown_keys(error: ValidationError) -> list[str]:
    return sorted(instance_keys(error.instance) - set(error_schema(error).get("properties", {})))


def _schema_problem(error: ValidationError, source: SourceMap) -> FlowSchemaError:
    path = tuple(error.absolute_path)
    where = _describe_path(path)
    if error.validator == "additionalProperties":
        unknown = _unknown_keys(error)[0]
        known = sorted(error_schema(error).get("properties", {}))
        is_step = len(path) == 2 and path[0] in ("steps", "finally")
        what = "unknown step kind or option" if is_step else "unknown key"
        return FlowSchemaError(
            f"{what} '{unknown}'" + (f" in {where}" if where else ""),
            location=source.locate((*path, unknown), key=True),
            expected=f"one of {', '.join(known)}",
            found=f"'{unknown}'" + did_you_mean(unknown, known),
        )
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return FlowSchemaError(
            f"missing required key '{missing}'" + (f" in {where}" if where else ""),
            location=source.locate(path),
        )
    expected = _expected(error)
    return FlowSchemaError(
        f"invalid value for {where or 'the flow'}",
        location=source.locate(path),
        expected=expected,
        found=_describe_value(error.instance),
    )


def _expected(error: ValidationError) -> str:
    schema = error_schema(error)
    if error.validator == "const":
        return repr(schema["const"])
    if error.validator == "enum":
        return "one of " + ", ".join(repr(v) for v in schema["enum"])
    if error.validator == "type":
        types = schema["type"]
        return " or ".join(types) if isinstance(types, list) else types
    if error.validator == "pattern":
        return f"text matching {schema['pattern']}"
    if error.validator in ("minItems", "minProperties"):
        return f"at least {error.validator_value} item(s)"
    return error.message


def _describe_path(path: Path_) -> str:
    if not path:
        return ""
    text = str(path[0])
    for part in path[1:]:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return f"'{text}'"


def _describe_value(value: Any) -> str:
    kind = {
        dict: "mapping",
        list: "list",
        str: "string",
        bool: "boolean",
        int: "number",
        float: "number",
        type(None): "null",
    }.get(type(value), type(value).__name__)
    if isinstance(value, bool | int | float) or value is None:
        return f"{kind} {value!r}"
    if isinstance(value, str) and len(value) <= 40:
        return f"{kind} {value!r}"
    return kind
