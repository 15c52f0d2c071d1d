"""Static check: every `steps.NAME` a template reads is saved by a step that runs before it.

Steps run in order, then `finally`, so a step can read the saves of the steps before it, and a
`finally` step those of every step. A step's own save is there only for its `expect` (checked
after the save); its payload, `when`, `loop`, `wait_until` and `save.value` run before it and
read the step's answer as `response`. `vars` and `for_each.key` are rendered before any step.
"""

from __future__ import annotations

from collections.abc import Iterator

from jinja2 import TemplateSyntaxError, meta, nodes

from ..errors import Location, TemplateError
from .jinja_env import as_expression
from .model import Flow, Path_, Step, UseSite
from .payloads import did_you_mean
from .template_checks import iter_templates
from .templating import compile_template


def check_saved_names(flow: Flow) -> None:
    """Raise TemplateError at the first template that reads a save no earlier step makes.

    A used flow's steps were checked when it loaded; here its `use` step counts as one step:
    its `with` values are read before it, and `save: NAME` saves NAME, whose names are the used
    flow's saves (`steps.NAME.<its save name>`).
    """
    savers: dict[str, tuple[str, Location]] = {}
    for step in reversed(flow.all_steps):
        if step.scope is None and step.save:
            savers[step.save] = (step.name, step.location)
    for site in reversed(flow.use_sites):
        if site.save:
            savers[site.save] = (site.name, site.location)
    uses = {site.save: site for site in flow.use_sites if site.save}
    check = _Checker(savers, uses)
    for path, source in _flow_level_templates(flow):
        check(source, flow.locate(path), None)
    seen: set[int] = set()
    for step in flow.all_steps:
        outer = _outermost(step.scope)
        if outer is not None:
            if id(outer) not in seen:
                seen.add(id(outer))
                for name, value in outer.with_values:
                    for path, source in iter_templates(value, (*outer.path, "with", name)):
                        check(source, flow.locate(path), (outer.name, outer.location))
                if outer.save:
                    check.saved.add(outer.save)
            continue
        here = (step.name, step.location)
        for source, location in _before_save(flow, step):
            check(source, location, here)
        if step.save:
            check.saved.add(step.save)
        for condition in step.expect:
            check(as_expression(condition.expression), condition.location, here)


def _outermost(site: UseSite | None) -> UseSite | None:
    while site is not None and site.parent is not None:
        site = site.parent
    return site


class _Checker:
    def __init__(self, savers: dict[str, tuple[str, Location]], uses: dict[str, UseSite]) -> None:
        self.saved: set[str] = set()
        self.savers = savers
        self.uses = uses

    def __call__(self, source: str, location: Location, step: tuple[str, Location] | None) -> None:
        for name, inner in saved_paths_read(source):
            if name not in self.saved:
                raise _not_saved(name, location, self.saved, self.savers.get(name), step)
            site = self.uses.get(name)
            if site is not None and inner is not None and inner not in site.saves:
                raise TemplateError(
                    f"'steps.{name}.{inner}': {site.file} saves no '{inner}'",
                    location=location,
                    step=step[0] if step else None,
                    expected="one of " + (", ".join(sorted(site.saves)) or "(it saves nothing)"),
                    found=f"'{inner}'" + did_you_mean(inner, site.saves),
                )


def _flow_level_templates(flow: Flow) -> Iterator[tuple[Path_, str]]:
    for name, value in flow.vars:
        yield from iter_templates(value, ("vars", name))
    if flow.for_each and flow.for_each.key:
        yield ("for_each", "key"), flow.for_each.key


def _before_save(flow: Flow, step: Step) -> Iterator[tuple[str, Location]]:
    """A step's templates and expressions that are rendered before its answer is saved."""
    for path, source in iter_templates(step.payload, (*step.path, step.kind)):
        yield source, flow.locate(path)
    if step.when is not None:
        yield as_expression(step.when.expression), step.when.location
    if isinstance(step.loop, str):
        yield as_expression(step.loop), flow.locate((*step.path, "loop"))
    else:
        for path, source in iter_templates(step.loop, (*step.path, "loop")):
            yield source, flow.locate(path)
    if step.wait_until is not None:
        condition = step.wait_until.condition
        yield as_expression(condition.expression), condition.location
    if step.save_value is not None:
        yield as_expression(step.save_value), flow.locate((*step.path, "save", "value"))


def saved_paths_read(source: str) -> list[tuple[str, str | None]]:
    """(NAME, ATTR) of `steps.NAME.ATTR`, ATTR None for a plain `steps.NAME`, in order written."""
    try:
        ast = compile_template(source).ast
    except TemplateSyntaxError:
        return []  # check_templates reports it
    if "steps" not in meta.find_undeclared_variables(ast):
        return []  # no reference, or a local `steps` the template set itself
    inner: dict[int, str] = {}  # id of a `steps.NAME` node -> the ATTR read from it
    lookups = [
        node
        for node in ast.find_all((nodes.Getattr, nodes.Getitem))
        if isinstance(node, nodes.Getattr | nodes.Getitem)  # find_all's type says only Expr
    ]
    for node in lookups:
        name = _lookup_name(node)
        if name is not None:
            inner[id(node.node)] = name
    found = []
    for node in lookups:
        if isinstance(node.node, nodes.Name) and node.node.name == "steps":
            name = _lookup_name(node)
            if name is not None:
                found.append((name, inner.get(id(node))))
    return found


def _lookup_name(node: nodes.Getattr | nodes.Getitem) -> str | None:
    if isinstance(node, nodes.Getattr):
        return node.attr
    if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
        return node.arg.value
    return None


def _not_saved(
    name: str,
    location: Location,
    saved: set[str],
    saver: tuple[str, Location] | None,
    step: tuple[str, Location] | None,
) -> TemplateError:
    if step is None:
        reason = (
            f"'steps.{name}' is read before any step runs (vars and for_each.key cannot read saves)"
        )
    elif saver == step:
        reason = f"'steps.{name}' is this step's own save, made after it answers (use 'response')"
    elif saver is not None:
        reason = f"'steps.{name}' is saved only later, by step '{saver[0]}' at {saver[1]}"
    else:
        reason = f"'steps.{name}' is not saved by any earlier step"
    if step is None:
        expected = "a value known before the steps run"
    elif saved:
        expected = f"one of {', '.join(sorted(saved))}"
    else:
        expected = f"an earlier step with save: {name}"
    found = f"'{name}'" + did_you_mean(name, saved)
    step_name = step[0] if step is not None else None
    return TemplateError(reason, location=location, step=step_name, expected=expected, found=found)
