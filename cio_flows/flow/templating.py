"""Sandboxed Jinja2 with native types for whole-expression strings.

`"{{ 49 }}"` renders to the number 49 and `"{{ row.tags }}"` stays a list; any other string renders
to a string. Undefined names are errors. Compiled templates are cached by their source text, so
rendering the same flow for a million rows compiles each template once.
"""

from __future__ import annotations

import re
import uuid as uuid_module
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from jinja2 import (
    StrictUndefined,
    Template,
    TemplateSyntaxError,
    UndefinedError,
    meta,
    nodes,
    pass_context,
)
from jinja2.runtime import Undefined
from jinja2.sandbox import SecurityError

from ..errors import Location, TemplateError
from ..wire.timestamps import to_unix
from .codegen import generate_renderer
from .sandbox import (
    CREDENTIAL_VARS,
    MAX_SIZE,
    NotJsonError,
    Sandbox,
    TemplateLimitError,
    is_secret_name,
    to_json,
)

if TYPE_CHECKING:
    from .model import Flow

_WHOLE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>(?:(?!\{\{|\}\}).)*)\}\}\s*$", re.DOTALL)
_TEMPLATE_MARKERS = ("{{", "{%", "{#")
# `{{ row.email }}`: the most common template, looked up without Jinja (10x faster per row).
# Optionally piped through argument-less filters: `{{ row.amount | float }}`.
_DOTTED_NAME = re.compile(
    r"^\s*\{\{\s*(?P<path>[A-Za-z]\w*(?:\.[A-Za-z]\w*)*)\s*"
    r"(?P<filters>(?:\|\s*[A-Za-z_]\w*\s*)*)\}\}\s*$"
)

# Names every template can use besides the flow's vars.
RUN_NAMES = frozenset({"row", "steps", "run", "env", "item", "response"})


def now() -> str:
    """The current UTC time as ISO-8601 (what Pipelines wants for timestamps and createdAt)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def unix_now() -> int:
    """The current UTC time as unix seconds (what the Track and App APIs want)."""
    return int(datetime.now(UTC).timestamp())


def new_uuid() -> str:
    return str(uuid_module.uuid4())


# Context key of the run's now()/unix_now()/uuid() source: a recording keeps what they return,
# a replay feeds those values back. Per run (per row), never global: parallel runs keep theirs.
HELPERS = "__helpers__"


class Helpers:
    """now(), unix_now() and uuid() as a run without a source of its own sees them."""

    def now(self) -> str:
        return now()

    def unix_now(self) -> int:
        return unix_now()

    def uuid(self) -> str:
        return new_uuid()


_LIVE_HELPERS = Helpers()


def _helper(name: str) -> Callable[..., Any]:
    @pass_context
    def helper(context: Any) -> Any:
        return getattr(context.get(HELPERS) or _LIVE_HELPERS, name)()

    helper.__name__ = name
    return helper


def _build_environment() -> Sandbox:
    env = Sandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    env.globals.update({name: _helper(name) for name in ("now", "unix_now", "uuid")})
    env.filters.update(unix=to_unix)
    return env


ENVIRONMENT = _build_environment()
HELPER_NAMES = frozenset(ENVIRONMENT.globals)


def is_template(value: Any) -> bool:
    return isinstance(value, str) and any(marker in value for marker in _TEMPLATE_MARKERS)


@dataclass(frozen=True)
class Compiled:
    source: str
    render: Callable[[dict[str, Any]], Any]
    ast: nodes.Template


def _lookup_spec(source: str) -> tuple[list[str], list[Callable]] | None:
    """(path, filters) of a `{{ a.b | f }}` template that needs no Jinja, else None."""
    dotted = _DOTTED_NAME.match(source)
    if not dotted:
        return None
    filters = [f.strip() for f in dotted.group("filters").split("|")[1:]]
    functions = [ENVIRONMENT.filters.get(name) for name in filters]
    # Filters that want the environment or context, or unknown ones, go the Jinja way.
    if all(f is not None and not hasattr(f, "jinja_pass_arg") for f in functions):
        return dotted.group("path").split("."), functions
    return None


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


def _compile_lookup(source: str, path: list[str], filters: list[Callable]) -> Compiled:
    """A dotted path over mappings, then plain filters; anything else takes Jinja's own way."""
    slow = _compile_jinja(source)

    def lookup(context: dict[str, Any]) -> Any:
        value: Any = context
        for part in path:
            if type(value) is not dict or part not in value:
                return slow.render(context)  # Jinja raises the proper undefined error
            value = value[part]
        for apply in filters:
            value = apply(value)
        return value

    return Compiled(source, lookup, slow.ast)


Locate = Callable[[tuple], Location]


def render_value(value: Any, context: dict[str, Any], locate: Locate, path: tuple = ()) -> Any:
    """Render every template string inside a value (mapping keys too), keeping native types."""
    return compile_value(value, locate, path)(context)


Renderer = Callable[[dict[str, Any]], Any]


def compile_value(value: Any, locate: Locate, path: tuple = ()) -> Renderer:
    """A function rendering `value` for a context: the walk over the value happens once, here.

    Static leaves are returned as they are; containers are rebuilt on every call, so no two
    renders share a mapping or list that a caller might change. The function is generated
    Python (see codegen.py): constants prebuilt, `{{ row.x }}` lookups inlined; whatever it
    cannot do the plain way, it leaves to the tree of closures below, which renders the same.
    """
    slow = _compile_tree(value, locate, path)
    return generate_renderer(value, locate, path, slow, _RenderParts()) or slow


class _RenderParts:
    """What generated renderers call back into (kept here: the templates' own machinery)."""

    is_template = staticmethod(is_template)
    lookup_spec = staticmethod(_lookup_spec)
    render = staticmethod(lambda compiled, context, location: _render(compiled, context, location))
    compile_template = staticmethod(compile_template)
    leaf = staticmethod(lambda value, locate, path: _compile_tree(value, locate, path))
    to_json = staticmethod(to_json)
    max_size = MAX_SIZE


def _compile_tree(value: Any, locate: Locate, path: tuple = ()) -> Renderer:
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
    attr = re.match(r"'.*' has no attribute '(.+)'", message)
    if attr:
        return f"undefined name or field '{attr.group(1)}'"
    return message


def evaluate_condition(source: str, context: dict[str, Any], location: Location | None) -> Any:
    """A condition written without braces, as in Ansible's `when:` (braces tolerated)."""
    return render_string(as_expression(source), context, location)


# --- static checks, before anything is sent -------------------------------------------------


def iter_templates(value: Any, path: tuple = ()) -> Iterator[tuple[tuple, str]]:
    """Every template string inside a value, with its path."""
    if isinstance(value, str):
        if is_template(value):
            yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            if is_template(key):
                yield path, key
            yield from iter_templates(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from iter_templates(item, (*path, i))


def _compile_at(source: str, location: Location) -> Compiled:
    try:
        return compile_template(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"template syntax error: {exc.message}", location=location) from None


def check_templates(flow: Flow, extra_names: frozenset[str] = frozenset()) -> None:
    """Compile every template and check every name it uses is defined somewhere before it."""
    known = set(RUN_NAMES | HELPER_NAMES | extra_names)
    secrets = _Secrets()
    for name, value in flow.vars:
        if _check_value(flow, value, ("vars", name), known, secrets, step=None):
            secrets.vars.add(name)  # a var holding a secret is one: same rules
        known.add(name)
    # A row key and the options below are printed or transformed: no secret in them at all.
    keyless = _Secrets(vars=secrets.vars, direct_ok=False)
    if flow.for_each and flow.for_each.key:
        _check_value(flow, flow.for_each.key, ("for_each", "key"), known, keyless, step=None)
    # `with` values go into a used flow's vars, where its own check cannot see a secret.
    for site in flow.use_sites:
        for name, value in site.with_values:
            _check_value(flow, value, (*site.path, "with", name), known, keyless, step=site.name)
    for step in flow.all_steps:
        if step.scope is not None:
            continue  # a used flow's own names: checked when it loaded
        path = (*step.path, step.kind)
        _check_value(flow, step.payload, path, known, secrets, step=step.name)
        for expression, location in step_expressions(step):
            compiled = _compile_at(as_expression(expression), location)
            _check_compiled(compiled, location, known, keyless, step.name)


def step_expressions(step) -> Iterator[tuple[str, Location]]:
    """The brace-less expressions of a step's options: when, expect, wait_until, loop, save."""
    if step.when is not None:
        yield step.when.expression, step.when.location
    for condition in step.expect:
        yield condition.expression, condition.location
    if step.wait_until is not None:
        yield step.wait_until.condition.expression, step.wait_until.condition.location
    if isinstance(step.loop, str):
        yield step.loop, step.location
    if step.save_value is not None:
        yield step.save_value, step.location


def as_expression(text: str) -> str:
    text = text.strip()
    return text if text.startswith("{{") else "{{ " + text + " }}"


@dataclass
class _Secrets:
    """What the static check knows of secrets: the vars that hold one, and whether a template
    may put one into its output (payloads may; row keys and step options may not)."""

    vars: set[str] = field(default_factory=set)
    direct_ok: bool = True


def _check_value(flow, value, path, known, secrets: _Secrets, *, step) -> bool:
    """Check every template in `value`; True when one of them reads a secret."""
    reads = False
    for where, source in iter_templates(value, path):
        location = flow.locate(where)
        compiled = _compile_at(source, location)
        reads |= _check_compiled(compiled, location, known, secrets, step)
    return reads


def _check_compiled(compiled: Compiled, location: Location, known, secrets, step) -> bool:
    for name in sorted(meta.find_undeclared_variables(compiled.ast) - known):
        raise TemplateError(f"undefined name '{name}'", location=location, step=step)
    reason, reads = _unsafe_reason(compiled.ast, secrets)
    if reason:
        raise TemplateError(reason, location=location, step=step)
    return reads


_SECRET_USE = (
    "use it only as it is, in a payload ({{{{ {0} }}}} or 'text {{{{ {0} }}}}'), so that it "
    "is masked in every output"
)


def _unsafe_reason(ast: nodes.Template, secrets: _Secrets) -> tuple[str | None, bool]:
    """Why a template may not run as written (it reads a key, transforms a secret, or yields a
    function), and whether it reads a secret."""
    direct: set[int] = set()
    if secrets.direct_ok:
        direct = {id(part) for output in ast.find_all(nodes.Output) for part in output.nodes}
    reads = False
    for node in ast.find_all((nodes.Getattr, nodes.Getitem, nodes.Name)):
        name = _secret_read(node, secrets.vars)
        if name is None:
            continue
        if name in CREDENTIAL_VARS:
            return f"templates cannot read {name}: Customer.io keys are sent by the runner", True
        if isinstance(node, nodes.Getitem) or id(node) not in direct:
            if isinstance(node, nodes.Name):
                return f"var '{name}' holds a secret: {_SECRET_USE.format(name)}", True
            why = "its name says KEY, TOKEN, SECRET or PASSWORD"
            return f"env.{name} is secret ({why}): {_SECRET_USE.format('env.' + name)}", True
        reads = True
    return _function_as_value(ast), reads


def _secret_read(node: nodes.Node, secret_vars: set[str]) -> str | None:
    """The secret variable or var a node reads, if it reads one."""
    if isinstance(node, nodes.Name):
        return node.name if node.ctx == "load" and node.name in secret_vars else None
    name = _env_name(node)
    if name is not None and (name in CREDENTIAL_VARS or is_secret_name(name)):
        return name
    return None


def _function_as_value(ast: nodes.Template) -> str | None:
    called = {id(call.node) for call in ast.find_all(nodes.Call)}
    for node in ast.find_all(nodes.Name):
        if node.name == "self" and node.ctx == "load":
            return "'self' is not available in templates"
        if node.name in HELPER_NAMES and node.ctx == "load" and id(node) not in called:
            return f"'{node.name}' is a function, not a value: call it, {node.name}()"
    return None


def _env_name(node: nodes.Getattr | nodes.Getitem) -> str | None:
    """NAME of `env.NAME` or `env['NAME']`."""
    if not (isinstance(node.node, nodes.Name) and node.node.name == "env"):
        return None
    if isinstance(node, nodes.Getattr):
        return node.attr
    if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
        return node.arg.value
    return None


def row_fields(value: Any) -> set[str]:
    """Names of `row.<field>` / `row['field']` a value's templates read (for the data-file check)."""
    fields: set[str] = set()
    for _, source in iter_templates(value):
        try:
            ast = compile_template(source).ast
        except TemplateSyntaxError:
            continue
        for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
            target = node.node
            if isinstance(target, nodes.Name) and target.name == "row":
                if isinstance(node, nodes.Getattr):
                    fields.add(node.attr)
                elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                    fields.add(node.arg.value)
    return fields
