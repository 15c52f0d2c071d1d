"""Static template checks, before anything is sent: every template compiles, every name it uses
is defined before it, no template reads a Customer.io key or transforms a secret, and which
`row` fields a value reads (for the data-file check)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jinja2 import TemplateSyntaxError, meta, nodes

from ..errors import Location, TemplateError
from ..redact import CREDENTIAL_VARS, is_secret_name
from .jinja_env import HELPER_NAMES, RUN_NAMES, as_expression, is_template
from .model import Path_
from .templating import Compiled, compile_template

if TYPE_CHECKING:
    from .model import Flow, Step


def iter_templates(value: Any, path: Path_ = ()) -> Iterator[tuple[Path_, str]]:
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
        if step.once is not None:  # a journal key, printed when it skips: no secret in it
            _check_value(flow, step.once, (*step.path, "once"), known, keyless, step=step.name)
        for expression, location in step_expressions(step):
            compiled = _compile_at(as_expression(expression), location)
            _check_compiled(compiled, location, known, keyless, step.name)


def step_expressions(step: Step) -> Iterator[tuple[str, Location]]:
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


@dataclass
class _Secrets:
    """What the static check knows of secrets: the vars that hold one, and whether a template
    may put one into its output (payloads may; row keys and step options may not)."""

    vars: set[str] = field(default_factory=set)
    direct_ok: bool = True


def _check_value(
    flow: Flow,
    value: Any,
    path: Path_,
    known: set[str],
    secrets: _Secrets,
    *,
    step: str | None,
) -> bool:
    """Check every template in `value`; True when one of them reads a secret."""
    reads = False
    for where, source in iter_templates(value, path):
        location = flow.locate(where)
        compiled = _compile_at(source, location)
        reads |= _check_compiled(compiled, location, known, secrets, step)
    return reads


def _check_compiled(
    compiled: Compiled, location: Location, known: set[str], secrets: _Secrets, step: str | None
) -> bool:
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
    held = _env_held(ast)
    if held:
        return held, False
    direct: set[int] = set()
    if secrets.direct_ok:
        direct = {id(part) for output in _final_outputs(ast) for part in output.nodes}
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


def _env_held(ast: nodes.Template) -> str | None:
    """Why `env` is used as a value (`{% set e = env %}`, `[env][0]`, a macro's argument): a
    template that holds it could read a secret under another name, where no check sees it."""
    lookups = ast.find_all((nodes.Getattr, nodes.Getitem))
    read_from = {
        id(node.node) for node in lookups if isinstance(node, nodes.Getattr | nodes.Getitem)
    }
    for node in ast.find_all(nodes.Name):
        if node.name == "env" and node.ctx == "load" and id(node) not in read_from:
            return "env is read only by name, as env.NAME or env['NAME'], never held or passed on"
    return None


# Statements whose output is not the template's: it is captured and can be changed after
# (`{% set x %}`, a macro's result, `{% filter %}`, `{% call %}`).
_CAPTURING = (nodes.Macro, nodes.CallBlock, nodes.FilterBlock, nodes.AssignBlock)


def _final_outputs(node: nodes.Node) -> Iterator[nodes.Output]:
    """The Output nodes whose text goes straight into the template's result."""
    for child in node.iter_child_nodes():
        if isinstance(child, nodes.Output):
            yield child
        elif not isinstance(child, _CAPTURING):
            yield from _final_outputs(child)


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


def _env_name(node: nodes.Node) -> str | None:
    """NAME of `env.NAME` or `env['NAME']`."""
    if not isinstance(node, nodes.Getattr | nodes.Getitem):
        return None
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
            if not isinstance(node, nodes.Getattr | nodes.Getitem):
                continue  # find_all's type says Expr; these are the two asked for
            target = node.node
            if isinstance(target, nodes.Name) and target.name == "row":
                if isinstance(node, nodes.Getattr):
                    fields.add(node.attr)
                elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                    fields.add(node.arg.value)
    return fields
