"""Safe YAML with a file:line:col for every node, refused before it expands past the limits."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import yaml
from yaml.events import AliasEvent

from ..errors import FlowSyntaxError, Location
from .model import Path_, SourceMap

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# What a flow file may expand to. Aliases repeat what they point to, so 350 bytes can stand for
# billions of values; real flows have hundreds of values and a handful of levels.
MAX_NODES = 100_000
MAX_DEPTH = 64


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
        _Expansion(text, file).measure(root, 1)
        values: dict[Path_, Location] = {}
        keys: dict[Path_, Location] = {}
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
        mark = next(itertools.islice(aliases, index, None)).start_mark
        return (
            Location(self.file, mark.line + 1, mark.column + 1)
            if mark
            else Location(self.file, 1, 1)
        )


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        children: list[yaml.Node] = node.value
        return children
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
