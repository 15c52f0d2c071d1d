"""Scenario suites: every flow under some paths as one test case (`cio-flows test`, the pytest
plugin), selected by tag and shard, run one after another or `jobs` at a time.

Every flow of a suite is loaded and checked before any is run: one invalid flow stops the
suite before a request leaves (exit 2). The flows share one emulator (when asked) and one set
of rate limiters, so `jobs` concurrent runs stay under Customer.io's limits together.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .api import emulated, redactor, run_flow, wants_emulator
from .errors import FlowInputError
from .flow.loader import load_flow
from .redact import Redactor
from .reporting import JsonReport
from .reporting.suite import write_suite_reports
from .reporting.trace import labelled
from .run.cassette import cassette_path
from .run.events import (
    EXIT_FAILED,
    EXIT_INVALID,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UNAVAILABLE,
    FAILED,
    UNKNOWN,
    Event,
    FlowStatus,
    Listener,
    RowFailed,
    RunError,
    RunFinished,
    RunSummary,
    StepFinished,
)
from .run.plan import preflight_static
from .run.prepare import PreparedRun, RunOptions
from .run.replay import CassettePlayer, CassetteRecorder

FLOW_SUFFIXES = (".yaml", ".yml")
NOT_RUN_INVALID = "not run: another flow is invalid"
NOT_RUN_FAIL_FAST = "not run: --fail-fast after a failing flow"


def find_flows(paths: Iterable[str | Path]) -> list[Path]:
    """Flow files under each path (a file is taken as it is), sorted, no duplicates.

    In a folder, a flow whose rows come from outside it (`for_each` with an HTTP source, or a key
    and no file: a webhook flow for `cio-flows serve`) is a deployment, not a scenario: it needs
    its source or deliveries, so it is left out unless named as a file."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found += (
                p for p in path.rglob("*") if p.suffix in FLOW_SUFFIXES and not _fed_from_outside(p)
            )
        else:
            found.append(path)
    return sorted(set(found))


def _fed_from_outside(path: Path) -> bool:
    try:
        flow = load_flow(path)
    except FlowInputError:
        return False  # collected, so the suite reports why it is invalid
    spec = flow.for_each
    return spec is not None and spec.file is None and spec.query is None


@dataclass(frozen=True)
class Shard:
    """`--shard K/N`: the K-th of N machines runs the flows at positions K-1, K-1+N, ..."""

    index: int  # K, 1-based
    count: int  # N

    @classmethod
    def parse(cls, text: str) -> Shard:
        """'K/N' with 1 <= K <= N; ValueError otherwise."""
        k, sep, n = text.partition("/")
        if not (sep and k.strip().isdigit() and n.strip().isdigit()):
            raise ValueError(f"expected K/N such as 1/4, found {text!r}")
        shard = cls(int(k), int(n))
        if not 1 <= shard.index <= shard.count:
            raise ValueError(f"expected 1 <= K <= N, found {text!r}")
        return shard

    def takes(self, position: int) -> bool:
        return position % self.count == self.index - 1


@dataclass
class ScenarioResult:
    path: Path
    name: str
    summary: RunSummary | None = None
    invalid: FlowInputError | None = None
    failures: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    not_run: str | None = None  # why a selected flow did not run
    tags: tuple[str, ...] = ()
    vars: Mapping[str, str] = field(default_factory=dict)  # the suite's --var it declares
    report: dict[str, Any] | None = None  # its JSON report, as `run --report` writes one
    uses: frozenset[Path] = frozenset()  # the flow files it `use`s, at any depth (resolved)

    @property
    def passed(self) -> bool:
        return self.invalid is None and self.summary is not None and self.summary.ok

    @property
    def status(self) -> FlowStatus:
        if self.invalid is not None:
            return FlowStatus.INVALID
        if self.summary is None:
            return FlowStatus.NOT_RUN
        return FlowStatus.PASSED if self.summary.ok else FlowStatus.FAILED

    @property
    def exit_code(self) -> int:
        if self.invalid is not None:
            return EXIT_INVALID
        return EXIT_OK if self.summary is None else self.summary.exit_code


class _FailureCollector:
    def __init__(self) -> None:
        self.failures: list[str] = []

    def __call__(self, event: Event) -> None:
        if isinstance(event, StepFinished) and event.status in (FAILED, UNKNOWN):
            where = f"row {event.row_number}: " if event.row_number else ""
            self.failures.append(f"{where}step '{event.step.name}': {event.error}")
        elif isinstance(event, RowFailed | RunError):
            self.failures.append(event.error)


class _ReportKeeper:
    """Listener: the flow's JSON report, kept in memory for the suite's report."""

    def __init__(self, redactor: Redactor) -> None:
        self._json = JsonReport(os.devnull, redactor=redactor)
        self.report: dict[str, Any] | None = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunFinished):
            self.report = self._json.report(event)
        else:
            self._json.collector.add(event)


def flow_tags(flow: Any) -> tuple[str, ...]:
    """A flow's top-level `tags`."""
    return tuple(str(tag) for tag in getattr(flow, "tags", None) or ())


def check_all(
    paths: Iterable[Path], options: RunOptions, options_for: OptionsFor | None = None
) -> list[ScenarioResult]:
    """Load and check every flow first: one invalid flow stops the suite before any request.

    options.vars are the suite's: each flow takes those it declares (check_vars then says
    whether every one is declared somewhere). options_for: the options a flow will run with
    (a replay's: its cassette's keys decide where identify goes), so the check builds the
    requests the run will."""
    results = []
    for path in paths:
        try:
            flow = load_flow(path, options.root)
            declared = {name for name, _ in flow.vars}
            own = {k: v for k, v in options.vars.items() if k in declared}
            flow_options = options_for(path, options) if options_for else options
            run = PreparedRun(flow, replace(flow_options, vars=own))
            preflight_static(run)
            results.append(
                ScenarioResult(
                    path, flow.name, tags=flow_tags(flow), vars=own, uses=used_files(flow)
                )
            )
        except FlowInputError as exc:
            results.append(ScenarioResult(path, path.stem, invalid=exc))
    return results


def used_files(flow: Any) -> frozenset[Path]:
    """Every flow file `flow` uses, directly or through the flows it uses (resolved paths)."""
    found: set[Path] = set()
    for step in flow.all_steps:
        site = step.scope
        while site is not None:
            found.add(Path(site.file).resolve())
            site = site.parent
    return frozenset(found)


def without_used(results: Sequence[ScenarioResult]) -> list[ScenarioResult]:
    """The test cases: a file another collected flow `use`s is shared steps, not a scenario.

    It was still checked: through every flow that uses it (an error in it makes them invalid).
    """
    used = {path for r in results if r.invalid is None for path in r.uses}
    return [r for r in results if Path(r.path).resolve() not in used]


def check_vars(results: list[ScenarioResult], given: Mapping[str, str]) -> None:
    """A --var that no flow of the selection declares makes the first flow invalid: a typo
    must not pass unnoticed."""
    loaded = [r for r in results if r.invalid is None]
    if not loaded:
        return
    unused = sorted(set(given) - {name for r in loaded for name in r.vars})
    if unused:
        loaded[0].invalid = FlowInputError(
            f"--var {unused[0]}: no flow of the suite declares such a variable",
            expected="a var declared by some flow",
            found=f"'{unused[0]}'",
        )


def with_tags(
    results: Sequence[ScenarioResult], tags: Iterable[str], exclude: Iterable[str] = ()
) -> list[ScenarioResult]:
    """The flows carrying any of `tags` (all when none) and none of `exclude`.

    An invalid flow is kept whatever its tags: what it says cannot be trusted, and the suite
    must not pass over it silently."""
    wanted, unwanted = set(tags), set(exclude)
    return [
        r
        for r in results
        if r.invalid or ((not wanted or wanted & set(r.tags)) and not unwanted & set(r.tags))
    ]


def in_shard(results: Sequence[ScenarioResult], shard: Shard | None) -> list[ScenarioResult]:
    """This machine's share of the (sorted) flows; all of them without a shard."""
    if shard is None:
        return list(results)
    return [r for position, r in enumerate(results) if shard.takes(position)]


# Test runs stay out of the journal unless a caller's options ask for one.
SCENARIO_OPTIONS = RunOptions(journal=False)

# Runs one flow with the options given (what `around` wraps).
FlowRun = Callable[[RunOptions], ScenarioResult]
# Wraps each flow's run: around(path, options, run) calls run(options), with options of its
# own (a cassette's transport) if it likes, and may change the result (a replay that differs).
Around = Callable[[Path, RunOptions, FlowRun], ScenarioResult]
# The options a flow runs with under an Around (an Around may say so as its `options_for`).
OptionsFor = Callable[[Path, RunOptions], RunOptions]


def run_scenarios(
    paths: Iterable[str | Path],
    options: RunOptions | None = None,
    *,
    emulator: bool = False,
    listeners: Sequence[Listener] = (),
    tags: Iterable[str] = (),
    exclude_tags: Iterable[str] = (),
    shard: Shard | None = None,
    jobs: int = 1,
    fail_fast: bool = False,
    around: Around | None = None,
    reports: bool = False,
) -> Iterator[ScenarioResult]:
    """Run each selected flow as a test case through `run_flow`, yielding results as flows
    finish; every flow of the selection is yielded once (invalid, not run, passed or failed).

    emulator (or options.emulator / emulator_workspace): one emulator serves every flow.
    jobs: flows at once, in threads (listeners must then be thread-safe).
    fail_fast: after the first flow that does not pass, start no other (they are "not run").
    around: wraps each flow's run (see Around). reports: keep each flow's JSON report.
    """
    options = options or SCENARIO_OPTIONS
    # Suite reports are the caller's business; per-run ones would overwrite each other.
    options = replace(options, report=None, junit=None, run_id=None, resume=None)
    flows = find_flows(paths)
    with ExitStack() as stack:
        if emulator or wants_emulator(options):
            options = stack.enter_context(emulated(options))
        settings = options.transport
        options = replace(
            options, transport=replace(settings, rate_limits=settings.rate_limits.shared())
        )
        options_for: OptionsFor | None = getattr(around, "options_for", None)
        cases = without_used(check_all(flows, options, options_for))
        tagged = with_tags(cases, tags, exclude_tags)
        check_vars(tagged, options.vars)
        chosen = in_shard(tagged, shard)
        if any(result.invalid for result in chosen):
            for result in chosen:
                if result.invalid is None:
                    result.not_run = NOT_RUN_INVALID
                yield result
            return
        suite = _Suite(options, listeners, fail_fast, around, reports)
        if jobs <= 1:
            for result in chosen:
                yield suite.run(result)
            return
        yield from suite.run_parallel(chosen, jobs)


class _Suite:
    """Runs the selected flows of one suite; stops starting new ones after a failure."""

    def __init__(
        self,
        options: RunOptions,
        listeners: Sequence[Listener],
        fail_fast: bool,
        around: Around | None,
        reports: bool,
    ) -> None:
        self.options = options
        self.listeners = list(listeners)
        self.fail_fast = fail_fast
        self.around = around
        self.reports = reports
        self.stop = threading.Event()

    def run(self, checked: ScenarioResult) -> ScenarioResult:
        if self.stop.is_set():
            return replace(checked, not_run=NOT_RUN_FAIL_FAST)
        options = replace(self.options, vars=checked.vars)
        path = checked.path
        keeper = _ReportKeeper(redactor(options)) if self.reports else None
        extra: list[Listener] = [*self.listeners, *([keeper] if keeper else [])]

        def flow_run(flow_options: RunOptions) -> ScenarioResult:
            return run_one(path, flow_options, extra)

        around = self.around or (lambda _path, flow_options, run: run(flow_options))
        result = around(path, options, flow_run)
        result.tags = checked.tags
        if keeper is not None:
            result.report = keeper.report
        if self.fail_fast and not result.passed:
            self.stop.set()
        return result

    def run_parallel(self, chosen: list[ScenarioResult], jobs: int) -> Iterator[ScenarioResult]:
        with ThreadPoolExecutor(jobs, thread_name_prefix="cio-flow") as pool:
            pending: set[Future] = {pool.submit(self.run, result) for result in chosen}
            try:
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        yield future.result()
            except BaseException:  # Ctrl-C, or the caller stopped: start nothing more
                self.stop.set()
                for future in pending:
                    future.cancel()
                raise


def run_one(path: Path, options: RunOptions, listeners: Sequence[Listener] = ()) -> ScenarioResult:
    """One flow as a test case, run by `run_flow` under a run id of its own."""
    started = time.monotonic()
    collector = _FailureCollector()
    hook = options.transport.on_exchange
    if hook is not None:  # -v / --trace say which flow sent each request
        options = replace(
            options, transport=replace(options.transport, on_exchange=labelled(hook, str(path)))
        )
    try:
        # run_scenarios clears the suite's run id: one here is the flow's own (a cassette's)
        summary = run_flow(path, replace(options, resume=None), [collector, *listeners])
    except FlowInputError as exc:
        return ScenarioResult(path, path.stem, invalid=exc, elapsed=time.monotonic() - started)
    return ScenarioResult(
        path,
        summary.flow_name,
        summary,
        failures=collector.failures,
        elapsed=time.monotonic() - started,
    )


# --- record and replay (`--record DIR`, `--replay DIR`) -----------------------------------------


def recording(directory: str | Path, root: str | Path | None = None) -> Around:
    """around= for run_scenarios: each flow's exchanges written to its cassette under
    `directory` (named by its path relative to `root`, default the working directory)."""

    def around(path: Path, options: RunOptions, run: FlowRun) -> ScenarioResult:
        where = cassette_path(directory, path, root)
        recorder = CassetteRecorder(path, where, redactor(options))
        result = run(recorder.options(options))
        if result.invalid is not None:  # nothing was sent: keep the cassette there was
            return result
        try:
            recorder.save()
        except OSError as exc:
            return _failed(result, f"cannot write the cassette {where}: {exc.strerror or exc}")
        return result

    return around


def replaying(directory: str | Path, root: str | Path | None = None) -> Around:
    """around= for run_scenarios: each flow answered from its cassette with no network; a
    flow whose requests differ from the recorded ones fails, naming the first difference."""
    return _Replaying(directory, root)


class _Replaying:
    """The replay Around; `options_for` gives check_all the options each flow replays with."""

    def __init__(self, directory: str | Path, root: str | Path | None) -> None:
        self.directory = directory
        self.root = root

    def _player(self, path: Path, options: RunOptions) -> CassettePlayer:
        where = cassette_path(self.directory, path, self.root)
        return CassettePlayer.load(where, redactor(options))

    def options_for(self, path: Path, options: RunOptions) -> RunOptions:
        return self._player(path, options).options(options)

    def __call__(self, path: Path, options: RunOptions, run: FlowRun) -> ScenarioResult:
        try:
            player = self._player(path, options)
        except FlowInputError as exc:
            return ScenarioResult(path, path.stem, invalid=exc)
        result = run(player.options(options))
        problem = player.problem()
        return result if problem is None else _failed(result, problem)


def _failed(result: ScenarioResult, problem: str) -> ScenarioResult:
    """The result with `problem` as its first failure, failed even if every step passed."""
    summary = result.summary
    if summary is not None and summary.ok:
        summary = replace(summary, counts={**summary.counts, FAILED: summary.counts[FAILED] + 1})
    return replace(result, summary=summary, failures=[problem, *result.failures])


# --- the suite's outcome ----------------------------------------------------------------------


def suite_exit_code(results: Sequence[ScenarioResult]) -> int:
    """2 if any flow is invalid (nothing ran); else 3, then 4, then 1, then 0 over the flows."""
    codes = {result.exit_code for result in results}
    for code in (EXIT_INVALID, EXIT_REFUSED, EXIT_UNAVAILABLE, EXIT_FAILED):
        if code in codes:
            return code
    return EXIT_OK


def suite_exit_cause(results: Sequence[ScenarioResult]) -> str | None:
    """The exit status in words, naming the first flow behind it (None when it is 0)."""
    code = suite_exit_code(results)
    for result in results:
        if code != EXIT_OK and result.exit_code == code:
            if result.invalid is not None:
                return f"{result.path} is invalid"
            cause = result.summary.exit_cause if result.summary else None
            return f"{result.name} ({result.path}): {cause}"
    return None


def write_reports(
    results: Sequence[ScenarioResult],
    *,
    elapsed: float,
    redact: Callable[[str], str],
    report: str | Path | None = None,
    junit: str | Path | None = None,
) -> None:
    """The suite's JSON report (one entry per selected flow) and JUnit XML (one test case per
    selected flow), every text redacted."""
    write_suite_reports(
        results,
        elapsed=elapsed,
        exit_code=suite_exit_code(results),
        cause=suite_exit_cause(results),
        redact=redact,
        report=report,
        junit=junit,
    )
