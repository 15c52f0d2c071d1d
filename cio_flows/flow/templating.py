"""Sandboxed Jinja2 with native types for whole-expression strings.

`"{{ 49 }}"` renders to the number 49 and `"{{ row.tags }}"` stays a list; any other string renders
to a string. Undefined names are errors. Compiled templates are cached by their source text, so
rendering the same flow for a million rows compiles each template once.

The environment and helpers are in jinja_env.py, the checks before a run in template_checks.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import Template, TemplateSyntaxError, UndefinedError, nodes
from jinja2.runtime import Undefined
from jinja2.sandbox import SecurityError

from ..errors import Location, NotJsonError, TemplateError, TemplateLimitError
from .codegen import generate_renderer
from .jinja_env import ENVIRONMENT, as_expression, drop_omitted, is_template
from .model import Path_
from .sandbox import MAX_SIZE, render_budget, to_json

_WHOLE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>(?:(?!\{\{|\}\}).)*)\}\}\s*$", re.DOTALL)
# `{{ row.email }}`: the most common template, looked up without Jinja (10x faster per row).
# Optionally piped through argument-less filters: `{{ row.amount | float }}`.
_DOTTED_NAME = re.compile(
    r"^\s*\{\{\s*(?P<path>[A-Za-z]\w*(?:\.[A-Za-z]\w*)*)\s*"
    r"(?P<filters>(?:\|\s*[A-Za-z_]\w*\s*)*)\}\}\s*$"
)


@dataclass(frozen=True)
class Compiled:
    source: str
    render: Callable[[dict[str, Any]], Any]
    ast: nodes.Template


Filter = Callable[[Any], Any]


def _lookup_spec(source: str) -> tuple[list[str], list[Filter]] | None:
    """(path, filters) of a `{{ a.b | f }}` template that needs no Jinja, else None."""
    dotted = _DOTTED_NAME.match(source)
    if not dotted:
        return None
    filters = [f.strip() for f in dotted.group("filters").split("|")[1:]]
    functions: list[Filter] = []
    for name in filters:
        function = ENVIRONMENT.filters.get(name)
        # Filters that want the environment or context, or unknown ones, go the Jinja way.
        if function is None or hasattr(function, "jinja_pass_arg"):
            return None
        functions.append(function)
    path: list[str] = dotted.group("path").split(".")
    return path, functions


def row_column(source: str) -> str | None:
    """`x` for a template that is just `{{ row.x }}` (no filters), else None: its value, when
    a string, is what the template renders, so a caller may read it from the row directly."""
    spec = _lookup_spec(source)
    if spec is None or spec[1] or len(spec[0]) != 2 or spec[0][0] != "row":
        return None
    return spec[0][1]


# What a row_lookup gives for a row it leaves to the general way (render_string).
NOT_PLAIN: Any = object()


def row_lookup(source: str) -> Callable[[Any], Any] | None:
    """For a template that is `{{ row.a.b | f | g }}` (filters that need no context): a
    function of a row's data giving what rendering the template in the row's context gives,
    or NOT_PLAIN for a row the general way must render (a field missing or not in a plain
    mapping, a filter's error, a result that is not JSON), which then also raises the error.
    None for other templates. Only the row is read: a caller keeps `row` from being shadowed."""
    spec = _lookup_spec(source)
    if spec is None or len(spec[0]) < 2 or spec[0][0] != "row":
        return None
    path, filters = spec[0][1:], spec[1]

    def lookup(data: Any) -> Any:
        value = data
        for part in path:  # as the `{{ a.b }}` lookup walks it (compile_template)
            if type(value) is not dict or part not in value:
                return NOT_PLAIN
            value = value[part]
        try:
            for apply in filters:
                value = apply(value)
            return to_json(value)
        except Exception:
            return NOT_PLAIN

    return lookup


@lru_cache(maxsize=4096)
def compile_template(source: str) -> Compiled:
    """Compile once; raises jinja2.TemplateSyntaxError."""
    spec = _lookup_spec(source)
    if spec is not None:
        return _compile_lookup(source, *spec)
    return _compile_jinja(source)


def _compile_jinja(source: str) -> Compiled:
    match = _WHOLE_EXPRESSION.match(source)
    if match:
        expr = match.group("expr")
        ast = ENVIRONMENT.parse("{{" + expr + "}}")
        evaluate = ENVIRONMENT.compile_expression(expr, undefined_to_none=False)

        def render_native(context: dict[str, Any]) -> Any:
            value = evaluate(**context)
            if isinstance(value, Undefined):
                value._fail_with_undefined_error()
            return value

        return Compiled(source, render_native, ast)
    template = ENVIRONMENT.from_string(source)
    # Only statements ({% for %}) can repeat output; text without them renders in one go.
    render = (
        (lambda context: _render_text(template, context)) if "{%" in source else template.render
    )
    return Compiled(source, render, ENVIRONMENT.parse(source))


def _render_text(template: Template, context: dict[str, Any]) -> str:
    """The template's text, stopped as soon as it grows past the limit (a loop of big parts)."""
    parts: list[str] = []
    size = 0
    for part in template.generate(context):
        size += len(part)
        if size > MAX_SIZE:
            raise TemplateLimitError(f"a text of over {MAX_SIZE:,} characters")
        parts.append(part)
    return "".join(parts)


def _compile_lookup(source: str, path: list[str], filters: list[Filter]) -> Compiled:
    """A dotted path over mappings, then plain filters; anything else takes Jinja's own way."""
    slow = _compile_jinja(source)
    return Compiled(source, _lookup_render(path, filters, slow.render), slow.ast)


def _lookup_render(
    path: list[str], filters: list[Filter], slow: Callable[[dict[str, Any]], Any]
) -> Callable[[dict[str, Any]], Any]:
    def lookup(context: dict[str, Any]) -> Any:
        value: Any = context
        for part in path:
            if type(value) is not dict or part not in value:
                return slow(context)  # Jinja raises the proper undefined error
            value = value[part]
        for apply in filters:
            value = apply(value)
        return value

    return lookup


Locate = Callable[[Path_], Location]


def render_value(value: Any, context: dict[str, Any], locate: Locate, path: Path_ = ()) -> Any:
    """Render every template string inside a value (mapping keys too), keeping native types."""
    return compile_value(value, locate, path)(context)


Renderer = Callable[[dict[str, Any]], Any]


def compile_value(value: Any, locate: Locate, path: Path_ = ()) -> Renderer:
    """A function rendering `value` for a context: the walk over the value happens once, here.

    Static leaves are returned as they are; containers are rebuilt on every call, so no two
    renders share a mapping or list that a caller might change. The function is generated
    Python (see codegen.py): constants prebuilt, `{{ row.x }}` lookups inlined; whatever it
    cannot do the plain way, it leaves to the tree of closures below, which renders the same.
    """
    slow = _compile_tree(value, locate, path)
    return generate_renderer(value, locate, path, slow, _RenderParts()) or slow


def compile_payload(value: Any, locate: Locate) -> Renderer:
    """As compile_value, the result without what `omit_if_empty` left out (drop_omitted).

    The generated renderer drops the fields itself, and walks the payload again only when a
    value it rendered might hold the marker (most rows of most steps: never)."""
    slow = _compile_tree(value, locate, ())
    fast = generate_renderer(value, locate, (), slow, _RenderParts(), omits=True)
    return fast or (lambda context: drop_omitted(slow(context)))


class _RenderParts:
    """What generated renderers call back into (kept here: the templates' own machinery)."""

    is_template = staticmethod(is_template)
    lookup_spec = staticmethod(_lookup_spec)
    render = staticmethod(lambda compiled, context, location: _render(compiled, context, location))
    compile_template = staticmethod(compile_template)
    leaf = staticmethod(lambda value, locate, path: _compile_tree(value, locate, path))
    to_json = staticmethod(to_json)
    max_size = MAX_SIZE


def _compile_tree(value: Any, locate: Locate, path: Path_ = ()) -> Renderer:
    if isinstance(value, str):
        if not is_template(value):
            return lambda _context: value
        location = locate(path)
        try:
            compiled = compile_template(value)
        except TemplateSyntaxError:  # reported with its location on first render
            return lambda context: render_string(value, context, location)
        return lambda context: _render(compiled, context, location)
    if isinstance(value, dict):
        items = [
            (_compile_tree(k, locate, path), _compile_tree(v, locate, (*path, k)))
            for k, v in value.items()
        ]
        return lambda context: {key(context): item(context) for key, item in items}
    if isinstance(value, list):
        parts = [_compile_tree(item, locate, (*path, i)) for i, item in enumerate(value)]
        return lambda context: [part(context) for part in parts]
    return lambda _context: value


def render_string(source: str, context: dict[str, Any], location: Location | None) -> Any:
    try:
        compiled = compile_template(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"template syntax error: {exc.message}", location=location) from None
    return _render(compiled, context, location)


def _render(compiled: Compiled, context: dict[str, Any], location: Location | None) -> Any:
    try:
        with render_budget():
            return to_json(compiled.render(context))
    except TemplateLimitError as exc:
        raise TemplateError(f"template result too large: {exc}", location=location) from None
    except NotJsonError as exc:
        raise TemplateError(f"template result is not JSON: {exc}", location=location) from None
    except UndefinedError as exc:
        raise TemplateError(_undefined_reason(exc), location=location) from None
    except TemplateSyntaxError as exc:
        raise TemplateError(f"template syntax error: {exc.message}", location=location) from None
    except SecurityError as exc:
        raise TemplateError(f"not allowed in templates: {exc}", location=location) from None
    except Exception as exc:  # a template's own error, e.g. int('x'): name it, keep going
        reason = f"template failed: {type(exc).__name__}: {exc}"
        raise TemplateError(reason, location=location) from None


def _undefined_reason(exc: UndefinedError) -> str:
    message = exc.message or str(exc)
    found = re.match(r"'(\w+)' is undefined", message)
    if found:
        return f"undefined name '{found.group(1)}'"
    attr = re.match(r"'(.*)' has no attribute '(.+)'", message)
    if attr and attr.group(1).endswith("TemplateEnv object"):  # env.NAME of an unset variable
        return f"the environment variable {attr.group(2)} is not set (env.{attr.group(2)})"
    if attr:
        return f"undefined name or field '{attr.group(2)}'"
    return message


def evaluate_condition(source: str, context: dict[str, Any], location: Location | None) -> Any:
    """A condition written without braces, as in Ansible's `when:` (braces tolerated)."""
    compiled = _condition(source)
    if compiled is None:
        if source.strip().startswith("{{"):  # `{{ a }} and {{ b }}`: text, always truthy
            raise TemplateError(
                "a condition is one expression: text around or between braces renders to a"
                f" string, which is always true (found {source.strip()[:80]!r})",
                location=location,
            )
        return render_string(as_expression(source), context, location)  # its syntax error
    return _render(compiled, context, location)


@lru_cache(maxsize=4096)
def _condition(source: str) -> Compiled | None:
    """The condition as one native expression, braces optional; None when it is not one.
    A string literal holding braces (`x == "{{"`) stays an expression: as a template it would
    be text, rendered to the string "False", which is true."""
    text = source.strip()
    expr = text[2:-2] if text.startswith("{{") and text.endswith("}}") else text
    try:
        evaluate = ENVIRONMENT.compile_expression(expr, undefined_to_none=False)
        ast = ENVIRONMENT.parse("{{ (" + expr + ") }}")
    except TemplateSyntaxError:
        return None

    def render_native(context: dict[str, Any]) -> Any:
        value = evaluate(**context)
        if isinstance(value, Undefined):
            value._fail_with_undefined_error()
        return value

    spec = _lookup_spec("{{ " + expr + " }}")
    # `when: row.vip`: looked up without a Jinja context (9 us) when that reads what Jinja
    # reads: a name that is also a dict attribute (`row.items`) is Jinja's to resolve.
    if spec is not None and not any(hasattr(dict, part) for part in spec[0]):
        return Compiled(source, _lookup_render(*spec, render_native), ast)
    return Compiled(source, render_native, ast)
