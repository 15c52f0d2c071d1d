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
from .model import Flow, Step
from .payloads import did_you_mean
from .templating import as_expression, compile_template, iter_templates


def check_saved_names(flow: Flow) -> None:
    """Raise TemplateError at the first template that reads a save no earlier step makes."""
    savers = {step.save: step for step in reversed(flow.all_steps) if step.save}
    for path, source in _flow_level_templates(flow):
        _check(source, flow.locate(path), set(), savers, None)
    saved: set[str] = set()
    for step in flow.all_steps:
        for source, location in _before_save(flow, step):
            _check(source, location, saved, savers, step)
        if step.save:
            saved.add(step.save)
        for condition in step.expect:
            _check(as_expression(condition.expression), condition.location, saved, savers, step)


def _flow_level_templates(flow: Flow) -> Iterator[tuple[tuple, str]]:
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


def _check(source: str, location: Location, saved: set[str], savers, step: Step | None) -> None:
    for name in saved_names_read(source):
        if name not in saved:
            raise _not_saved(name, location, saved, savers.get(name), step)


def saved_names_read(source: str) -> list[str]:
    """The NAMEs of `steps.NAME` and `steps['NAME']` in a template, in the order written."""
    try:
        ast = compile_template(source).ast
    except TemplateSyntaxError:
        return []  # check_templates reports it
    if "steps" not in meta.find_undeclared_variables(ast):
        return []  # no reference, or a local `steps` the template set itself
    names = []
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        if not (isinstance(node.node, nodes.Name) and node.node.name == "steps"):
            continue
        if isinstance(node, nodes.Getattr):
            names.append(node.attr)
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            names.append(node.arg.value)
    return names


def _not_saved(name, location, saved, saver: Step | None, step: Step | None) -> TemplateError:
    if step is None:
        reason = (
            f"'steps.{name}' is read before any step runs (vars and for_each.key cannot read saves)"
        )
    elif saver is step:
        reason = f"'steps.{name}' is this step's own save, made after it answers (use 'response')"
    elif saver is not None:
        reason = f"'steps.{name}' is saved only later, by step '{saver.name}' at {saver.location}"
    else:
        reason = f"'steps.{name}' is not saved by any earlier step"
    if step is None:
        expected = "a value known before the steps run"
    elif saved:
        expected = f"one of {', '.join(sorted(saved))}"
    else:
        expected = f"an earlier step with save: {name}"
    found = f"'{name}'" + did_you_mean(name, saved)
    step_name = step.name if step is not None else None
    return TemplateError(reason, location=location, step=step_name, expected=expected, found=found)
