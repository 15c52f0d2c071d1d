"""Load a flow file: safe YAML that keeps file:line:col for every node, checked against the flow
schema, built into the model, then checked as a whole (options, templates, saved names, payloads).

The rooms: yaml_source.py (YAML with positions and expansion limits), schema_errors.py (the
schema check and its wording), build.py (the model), composition.py (`use`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from ..errors import FlowSchemaError, Location
from ..wire import kinds as step_kinds
from .build import build_flow
from .model import Flow, Path_, SourceMap, Step
from .payloads import check_payload
from .saved_names import check_saved_names
from .schema_errors import check_structure
from .template_checks import check_templates
from .yaml_source import parse_yaml, read_text


def load_flow(path: str | Path, root: str | Path | None = None) -> Flow:
    """Read, check and model a flow file. Raises FlowInputError subclasses with file:line:col.

    `use:` reads flow files under `root` only: by default the current folder when the flow is
    in it (a project run from its top), else the flow's own folder."""
    path = Path(path)
    return FlowFiles(project_root(path, root))(path, ())


def project_root(flow: Path, root: str | Path | None = None) -> Path:
    if root is not None:
        return Path(root).resolve()
    here, folder = Path.cwd().resolve(), flow.resolve().parent
    return here if folder.is_relative_to(here) else folder


@dataclass(frozen=True)
class FlowFiles:
    """Loads a flow file and, for its `use` steps, the files under `root` (composition.py)."""

    root: Path

    def __call__(self, path: Path, using: tuple[Path, ...]) -> Flow:
        return _load(path, using, self)


def _load(path: Path, using: tuple[Path, ...], files: FlowFiles) -> Flow:
    """A flow file, with the files that use it (outermost first): a used file is checked alone,
    then its steps join the using flow's (composition.py)."""
    display = str(path)
    data, source = parse_yaml(read_text(path, display), display)
    check_looks_like_a_flow(data, display, used=bool(using))
    check_wait_numbers(data, source)
    check_structure(data, source)
    flow = build_flow(path, data, source, files, using)
    own = tuple(step for step in flow.all_steps if step.scope is None)
    check_step_options(own)
    check_templates(flow)
    check_saved_names(flow)
    check_payloads(flow)
    return flow


def check_looks_like_a_flow(data: Any, display: str, *, used: bool) -> None:
    """A file that is not a flow (a token file, someone's config) is refused without a word of
    its content: the error may land in a public CI log. A used file must have version and
    steps; the top one, a mapping (then the schema check names what it lacks)."""
    flow_like = isinstance(data, dict) and (not used or ("version" in data and "steps" in data))
    if not flow_like:
        raise FlowSchemaError(
            f"{display} is not a flow file",
            location=Location(display, 1, 1),
            expected="a flow (a mapping with version and steps)",
            found="other content (not shown)",
        )


MAX_WAIT_SECONDS = 86_400.0  # a day: past any eventual consistency, before any sleep overflows


def check_wait_numbers(data: Any, source: SourceMap) -> None:
    """`wait_until`'s timeout and interval: finite positive seconds, said plainly (the schema's
    own message for them is a dump of the whole mapping)."""
    if not isinstance(data, dict):
        return
    for section in ("steps", "finally"):
        steps = data.get(section)
        for index, raw in enumerate(steps if isinstance(steps, list) else []):
            wait = raw.get("wait_until") if isinstance(raw, dict) else None
            if not isinstance(wait, dict):
                continue
            for name in ("timeout", "interval"):
                if name in wait:
                    _check_seconds(
                        wait[name],
                        source.locate((section, index, "wait_until", name)),
                        f"wait_until {name}",
                    )


def _check_seconds(value: Any, location: Location, what: str) -> None:
    number = not isinstance(value, bool) and isinstance(value, int | float)
    if number and 0 < value <= MAX_WAIT_SECONDS:
        return
    if isinstance(value, str):
        found = f"the text '{value}'"
        try:
            float(value)
            found += " (YAML reads an exponent without a dot as text: write 1000, or 1.0e3)"
        except ValueError:
            pass
    elif number:
        found = str(value)
    else:
        found = type(value).__name__
    raise FlowSchemaError(
        f"{what} must be a number of seconds above 0 and at most {MAX_WAIT_SECONDS:,.0f}",
        location=location,
        expected=f"a number of seconds, 0 < seconds <= {MAX_WAIT_SECONDS:,.0f}",
        found=found,
    )


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


def _locate_in(flow: Flow, base: Path_, path: Path_, *, key: bool = False) -> Location:
    """Where `path` inside the node at `base` is written."""
    return flow.locate((*base, *path), key=key)


def check_payloads(flow: Flow) -> None:
    """Each payload against its step's schema, templates standing for any value.

    Done here, where key positions are known, so an unknown field names its own line.
    """
    for step in flow.all_steps:
        if step.scope is not None or not step.validate:
            continue  # a used flow's steps were checked when it loaded
        base: Path_ = (*step.path, step.kind)
        check_payload(
            step.kind,
            step.payload,
            partial(_locate_in, flow, base),
            locate_key=partial(_locate_in, flow, base, key=True),
            allow_templates=True,
            step=step.name,
        )
