"""Scenario runs: every flow under some paths as one test case (`cio-flows test`, the pytest plugin)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path

from .api import emulated, prepare, run_flow
from .errors import FlowInputError
from .run.events import (
    FAILED,
    UNKNOWN,
    Event,
    Listener,
    RowFailed,
    RunError,
    RunSummary,
    StepFinished,
)
from .run.prepare import RunOptions

FLOW_SUFFIXES = (".yaml", ".yml")


def find_flows(paths: Iterable[str | Path]) -> list[Path]:
    """Flow files under each path (a file is taken as it is), sorted, no duplicates."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix in FLOW_SUFFIXES)
        else:
            found.append(path)
    return list(dict.fromkeys(found))


@dataclass
class ScenarioResult:
    path: Path
    name: str
    summary: RunSummary | None = None
    invalid: FlowInputError | None = None
    failures: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def passed(self) -> bool:
        return self.invalid is None and self.summary is not None and self.summary.ok


class _FailureCollector:
    def __init__(self) -> None:
        self.failures: list[str] = []

    def __call__(self, event: Event) -> None:
        if isinstance(event, StepFinished) and event.status in (FAILED, UNKNOWN):
            where = f"row {event.row_number}: " if event.row_number else ""
            self.failures.append(f"{where}step '{event.step.name}': {event.error}")
        elif isinstance(event, RowFailed | RunError):
            self.failures.append(event.error)


def check_all(paths: Iterable[Path], options: RunOptions) -> list[ScenarioResult]:
    """Load and check every flow first: one invalid flow stops the suite before any request."""
    results = []
    for path in paths:
        try:
            run = prepare(path, options)
            run.preflight_static()
            results.append(ScenarioResult(path, run.flow.name))
        except FlowInputError as exc:
            results.append(ScenarioResult(path, path.stem, invalid=exc))
    return results


# Test runs stay out of the journal unless a caller's options ask for one.
SCENARIO_OPTIONS = RunOptions(journal=False)


def run_scenarios(
    paths: Iterable[str | Path],
    options: RunOptions | None = None,
    *,
    emulator: bool = False,
    listeners: list[Listener] = (),
) -> Iterator[ScenarioResult]:
    """Run each flow as a test case, in order, through `run_flow`; one emulator serves them all
    when asked (`emulator` or options.emulator)."""
    options = options or SCENARIO_OPTIONS
    flows = find_flows(paths)
    with ExitStack() as stack:
        if emulator or options.emulator:
            options = stack.enter_context(emulated(options))
        checked = check_all(flows, options)
        if any(result.invalid for result in checked):
            yield from checked
            return
        for result in checked:
            yield run_one(result.path, options, listeners)


def run_one(path: Path, options: RunOptions, listeners: list[Listener] = ()) -> ScenarioResult:
    """One flow as a test case, run by `run_flow` under a run id of its own."""
    started = time.monotonic()
    collector = _FailureCollector()
    try:
        summary = run_flow(
            path, replace(options, run_id=None, resume=None), [collector, *listeners]
        )
    except FlowInputError as exc:
        return ScenarioResult(path, path.stem, invalid=exc, elapsed=time.monotonic() - started)
    return ScenarioResult(
        path,
        summary.flow_name,
        summary,
        failures=collector.failures,
        elapsed=time.monotonic() - started,
    )
