"""Payload renderers as generated Python: one function per step, walked once per row.

A payload like `{userId: "{{ row.id }}", traits: {plan: "{{ row.plan }}", source: web}}`
becomes

    def render(c):
        try:
            if type(c) is not dict: raise _Slow
            p0 = c["row"]
            if type(p0) is not dict: raise _Slow
            v0 = p0["id"]
            if type(v0) is not str or len(v0) > _max: v0 = _to_json(v0)
            ...
            return {_k0: v0, _k1: {_k2: v1, _k3: _k4}}
        except Exception:
            return _slow(c)

Constants are prebuilt, `{{ a.b | filter }}` lookups and text made only of them are inlined,
any other template calls its compiled Jinja. Anything unusual (a missing field, a value that
is not a string where text is built, an error) makes the whole payload render again through
`slow`, the tree of closures it replaces, so output and errors stay exactly what they were.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .jinja_env import OMIT, drop_omitted
from .model import Path_

# Big or deep payloads keep the closures: generated code would gain little and could hit
# the compiler's recursion limit.
_MAX_NODES = 2000
_MAX_DEPTH = 30
_EXPRESSION = re.compile(r"\{\{(?:(?!\{\{|\}\}).)*\}\}", re.DOTALL)


class _Slow(Exception):
    """Not the simple case: render through the closures."""


class _Generator:
    def __init__(self, parts: Any, locate: Callable[[Path_], Any], omits: bool) -> None:
        self.parts = parts
        self.locate = locate
        # With omits, the function also drops what `omit_if_empty` left out (drop_omitted):
        # `d` is set when a value might hold the marker or a container from the context, and
        # only then is the payload walked; otherwise it is all fresh containers and plain values,
        # which drop_omitted would only copy.
        self.omits = omits
        self.namespace: dict[str, Any] = {
            "_Slow": _Slow,
            "_to_json": parts.to_json,
            "_max": parts.max_size,
            "_render": parts.render,
            "_O": OMIT,
            "_dirty": might_omit,
        }
        self.lines: list[str] = []
        self.always_dirty = False
        self.prefixes: dict[tuple[str, ...], str] = {(): "c"}
        self.nodes = 0
        self.temps = 0

    def name(self, prefix: str, value: Any) -> str:
        name = f"{prefix}{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def temp(self) -> str:
        self.temps += 1
        return f"v{self.temps}"

    def mapping(self, path: tuple[str, ...]) -> str:
        """The variable holding context[path[0]][path[1]]..., checked to be a plain dict."""
        if path in self.prefixes:
            return self.prefixes[path]
        parent = self.mapping(path[:-1])
        var = f"p{len(self.prefixes)}"
        self.lines.append(f"{var} = {parent}[{self.name('_k', path[-1])}]")
        self.lines.append(f"if type({var}) is not dict: raise _Slow")
        self.prefixes[path] = var
        return var

    def lookup(self, path: list[str], filters: list[Callable[[Any], Any]]) -> str:
        """An expression for `{{ path | filters }}`, as compile_template's lookup does it."""
        expr = f"{self.mapping(tuple(path[:-1]))}[{self.name('_k', path[-1])}]"
        for function in filters:
            expr = f"{self.name('_f', function)}({expr})"
        return expr

    def value(self, value: Any, path: Path_, depth: int) -> str:
        self.nodes += 1
        if self.nodes > _MAX_NODES or depth > _MAX_DEPTH:
            raise _Slow
        if isinstance(value, str):
            return self.string(value, path) if self.parts.is_template(value) else self.const(value)
        if isinstance(value, dict):
            items = [
                f"{self.value(k, path, depth + 1)}: {self.value(v, (*path, k), depth + 1)}"
                for k, v in value.items()
            ]
            return "{" + ", ".join(items) + "}"
        if isinstance(value, list):
            items = [self.value(item, (*path, i), depth + 1) for i, item in enumerate(value)]
            return "[" + "".join(f"{item}, " for item in items) + "]"
        return self.const(value)

    def const(self, value: Any) -> str:
        if might_omit(value):
            self.always_dirty = True
        return self.name("_k", value)

    def check_dirty(self, var: str) -> None:
        """`d = 1` when a rendered value might need drop_omitted."""
        if self.omits:
            self.lines.append(f"if _dirty({var}): d = 1")

    def string(self, source: str, path: Path_) -> str:
        spec = self.parts.lookup_spec(source)
        var = self.temp()
        if spec is not None:  # `{{ row.email }}`: the value itself, made JSON as _render does
            self.lines.append(f"{var} = {self.lookup(*spec)}")
            if self.omits:  # a plain string without the marker is the common case
                self.lines.append(f"if type({var}) is not str or len({var}) > _max or _O in {var}:")
                self.lines.append(f"    {var} = _to_json({var})")
                self.lines.append(f"    if _dirty({var}): d = 1")
            else:
                self.lines.append(f"if type({var}) is not str or len({var}) > _max:")
                self.lines.append(f"    {var} = _to_json({var})")
            return var
        text = self.text(source)
        if text is not None:
            self.lines.append(f"{var} = {text}")
            self.lines.append(f"if len({var}) > _max: raise _Slow")
            if self.omits:
                self.lines.append(f"if _O in {var}: d = 1")
            return var
        try:
            compiled = self.parts.compile_template(source)
        except Exception:  # a syntax error: the closure reports it with its location
            leaf = self.parts.leaf(source, self.locate, path)
            self.lines.append(f"{var} = {self.name('_leaf', leaf)}(c)")
            self.check_dirty(var)
            return var
        location = self.name("_loc", self.locate(path))
        self.lines.append(f"{var} = _render({self.name('_t', compiled)}, c, {location})")
        self.check_dirty(var)
        return var

    def text(self, source: str) -> str | None:
        """`Hi {{ row.name }}!` as string concatenation, when every value is a string."""
        if "{%" in source or "{#" in source or "\r" in source:
            return None  # statements, comments, newlines Jinja would normalize
        pieces: list[str] = []
        position = 0
        for match in _EXPRESSION.finditer(source):
            spec = self.parts.lookup_spec(match.group(0))
            # Text goes through Jinja's getattr, for which `row.items` is dict's method.
            if spec is None or any(hasattr(dict, part) for part in spec[0]):
                return None
            literal = source[position : match.start()]
            if literal:
                pieces.append(self.const(literal))
            value = self.temp()
            self.lines.append(f"{value} = {self.lookup(*spec)}")
            self.lines.append(f"if type({value}) is not str: raise _Slow")
            pieces.append(value)
            position = match.end()
        rest = source[position:]
        if "{{" in rest or "}}" in rest or not pieces:
            return None
        if rest:
            pieces.append(self.const(rest))
        return "".join(["(", " + ".join(pieces), ")"])


def might_omit(value: Any) -> bool:
    """Whether drop_omitted could change `value` or copy a container of it: False for plain
    values (strings without the marker, numbers, booleans, None)."""
    kind = type(value)
    if kind is str:
        return OMIT in value
    return kind not in _PLAIN


_PLAIN = frozenset({int, float, bool, type(None)})


def generate_renderer(
    value: Any,
    locate: Callable[[Path_], Any],
    path: Path_,
    slow: Callable[[dict[str, Any]], Any],
    parts: Any,
    *,
    omits: bool = False,
) -> Callable[[dict[str, Any]], Any] | None:
    """A generated renderer giving what `slow` gives (with omits, what drop_omitted makes of
    it), or None when one would not pay."""
    if not isinstance(value, dict | list):
        return None  # a lone string or constant: the closure is as fast
    generator = _Generator(parts, locate, omits)
    try:
        result = generator.value(value, path, 0)
    except _Slow:
        return None
    if omits:
        start = "d = 1" if generator.always_dirty else "d = 0"
        body = [start, "if type(c) is not dict: raise _Slow", *generator.lines]
        body += [f"r = {result}", "return _drop(r) if d else r"]
        fallback = "return _drop(_slow(c))"
    else:
        body = ["if type(c) is not dict: raise _Slow", *generator.lines, f"return {result}"]
        fallback = "return _slow(c)"
    source = "\n".join(
        [
            "def render(c):",
            "    try:",
            *("        " + line for line in body),
            "    except Exception:",
            "        " + fallback,
        ]
    )
    namespace = {**generator.namespace, "_slow": slow, "_drop": drop_omitted}
    exec(compile(source, "<cio-flows payload>", "exec"), namespace)
    render: Callable[[dict[str, Any]], Any] = namespace["render"]
    return render
