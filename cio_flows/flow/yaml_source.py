"""Safe YAML with a file:line:col for every node, refused before it expands past the limits."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from ..errors import FlowSyntaxError, Location
from ..yaml_limits import FLOW, FLOW_DEPTH, FLOW_NODES, LOADER, YamlLimitError, measure
from .model import Path_, SourceMap

_Loader = LOADER

# What a flow file may expand to (yaml_limits.py). Aliases repeat what they point to, so 350
# bytes can stand for billions of values; real flows have hundreds of values and a few levels.
MAX_NODES = FLOW_NODES
MAX_DEPTH = FLOW_DEPTH


def read_text(path: Path, display: str) -> str:
    """The flow file's text; a missing, unreadable or non-UTF-8 file is a FlowSyntaxError."""
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
        measure(root, text, FLOW)
        values: dict[Path_, Location] = {}
        keys: dict[Path_, Location] = {}
        data = _to_python(loader, root, (), file, values, keys)
    except YamlLimitError as exc:
        raise FlowSyntaxError(
            exc.reason,
            location=Location(file, exc.line, exc.column),
            expected=exc.expected,
            found=exc.found,
        ) from None
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


def _mark(file: str, node: yaml.Node) -> Location:
    return Location(file, node.start_mark.line + 1, node.start_mark.column + 1)


def _to_python(
    loader: Any,
    node: yaml.Node,
    path: Path_,
    file: str,
    values: dict[Path_, Location],
    keys: dict[Path_, Location],
) -> Any:
    values[path] = _mark(file, node)
    if isinstance(node, yaml.MappingNode):
        # A key written here overrides one a merge (`<<: *base`) brings in; two written here
        # are a mistake. flatten_mapping puts the merged pairs first, later merges first.
        own = {id(key) for key, _ in node.value if key.tag != "tag:yaml.org,2002:merge"}
        loader.flatten_mapping(node)  # resolves YAML merge keys (<<)
        result: dict[str, Any] = {}
        written: set[str] = set()
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool):
                raise FlowSyntaxError(
                    "mapping keys must be plain scalars", location=_mark(file, key_node)
                )
            key = str(key) if not isinstance(key, str) else key
            if key in written and id(key_node) in own:
                raise FlowSyntaxError(f"duplicate key '{key}'", location=_mark(file, key_node))
            if id(key_node) in own:
                written.add(key)
            keys[(*path, key)] = _mark(file, key_node)
            result[key] = _to_python(loader, value_node, (*path, key), file, values, keys)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _to_python(loader, item, (*path, i), file, values, keys)
            for i, item in enumerate(node.value)
        ]
    value = loader.construct_object(node, deep=True)
    if isinstance(value, float) and not math.isfinite(value):
        # `.nan`, `.inf`: JSON has no form for them, and as a timeout or interval they hang.
        raise FlowSyntaxError(
            f"{node.value} is not a finite number",
            location=_mark(file, node),
            expected="a finite number (JSON has no NaN or infinity)",
            found=node.value,
        )
    # Dates and times stay text: payloads want the string the author wrote.
    if not isinstance(value, str | int | float | bool | type(None)):
        return node.value
    return value
