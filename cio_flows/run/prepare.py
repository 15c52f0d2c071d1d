"""Plan and run flows: vars, rows, rendering, validation, sending, saving, events.

The engine knows the flow model and the operations; HTTP is the transport's business and
output is the listeners'.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from jinja2 import meta, nodes

from ..errors import CredentialsError, FlowInputError, Location, PayloadError, TemplateError
from ..flow.composition import ScopeContexts
from ..flow.jinja_env import HELPERS, Helpers
from ..flow.model import Flow, ForEach, Step
from ..flow.payloads import check_payload
from ..flow.sandbox import TemplateEnv
from ..flow.template_checks import iter_templates, row_fields
from ..flow.templating import (
    NOT_PLAIN,
    Locate,
    Renderer,
    compile_payload,
    compile_template,
    compile_value,
    evaluate_condition,
    render_string,
    render_value,
    row_column,
    row_lookup,
)
from ..redact import Redactor, environ_secrets
from ..wire import kinds
from ..wire.config import Credentials, Endpoints, resolve_region
from ..wire.kinds import NeedsPipelines, Request, StepKeys
from ..wire.settings import TransportSettings
from .http_source import HttpSource, PageRead
from .keys import new_run_id, step_keys
from .rows import DataSource, Row


@dataclass(frozen=True)
class RunOptions:
    """Everything a caller (CLI, notebook, test) can set for one run."""

    region: str | None = None
    vars: Mapping[str, str] = field(default_factory=dict)  # --var NAME=VALUE, replaces the flow's
    data: Path | None = None  # --data FILE, replaces for_each.file
    # --rows A:B: only data rows A to B (1-based, inclusive; None: from the first / to the last)
    rows: tuple[int | None, int | None] | None = None
    # --query SQL [--database URL]: rows from a query (run/query_source.py), replaces for_each
    query: str | None = None
    database: str | None = None
    # --changed: leave out rows whose rendered requests equal the last passed run's (journal)
    changed: bool = False
    run_id: str | None = None
    workers: int = 8  # rows in parallel; steps within a row stay in order
    batch: bool = True  # coalesce identify/track over rows into batch calls
    # worker processes of a batched run (run/processes.py); None: one per core for big data
    processes: int | None = None
    environ: Mapping[str, str] | None = None  # default os.environ
    root: Path | None = None  # where `use:` may read flows (None: flow/loader.py's default)
    transport: TransportSettings = field(default_factory=TransportSettings)
    # What api.run_flow wires around the run (the CLI's `run` options):
    # journal: True is $CIO_FLOWS_JOURNAL, else cio-flows/journal.db in the user data folder;
    # a path; False/None: none
    journal: str | Path | bool | None = True
    resume: str | None = None  # RUN_ID: run again what did not succeed (its vars/data unless given)
    resend_unknown: bool = False  # with resume: resend sends whose outcome is unknown too
    # with resume: accept another flow or data file; changed steps run again under new keys
    resume_changed: bool = False
    # with resume: how long an unknown send may take to be listed in Customer.io before it is
    # taken as never sent (run/settle.py); None: 60 s, 3 s on a loopback address (an emulator)
    settle_grace: float | None = None
    ignore_once: bool = False  # run steps whose `once` key the journal holds, all the same
    report: str | Path | None = None  # JSON report written here when the run finishes
    report_html: str | Path | None = None  # one self-contained HTML page, when it finishes
    junit: str | Path | None = None  # JUnit XML written here when the run finishes
    # for_each.http: read the source's pages (plan and run); validate checks the flow alone
    read_sources: bool = True
    # Names added to every template's context (`cio-flows serve`: `request`, its headers).
    context: Mapping[str, Any] = field(default_factory=dict)
    emulator: bool = False  # run against an in-process emulator started for this run
    emulator_workspace: str | Path | None = None  # that emulator loads this workspace file
    # now()/unix_now()/uuid() of each row ("-" without rows), by row: a recording keeps the
    # values, a replay feeds them back (run/replay.py). None: the clock and random uuids.
    template_helpers: Callable[[str], Helpers] | None = field(default=None, compare=False)
    # On resume, told (how many unknown sends, the grace period in seconds) before settling them
    # by reading Customer.io, which may take that long: the CLI says so.
    on_settling: Callable[[int, float], None] | None = field(default=None, compare=False)


class PreparedRun:
    """A flow with its options resolved and checked; nothing has been sent."""

    def __init__(
        self,
        flow: Flow,
        options: RunOptions | None = None,
        *,
        credentials: Credentials | None = None,
        endpoints: Endpoints | None = None,
    ) -> None:
        self.flow = flow
        self.options = options or RunOptions()
        environ = os.environ if self.options.environ is None else self.options.environ
        self.environ = dict(environ)
        self.template_env = TemplateEnv(self.environ)  # without Customer.io's keys
        self.region = resolve_region(self.options.region, flow.region, self.environ)
        self.credentials = credentials or Credentials.from_env(self.environ)
        self.endpoints = endpoints or Endpoints.for_region(self.region, self.environ)
        self.run_id = self.options.run_id or new_run_id()
        self.people_family = self.credentials.people_family
        self.source_pages: list[PageRead] = []  # an HTTP source's page reads, for plan
        self.row_count: int | None = None  # rows in the data, once checked: the progress total
        self.dropped_rows: dict[int, str] = {}  # duplicate-key rows left out: number -> why
        self.unchanged_rows: set[int] = set()  # --changed: rows left out (run/changed.py)
        # The journal keeps the run's request hashes from what it renders (run/changed.py)
        self.keep_request_hashes = False
        self.notes: list[str] = []  # said before the first row (RunStarted.notes)
        self.data = self._data_source()
        if self.options.rows is not None and self.flow.for_each is None and self.data is None:
            raise FlowInputError(
                "--rows picks data rows, and this flow has none",
                location=self.flow.locate(()),
                expected="for_each in the flow, or --data FILE",
                found="a flow that runs once",
            )
        self._check_vars()
        self._check_data_columns()
        self._depends = {
            step.key: tuple(sorted(_saved_names_used(step))) for step in flow.all_steps
        }
        # Vars in order, --var values as given; compiled once, rendered per row.
        self._var_renderers = [(name, self._var_renderer(name, value)) for name, value in flow.vars]
        # A key like `{{ row.x }}` or `{{ row.email | lower }}` is read from the row itself;
        # the pre-pass then builds no context for it when building one could neither fail
        # (the row's key is then None) nor record a helper source.
        key = self._key_reading_the_row()
        self._key_lookup = row_lookup(key) if key else None
        self._prepass_plain_key = self._key_lookup is not None and self._context_cannot_fail()
        # `{{ row.x }}`: a CSV's pre-pass reads the cell (DataSource.check_keys).
        self._key_column = row_column(key) if key else None
        self._check_data_rows()  # after the vars: a row key may use them
        # Compiled once per step: rendering a row walks no YAML and computes no positions.
        self._payload_locators = {step.key: self._payload_locator(step) for step in flow.all_steps}
        self._renderers = {
            step.key: compile_payload(step.payload, self._payload_locators[step.key])
            for step in flow.all_steps
        }
        self._scopes = ScopeContexts(flow)  # the contexts of used flows' steps (`use`)

    # --- checks before anything is sent ----------------------------------------------------

    def _data_source(self) -> DataSource | None:
        if self.options.query is not None:
            return self._read_query(self.options.query, self.options.database, Path.cwd(), None)
        if self.options.data is not None:
            return DataSource(Path(self.options.data))
        spec = self.flow.for_each
        if spec and spec.query and self.options.read_sources:
            return self._read_query(spec.query, spec.database, self.flow.path.parent, spec)
        if self.flow.for_each and self.flow.for_each.file:
            return DataSource(self.flow.path.parent / self.flow.for_each.file)
        if self.flow.for_each and self.flow.for_each.http and self.options.read_sources:
            return self._read_http_source(self.flow.for_each.http)
        return None

    def _read_query(
        self, sql: str, database: str | None, folder: Path, spec: ForEach | None
    ) -> DataSource:
        """The query's rows read now, into a spool file the rows stream from."""
        from .query_source import spool_query  # duckdb or SQLAlchemy: loaded only for queries

        where = self.flow.locate(("for_each", "query")) if spec else Location("--query", 1, 1)
        if database is not None and spec is not None:  # a flow's URL may read env.DB_URL
            context = {"run": {"id": self.run_id, "flow": self.flow.name}, "env": self.template_env}
            locate = self.flow.locate(("for_each", "database"))
            database = str(render_value(database, context, lambda _p: locate))
        folder_made = tempfile.mkdtemp(prefix="cio-flows-query-")
        weakref.finalize(self, shutil.rmtree, folder_made, True)  # lives as long as the run
        spool = Path(folder_made) / "rows.jsonl"
        spool_query(sql, database, spool, folder, where)
        # errors name the query's rows: "query rows:12" is its 12th row (one a line)
        return DataSource(spool, fetched=True, label="query rows")

    def check_rows_given(self) -> None:
        """A flow whose rows come from outside (`for_each` with no `file`, `http` or `query`, as
        `serve`'s webhook flows) runs and plans only with --data: exit 2, not a failed row."""
        spec = self.flow.for_each
        if spec is None or self.data is not None or spec.file or spec.http or spec.query:
            return
        raise FlowInputError(
            "this flow's rows come from outside: for_each names no file, http source or query",
            location=spec.location,
            expected="--data FILE (or `cio-flows serve FLOW`, which gives each delivery as a row)",
            found="no rows",
        )

    def _read_http_source(self, spec: dict[str, Any]) -> DataSource:
        """Every page of the HTTP source read now, into a spool file the rows stream from."""
        location = self.flow.locate(("for_each", "http"))
        source = HttpSource(
            spec, lambda value, context: render_value(value, context, lambda _p: location), location
        )
        folder = tempfile.mkdtemp(prefix="cio-flows-http-")
        weakref.finalize(self, shutil.rmtree, folder, True)  # the spool lives as long as the run
        spool = Path(folder) / "rows.jsonl"
        context = {"run": {"id": self.run_id, "flow": self.flow.name}, "env": self.template_env}
        source.fetch(spool, context)
        self.source_pages = source.pages
        return DataSource(spool, fetched=True)

    def _var_renderer(self, name: str, value: Any) -> Renderer:
        if name in self.options.vars:
            given = self.options.vars[name]
            return lambda _context: given
        location = self.flow.locate(("vars", name))
        return compile_value(value, lambda _path: location)

    def _payload_locator(self, step: Step) -> Locate:
        return lambda path: self.flow.locate((*step.path, step.kind, *path))

    def _check_vars(self) -> None:
        declared = {name for name, _ in self.flow.vars}
        for name in self.options.vars:
            if name not in declared:
                raise FlowInputError(
                    f"--var {name}: the flow declares no such variable",
                    location=self.flow.locate(("vars",)),
                    expected="one of " + (", ".join(sorted(declared)) or "(no vars declared)"),
                    found=f"'{name}'",
                )

    def _check_data_columns(self) -> None:
        if self.data is None:
            return
        columns = self.data.columns()
        if columns is None:
            return
        for step in self.flow.all_steps:
            for missing in sorted(row_fields(step.payload) - columns):
                raise FlowInputError(
                    f"the template uses row.{missing}, a column the data file lacks",
                    location=self._locate_row_field(step, missing),
                    step=step.name,
                    expected=f"a column '{missing}' in {self.data.shown}",
                    found="columns " + ", ".join(sorted(columns)),
                )
        for _, value in self.flow.vars:
            for missing in sorted(row_fields(value) - columns):
                raise FlowInputError(
                    f"a var uses row.{missing}, a column the data file lacks",
                    location=self.flow.locate(("vars",)),
                    expected=f"a column '{missing}'",
                    found="columns " + ", ".join(sorted(columns)),
                )

    def _check_data_rows(self) -> None:
        """The whole data file read once (encoding, structure, unique keys) before any send."""
        if self.data is not None:
            keyed = bool(self.flow.for_each and self.flow.for_each.key)
            on_duplicate = self.flow.for_each.on_duplicate_key if self.flow.for_each else "fail"
            column = self._key_column if self._prepass_plain_key else None
            checked = self.data.check_keys(
                self._data_row_key if keyed else None, on_duplicate, key_column=column
            )
            self.row_count, self.dropped_rows = checked.count, checked.dropped
            if self.options.rows is not None:
                self.row_count = self._count_in_slice(checked.count + len(checked.dropped))

    def leave_out(self, numbers: set[int], note: str) -> None:
        """--changed: these rows are not run (their requests are those already sent)."""
        self.unchanged_rows = numbers
        if self.row_count is not None:
            self.row_count -= len(numbers)
        self.notes.append(note)

    def _in_slice(self, number: int) -> bool:
        if self.options.rows is None:
            return True
        first, last = self.options.rows
        return (first is None or number >= first) and (last is None or number <= last)

    def _count_in_slice(self, rows_in_file: int) -> int:
        first, last = self.options.rows or (None, None)
        low, high = first or 1, min(last or rows_in_file, rows_in_file)
        dropped = sum(low <= number <= high for number in self.dropped_rows)
        return max(high - low + 1, 0) - dropped

    def _data_row_key(self, row: Row) -> str | None:
        if self._prepass_plain_key:
            key = self._plain_key(row)
            if key is not None:
                return key
        try:
            return self.row_key(row, self.base_context(row))
        except FlowInputError:  # that row fails on its own when it runs
            return None

    def _key_reading_the_row(self) -> str | None:
        """The for_each key, when no var or context name `row` hides the row from it."""
        spec = self.flow.for_each
        if spec is None or not spec.key or "row" in self.options.context:
            return None
        if any(name == "row" for name, _ in self.flow.vars):
            return None
        return spec.key

    def _plain_key(self, row: Row) -> str | None:
        """The row's key read from the row, as rendering the key gives it; None when the row
        must be rendered the general way (which raises its error, if any)."""
        assert self._key_lookup is not None
        value = self._key_lookup(row.data)
        return None if value is NOT_PLAIN else str(value)

    def _context_cannot_fail(self) -> bool:
        """Whether base_context can neither fail nor record: no helper source, and every var
        given on the command line or free of templates."""
        if self.options.template_helpers is not None:
            return False
        given = self.options.vars
        return all(name in given or not any(iter_templates(v)) for name, v in self.flow.vars)

    def _locate_row_field(self, step: Step, name: str) -> Location:
        for path, source in iter_templates(step.payload, (*step.path, step.kind)):
            if name in row_fields(source):
                return self.flow.locate(path)
        return step.location

    def secrets(self) -> list[str]:
        """What every output of this run masks (its keys, and secret-named variables)."""
        return secrets_in(self.environ)

    def redactor(self) -> Redactor:
        """The redactor of this run's outputs (api.redactor for options not yet prepared)."""
        return Redactor(self.secrets())

    def required_credentials(self) -> list[str]:
        missing: list[str] = []
        for step in self.flow.all_steps:
            for family in kinds.get(step.kind).families_for(self.people_family, step.payload):
                missing += [
                    name for name in self.credentials.missing_for(family) if name not in missing
                ]
        return missing

    def check_credentials(self) -> None:
        missing = self.required_credentials()
        if missing:
            raise CredentialsError(
                "missing credentials: set " + ", ".join(missing),
                expected="environment variables " + ", ".join(missing),
                found="unset",
            )

    def check_schemas(self) -> None:
        """Payload schemas, templates as wildcards (run/plan.preflight renders them too)."""
        for step in self.flow.all_steps:
            if not step.validate:
                continue
            check_payload(
                step.kind,
                step.payload,
                self._payload_locator(step),
                allow_templates=True,
                step=step.name,
            )

    # --- rendering --------------------------------------------------------------------------

    @property
    def every_row(self) -> bool:
        """Whether the run takes every data row: its nth row is the file's row number n."""
        return (
            self.data is not None
            and not self.dropped_rows
            and not self.unchanged_rows
            and self.options.rows is None
        )

    def rows(self, skip: Callable[[int], bool] | None = None) -> Iterator[Row | None]:
        """The run's rows; `skip` (every_row runs only) leaves out rows by number."""
        if self.data is None:
            yield None
            return
        if self.every_row:
            yield from self.data.rows(skip)  # nothing to look up per row
            return
        assert skip is None, "rows are skipped by number when the run takes every row"
        dropped, last = self.dropped_rows, (self.options.rows or (None, None))[1]
        for row in self.data.rows():
            if last is not None and row.number > last:
                return  # --rows: the slice is over, the rest of the file is not read
            if (
                row.number not in dropped
                and row.number not in self.unchanged_rows
                and self._in_slice(row.number)
            ):
                yield row

    def base_context(self, row: Row | None) -> dict[str, Any]:
        context: dict[str, Any] = {
            "run": {"id": self.run_id, "flow": self.flow.name, "region": self.region},
            "env": self.template_env,
            "steps": {},
        }
        if row is not None:
            context["row"] = row.data
        context.update(self.options.context)
        if self.options.template_helpers is not None:
            context[HELPERS] = self.options.template_helpers(str(row.number) if row else "-")
        for name, render in self._var_renderers:
            context[name] = render(context)
        return context

    def row_key(self, row: Row | None, context: dict[str, Any]) -> str:
        if row is None:
            return "-"
        if self._key_lookup is not None:
            key = self._plain_key(row)
            if key is not None:  # what the template renders, without rendering it
                return key
        if self.flow.for_each and self.flow.for_each.key:
            key = render_string(self.flow.for_each.key, context, self.flow.for_each.location)
            return str(key)
        return str(row.number)

    def render(
        self,
        step: Step,
        context: dict[str, Any],
        row: Row | None,
        seen: Callable[[Any], None] | None = None,
    ) -> dict[str, Any]:
        """The step's payload rendered and validated; raises FlowInputError naming step and row.
        `seen` is given the payload as rendered, before validation may fill in defaults."""
        row_number = row.number if row else None
        locate = self._payload_locators[step.key]
        try:
            payload: dict[str, Any] = self.rendered(step, context)
            if seen is not None:
                seen(payload)
            if step.validate:
                check_payload(step.kind, payload, locate, step=step.name, row=row_number)
        except FlowInputError as exc:
            raise exc.with_context(step=step.name, row=row_number) from None
        return payload

    def rendered(self, step: Step, context: dict[str, Any]) -> Any:
        """The step's payload rendered, not validated (render() validates it)."""
        return self._renderers[step.key](context)  # omitted fields dropped (compile_payload)

    def keys(self, row_key: str, step: Step) -> StepKeys:
        return step_keys(self.run_id, row_key, step.key)

    def build_request(self, step: Step, payload: dict[str, Any], keys: StepKeys) -> Request:
        try:
            return kinds.get(step.kind).first_request(payload, keys, self.people_family)
        except NeedsPipelines as exc:
            raise CredentialsError(
                f"{exc}: set CUSTOMERIO_PIPELINES_KEY", location=step.location, step=step.name
            ) from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            if step.validate:
                raise
            raise PayloadError(  # validate: false lets through what the wire cannot build
                f"validate: false, but no {step.kind} request can be built from this payload",
                location=step.location,
                step=step.name,
                expected="the fields the request's URL or body is made of",
                found=f"{type(exc).__name__} {exc}",
            ) from None

    def step_context(
        self, step: Step, context: dict[str, Any], scopes: dict[str, dict[str, Any]]
    ) -> dict[str, Any]:
        """The context `step` renders in: the row's, or for a used flow's step its scope's
        (made on first need from `scopes`, the row's scope contexts)."""
        if step.scope is None:
            return context
        try:
            return self._scopes.context(step.scope, context, scopes)
        except FlowInputError as exc:
            raise exc.with_context(step=step.name) from None

    def depends_on(self, step: Step) -> tuple[str, ...]:
        """The earlier responses a step's payload (or loop) reads; empty: renderable now."""
        depends = self._depends[step.key] + _use_depends(step)
        if isinstance(step.loop, str) and "steps" in step.loop:
            depends = (*depends, "steps (loop)")
        return depends

    def loop_contexts(
        self, step: Step, row_key: str, context: dict[str, Any]
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """(row key, context) once, or once per loop item with `item` set."""
        if step.loop is None:
            yield row_key, context
            return
        items = step.loop
        if isinstance(items, str):
            items = evaluate_condition(items, context, step.location)
        else:  # a literal list: its items are templates like any payload value
            items = render_value(
                items, context, lambda path: self.flow.locate((*step.path, "loop", *path))
            )
        if not isinstance(items, list | tuple):
            raise TemplateError(
                "loop needs a list",
                location=step.location,
                step=step.name,
                expected="list",
                found=type(items).__name__,
            )
        for index, item in enumerate(items):
            yield f"{row_key}#{index}", {**context, "item": item}


def _saved_names_used(step: Step) -> set[str]:
    """`steps.<name>` references in a step's payload: they need an earlier response."""
    names: set[str] = set()
    for _, source in iter_templates(step.payload):
        ast = compile_template(source).ast
        if any(node.name == "steps" for node in ast.find_all(nodes.Name)):
            attrs = {
                f"steps.{node.attr}"
                for node in ast.find_all(nodes.Getattr)
                if isinstance(node.node, nodes.Name) and node.node.name == "steps"
            }
            names |= attrs or {"steps"}
    return names


def _use_depends(step: Step) -> tuple[str, ...]:
    """A used flow's step whose `with` values (or those of a use around it) read saves."""
    site = step.scope
    while site is not None:
        for _, value in site.with_values:
            for _, source in iter_templates(value):
                if "steps" in meta.find_undeclared_variables(compile_template(source).ast):
                    return (f"steps (with of '{site.name}')",)
        site = site.parent
    return ()


def secrets_in(environ: Mapping[str, str]) -> list[str]:
    """The one recipe of what outputs mask: the keys as the transport sends them, and the value
    of every variable whose name says KEY, TOKEN, SECRET or PASSWORD."""
    return Credentials.from_env(environ).secrets() + environ_secrets(environ)


def with_endpoint_root(options: RunOptions, root: str) -> RunOptions:
    """Options whose environment points every family at one root URL (an emulator, a proxy)."""
    environ = dict(os.environ if options.environ is None else options.environ)
    for var in ("CUSTOMERIO_PIPELINES_URL", "CUSTOMERIO_TRACK_URL", "CUSTOMERIO_APP_URL"):
        environ[var] = root
    return replace(options, environ=environ)


__all__ = ["PreparedRun", "RunOptions", "TemplateError", "secrets_in", "with_endpoint_root"]
