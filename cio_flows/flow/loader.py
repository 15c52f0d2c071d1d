"""Load a flow file: safe YAML that keeps file:line:col for every node, checked against the flow schema."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from yaml.events import AliasEvent

from ..errors import FlowSchemaError, FlowSyntaxError, Location
from ..wire import kinds as step_kinds
from .composition import USE, expand
from .model import Condition, ExpectStatus, Flow, ForEach, SourceMap, Step, Wait
from .payloads import check_payload, did_you_mean
from .saved_names import check_saved_names
from .schemas import FLOW_SCHEMA, is_valid, validator
from .templating import check_templates

if TYPE_CHECKING:
    from jsonschema import ValidationError

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# What a flow file may expand to. Aliases repeat what they point to, so 350 bytes can stand for
# billions of values; real flows have hundreds of values and a handful of levels.
MAX_NODES = 100_000
MAX_DEPTH = 64


def load_flow(path: str | Path) -> Flow:
    """Read, check and model a flow file. Raises FlowInputError subclasses with file:line:col."""
    return _load(Path(path), ())


def _load(path: Path, using: tuple[Path, ...]) -> Flow:
    """A flow file, with the files that use it (outermost first): a used file is checked alone,
    then its steps join the using flow's (composition.py)."""
    display = str(path)
    data, source = parse_yaml(_read_text(path, display), display)
    check_structure(data, source)
    flow = build_flow(path, data, source, using)
    own = tuple(step for step in flow.all_steps if step.scope is None)
    check_step_options(own)
    check_templates(flow)
    check_saved_names(flow)
    check_payloads(flow)
    return flow


def _read_text(path: Path, display: str) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FlowSyntaxError("flow file not found", location=Location(display, 1, 1)) from None
    except OSError as exc:
        reason = f"cannot read the flow file: {exc.strerror or exc}"
        raise FlowSyntaxError(reason, location=Location(display, 1, 1)) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FlowSyntaxError(
            f"flow file is not UTF-8 ({exc.reason})",
            location=_byte_location(display, raw, exc.start),
            expected="UTF-8 text",
            found=f"byte 0x{raw[exc.start]:02x}",
        ) from None


def _byte_location(file: str, raw: bytes, offset: int) -> Location:
    """Line and column (in characters) of a byte offset into UTF-8 text."""
    before = raw[:offset]
    line_start = before.rfind(b"\n") + 1
    column = len(before[line_start:].decode("utf-8", errors="replace")) + 1
    return Location(file, before.count(b"\n") + 1, column)


def _reader_location(file: str, text: str, position: int) -> Location:
    raw = text.encode("utf-8")
    if _Loader is yaml.SafeLoader:  # the pure-Python reader counts characters, libyaml bytes
        position = len(text[:position].encode("utf-8"))
    return _byte_location(file, raw, position)


def parse_yaml(text: str, file: str) -> tuple[Any, SourceMap]:
    """Safe-load YAML into plain Python values plus a map of node positions.

    What the document expands to (aliases repeat what they point to) is measured on the
    composed node graph before anything is built, in time proportional to the text: an alias
    bomb is refused before it expands.
    """
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            raise FlowSyntaxError("the flow file is empty", location=Location(file, 1, 1))
        _Expansion(text, file).measure(root, 1)
        values: dict[tuple, Location] = {}
        keys: dict[tuple, Location] = {}
        data = _to_python(loader, root, (), file, values, keys)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        location = Location(file, mark.line + 1, mark.column + 1) if mark else None
        reason = f"YAML syntax error: {exc.problem or exc.context}"
        raise FlowSyntaxError(reason, location=location) from None
    except yaml.reader.ReaderError as exc:
        raise FlowSyntaxError(
            f"YAML error: {exc.reason}", location=_reader_location(file, text, exc.position)
        ) from None
    except yaml.YAMLError as exc:
        raise FlowSyntaxError(f"YAML error: {exc}", location=Location(file, 1, 1)) from None
    finally:
        loader.dispose()
    return data, SourceMap(file, values, keys)


class _Expansion:
    """Expanded size and depth of a composed YAML node graph, refused past the limits.

    PyYAML composes an alias as the very node its anchor names, so a node met a second time in
    a walk in document order is an alias: its expanded size (known by then) is added without
    walking it again. The n-th such meeting is the n-th alias event of the text.
    """

    def __init__(self, text: str, file: str) -> None:
        self.text = text
        self.file = file
        self.measured: dict[int, tuple[int, int]] = {}  # id(node) -> (size, height)
        self.open: set[int] = set()  # nodes being measured: an alias to one is a cycle
        self.total = 0
        self.aliases = 0

    def measure(self, node: yaml.Node, depth: int) -> tuple[int, int]:
        if depth > MAX_DEPTH:
            raise _too_deep(_mark(self.file, node), depth)
        self._count(1, node, None)
        self.open.add(id(node))
        size, height = 1, 1
        for child in _children(node):
            if id(child) in self.open or id(child) in self.measured:
                child_size, child_height = self._alias(child, depth)
            else:
                child_size, child_height = self.measure(child, depth + 1)
            size += child_size
            height = max(height, child_height + 1)
        self.open.discard(id(node))
        self.measured[id(node)] = (size, height)
        return size, height

    def _alias(self, target: yaml.Node, depth: int) -> tuple[int, int]:
        index = self.aliases
        self.aliases += 1
        if id(target) in self.open:
            raise FlowSyntaxError(
                "an alias refers to a node that contains it", location=self._alias_at(index)
            )
        size, height = self.measured[id(target)]
        if depth + height > MAX_DEPTH:
            raise _too_deep(self._alias_at(index), depth + height)
        self._count(size, target, index)
        return size, height

    def _count(self, size: int, node: yaml.Node, alias: int | None) -> None:
        self.total += size
        if self.total <= MAX_NODES:
            return
        if alias is None:
            reason, where = (
                f"the flow file has more than {MAX_NODES} values",
                _mark(self.file, node),
            )
        else:
            reason = f"this alias expands the flow file past {MAX_NODES} values"
            where = self._alias_at(alias)
        raise FlowSyntaxError(
            reason,
            location=where,
            expected=f"at most {MAX_NODES} values with aliases expanded",
            found=f"more than {MAX_NODES}",
        )

    def _alias_at(self, index: int) -> Location:
        """Where the index-th alias is written: only needed for an error, so parsed again then."""
        aliases = (e for e in yaml.parse(self.text, Loader=_Loader) if isinstance(e, AliasEvent))
        event = next(itertools.islice(aliases, index, None))
        return Location(self.file, event.start_mark.line + 1, event.start_mark.column + 1)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return node.value
    return []


def _too_deep(location: Location, level: int) -> FlowSyntaxError:
    return FlowSyntaxError(
        f"the flow file nests deeper than {MAX_DEPTH} levels",
        location=location,
        expected=f"at most {MAX_DEPTH} levels",
        found=f"level {level}",
    )


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
    return sorted(set(error.instance) - set(error.schema.get("properties", {})))


def _schema_problem(error: ValidationError, source: SourceMap) -> FlowSchemaError:
    path = tuple(error.absolute_path)
    where = _describe_path(path)
    if error.validator == "additionalProperties":
        unknown = _unknown_keys(error)[0]
        known = sorted(error.schema.get("properties", {}))
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
    reading = step_kinds.reading_kinds()
    for step in steps:
        if step.expect_status is not None and (step.loop is not None or step.wait_until):
            raise FlowSchemaError(
                "expect_status checks one answer: it cannot go with loop or wait_until",
                location=step.expect_status.location,
                step=step.name,
                expected="expect_status on a step without loop and wait_until",
                found="loop" if step.loop is not None else "wait_until",
            )
        if step.wait_until is not None and step.kind not in reading:
            raise FlowSchemaError(
                f"wait_until re-runs its step, so it only goes on a read step, not {step.kind}",
                location=step.wait_until.condition.location,
                step=step.name,
                expected="one of " + ", ".join(sorted(reading)),
                found=step.kind,
            )


def check_payloads(flow: Flow) -> None:
    """Each payload against its step's schema, templates standing for any value.

    Done here, where key positions are known, so an unknown field names its own line.
    """
    for step in flow.all_steps:
        if step.scope is not None or not step.validate:
            continue  # a used flow's steps were checked when it loaded
        base = (*step.path, step.kind)
        check_payload(
            step.kind,
            step.payload,
            lambda path, base=base: flow.locate((*base, *path)),
            locate_key=lambda path, base=base: flow.locate((*base, *path), key=True),
            allow_templates=True,
            step=step.name,
        )


def build_flow(
    path: Path, data: dict[str, Any], source: SourceMap, using: tuple[Path, ...] = ()
) -> Flow:
    for_each = None
    if "for_each" in data:
        spec = data["for_each"]
        for_each = ForEach(spec.get("file"), spec.get("key"), source.locate(("for_each",)))
    known = frozenset(step_kinds.names())

    def build_step(raw: dict[str, Any], section: str, index: int) -> Step:
        return _build_step(raw, section, index, source, known)

    steps, finally_steps, merged = expand(path, data, source, build_step, _load, using)
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
    options = {k: v for k, v in raw.items() if k not in known and k != "name"}
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
        options=options,
        expect_status=_expect_status(raw.get("expect_status"), (*path, "expect_status"), source),
        validate=raw.get("validate", True) is not False,
    )


def _expect_status(value: Any, path: tuple, source: SourceMap) -> ExpectStatus | None:
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
