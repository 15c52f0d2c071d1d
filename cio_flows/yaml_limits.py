"""Safe YAML with limits on what it expands to, for every YAML file cio-flows reads (flows,
cassettes, emulator workspaces).

Aliases repeat what they point to, so a few hundred bytes can stand for billions of values. The
composed node graph is measured before anything is built, in time proportional to the text:
PyYAML composes an alias as the very node its anchor names, so a node met a second time in a
walk in document order is an alias, and its expanded size (known by then) is added without
walking it again. The n-th such meeting is the n-th alias event of the text.

This module stands apart (PyYAML and the standard library only), so the emulator can use it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.events import AliasEvent

LOADER: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Limits:
    """What a YAML document may expand to.

    nodes: values in all, aliases expanded (None: as many as the text itself holds);
    aliased: values the aliases add beyond the text's own; depth: nesting levels.
    """

    nodes: int | None
    aliased: int
    depth: int
    what: str = "the file"  # how messages name the document


# Flows: hundreds of values and a handful of levels in real ones.
FLOW_NODES, FLOW_DEPTH = 100_000, 64
FLOW = Limits(FLOW_NODES, FLOW_NODES, FLOW_DEPTH, "the flow file")
# Recorded or hand-written data (cassettes, workspaces): as big as the text is, but aliases add
# no more than a flow may hold, and payloads nest a few levels under their records.
DATA = Limits(None, FLOW_NODES, FLOW_DEPTH + 16)


class YamlLimitError(ValueError):
    """A document past its Limits; line and column are 1-based."""

    def __init__(
        self,
        reason: str,
        line: int,
        column: int,
        expected: str | None = None,
        found: str | None = None,
    ) -> None:
        super().__init__(f"line {line}, column {column}: {reason}")
        self.reason = reason
        self.line = line
        self.column = column
        self.expected = expected
        self.found = found


def safe_load(text: str, limits: Limits = DATA) -> Any:
    """yaml.safe_load within `limits`: YamlLimitError past them, yaml.YAMLError if invalid."""
    loader = LOADER(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        measure(root, text, limits)
        return loader.construct_document(root)
    except RecursionError:  # the pure-Python composer, on nesting far past any limit
        raise YamlLimitError(f"{limits.what} nests too deep to read", 1, 1) from None
    finally:
        loader.dispose()


def measure(root: yaml.Node, text: str, limits: Limits) -> None:
    """YamlLimitError when the document of `text` composed as `root` is past `limits`."""
    _Expansion(text, limits).measure(root, 1)


class _Expansion:
    def __init__(self, text: str, limits: Limits) -> None:
        self.text = text
        self.limits = limits
        self.measured: dict[int, tuple[int, int]] = {}  # id(node) -> (size, height)
        self.open: set[int] = set()  # nodes being measured: an alias to one is a cycle
        self.total = 0  # values, aliases expanded
        self.aliased = 0  # values the aliases added
        self.aliases = 0

    def measure(self, node: yaml.Node, depth: int) -> tuple[int, int]:
        if depth > self.limits.depth:
            raise self._too_deep(_mark(node), depth)
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
            line, column = self._alias_at(index)
            raise YamlLimitError("an alias refers to a node that contains it", line, column)
        size, height = self.measured[id(target)]
        if depth + height > self.limits.depth:
            raise self._too_deep(self._alias_at(index), depth + height)
        self.aliased += size
        self._count(size, target, index)
        return size, height

    def _count(self, size: int, node: yaml.Node, alias: int | None) -> None:
        self.total += size
        limit = self.limits.nodes
        what = self.limits.what
        if limit is not None and self.total > limit:
            if alias is None:
                line, column = _mark(node)
                reason = f"{what} has more than {limit} values"
            else:
                line, column = self._alias_at(alias)
                reason = f"this alias expands {what} past {limit} values"
            raise YamlLimitError(
                reason,
                line,
                column,
                expected=f"at most {limit} values with aliases expanded",
                found=f"more than {limit}",
            )
        if alias is not None and self.aliased > self.limits.aliased:
            line, column = self._alias_at(alias)
            raise YamlLimitError(
                f"this alias makes the aliases of {what} repeat more than {self.limits.aliased}"
                " values",
                line,
                column,
                expected=f"aliases repeating at most {self.limits.aliased} values",
                found=f"more than {self.limits.aliased}",
            )

    def _too_deep(self, where: tuple[int, int], level: int) -> YamlLimitError:
        depth = self.limits.depth
        return YamlLimitError(
            f"{self.limits.what} nests deeper than {depth} levels",
            *where,
            expected=f"at most {depth} levels",
            found=f"level {level}",
        )

    def _alias_at(self, index: int) -> tuple[int, int]:
        """Where the index-th alias is written: only needed for an error, so parsed again then."""
        aliases = (e for e in yaml.parse(self.text, Loader=LOADER) if isinstance(e, AliasEvent))
        mark = next(itertools.islice(aliases, index, None)).start_mark
        return (mark.line + 1, mark.column + 1) if mark else (1, 1)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        children: list[yaml.Node] = node.value
        return children
    return []


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1
