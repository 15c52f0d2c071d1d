"""Load a flow file: safe YAML that keeps file:line:col for every node, checked against the flow schema."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from .errors import FlowSchemaError, FlowSyntaxError, Location
from .model import READ_KINDS, STEP_KINDS, Condition, Flow, ForEach, SourceMap, Step, Wait
from .schema_store import is_valid, validator
from .templating import check_templates

if TYPE_CHECKING:
    from jsonschema import ValidationError

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_flow(path: str | Path) -> Flow:
    """Read, check and model a flow file. Raises FlowInputError subclasses with file:line:col."""
    path = Path(path)
    display = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FlowSyntaxError("flow file not found", location=Location(display, 1, 1)) from None
    except UnicodeDecodeError as exc:
        raise FlowSyntaxError(f"flow file is not UTF-8 ({exc.reason})") from None
    data, source = parse_yaml(text, display)
    check_structure(data, source)
    flow = build_flow(path, data, source)
    check_step_options(flow.all_steps)
    check_templates(flow)
    return flow


def parse_yaml(text: str, file: str) -> tuple[Any, SourceMap]:
    """Safe-load YAML into plain Python values plus a map of node positions."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            raise FlowSyntaxError("the flow file is empty", location=Location(file, 1, 1))
        values: dict[tuple, Location] = {}
        keys: dict[tuple, Location] = {}
        data = _to_python(loader, root, (), file, values, keys)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        location = Location(file, mark.line + 1, mark.column + 1) if mark else None
        reason = f"YAML syntax error: {exc.problem or exc.context}"
        raise FlowSyntaxError(reason, location=location) from None
    except yaml.YAMLError as exc:
        raise FlowSyntaxError(f"YAML error: {exc}", location=Location(file, 1, 1)) from None
    finally:
        loader.dispose()
    return data, SourceMap(file, values, keys)


def _mark(file: str, node: yaml.Node) -> Location:
    return Location(file, node.start_mark.line + 1, node.start_mark.column + 1)


def _to_python(loader, node, path, file, values, keys) -> Any:
    values[path] = _mark(file, node)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolves YAML merge keys (<<)
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool):
                raise FlowSyntaxError(
                    "mapping keys must be plain scalars", location=_mark(file, key_node)
                )
            key = str(key) if not isinstance(key, str) else key
            if key in result:
                raise FlowSyntaxError(f"duplicate key '{key}'", location=_mark(file, key_node))
            keys[(*path, key)] = _mark(file, key_node)
            result[key] = _to_python(loader, value_node, (*path, key), file, values, keys)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _to_python(loader, item, (*path, i), file, values, keys)
            for i, item in enumerate(node.value)
        ]
    value = loader.construct_object(node, deep=True)
    # Dates and times stay text: payloads want the string the author wrote.
    if not isinstance(value, str | int | float | bool | type(None)):
        return node.value
    return value


def check_structure(data: Any, source: SourceMap) -> None:
    """Validate against schemas/flow.schema.json; report the first problem in document order."""
    errors = (
        []
        if is_valid("flow.schema.json", data)
        else list(validator("flow.schema.json").iter_errors(data))
    )
    if errors:
        first = min(errors, key=lambda e: _position_key(source, e))
        raise _schema_problem(first, source)
    for section in ("steps", "finally"):
        for index, step in enumerate(data.get(section) or []):
            kinds = [key for key in step if key in STEP_KINDS]
            if len(kinds) != 1:
                found = ", ".join(kinds) if kinds else "none"
                raise FlowSchemaError(
                    "a step needs exactly one step kind",
                    location=source.locate((section, index)),
                    expected=f"one of {', '.join(sorted(STEP_KINDS))}",
                    found=found,
                )


def _position_key(source: SourceMap, error: ValidationError) -> tuple[int, int]:
    loc = source.locate(tuple(error.absolute_path))
    return (loc.line, loc.column)


def _schema_problem(error: ValidationError, source: SourceMap) -> FlowSchemaError:
    path = tuple(error.absolute_path)
    where = _describe_path(path)
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        unknown = extra[0]
        allowed = ", ".join(sorted(error.schema.get("properties", {})))
        is_step = len(path) == 2 and path[0] in ("steps", "finally")
        what = "unknown step kind or option" if is_step else "unknown key"
        return FlowSchemaError(
            f"{what} '{unknown}'" + (f" in {where}" if where else ""),
            location=source.locate((*path, unknown), key=True),
            expected=f"one of {allowed}",
            found=f"'{unknown}'",
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
    schema = error.schema
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


def _describe_path(path: tuple) -> str:
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


def check_step_options(steps: tuple[Step, ...]) -> None:
    for step in steps:
        if step.wait_until is not None and step.kind not in READ_KINDS:
            raise FlowSchemaError(
                f"wait_until re-runs its step, so it only goes on a read step, not {step.kind}",
                location=step.wait_until.condition.location,
                step=step.name,
                expected="one of " + ", ".join(sorted(READ_KINDS)),
                found=step.kind,
            )


def build_flow(path: Path, data: dict[str, Any], source: SourceMap) -> Flow:
    for_each = None
    if "for_each" in data:
        spec = data["for_each"]
        for_each = ForEach(spec.get("file"), spec.get("key"), source.locate(("for_each",)))
    return Flow(
        path=path,
        name=data["name"],
        description=data.get("description", ""),
        region=data.get("region"),
        vars=tuple((data.get("vars") or {}).items()),
        for_each=for_each,
        steps=_build_steps(data.get("steps") or [], "steps", source),
        finally_steps=_build_steps(data.get("finally") or [], "finally", source),
        source=source,
    )


def _build_steps(
    raw_steps: list[dict[str, Any]], section: str, source: SourceMap
) -> tuple[Step, ...]:
    steps = []
    for index, raw in enumerate(raw_steps):
        kind = next(key for key in raw if key in STEP_KINDS)
        path = (section, index)
        options = {k: v for k, v in raw.items() if k not in STEP_KINDS and k != "name"}
        payload = raw[kind]
        save = raw.get("save")
        steps.append(
            Step(
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
                options=options,
            )
        )
    return tuple(steps)


def _condition(raw: dict[str, Any], path: tuple, source: SourceMap) -> Condition | None:
    value = raw.get(path[-1])
    if value is None:
        return None
    return Condition(str(value).lower() if isinstance(value, bool) else value, source.locate(path))


def _expectations(value: Any, path: tuple, source: SourceMap) -> tuple[Condition, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    return tuple(
        Condition(str(item), source.locate((*path, i) if isinstance(value, list) else path))
        for i, item in enumerate(items)
    )


def _wait(value: Any, path: tuple, source: SourceMap) -> Wait | None:
    if value is None:
        return None
    if isinstance(value, str):
        return Wait(Condition(value, source.locate(path)))
    condition = Condition(value["condition"], source.locate((*path, "condition")))
    settings = {k: float(value[k]) for k in ("timeout", "interval") if k in value}
    return Wait(condition, **settings)
