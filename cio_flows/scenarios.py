"""Scenario runs: every flow under some paths as one test case (`cio-flows test`, the pytest plugin)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path

from .api import emulated, execute, prepare
from .errors import FlowInputError
from .run.events import FAILED, UNKNOWN, Event, Listener, RunSummary, StepFinished
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


def run_scenarios(
    paths: Iterable[str | Path],
    options: RunOptions | None = None,
    *,
    emulator: bool = False,
    listeners: list[Listener] = (),
) -> Iterator[ScenarioResult]:
    """Run each flow as a test case, in order; one emulator serves them all when asked."""
    options = options or RunOptions()
    flows = find_flows(paths)
    with ExitStack() as stack:
        if emulator:
            options = stack.enter_context(emulated(options))
        checked = check_all(flows, options)
        if any(result.invalid for result in checked):
            yield from checked
            return
        for result in checked:
            yield run_one(result.path, options, listeners)


def run_one(path: Path, options: RunOptions, listeners: list[Listener] = ()) -> ScenarioResult:
    started = time.monotonic()
    collector = _FailureCollector()
    try:
        run = prepare(path, replace(options, run_id=None))
        run.preflight()
    except FlowInputError as exc:
        return ScenarioResult(path, path.stem, invalid=exc, elapsed=time.monotonic() - started)
    summary = execute(run, [collector, *listeners])
    return ScenarioResult(
        path,
        run.flow.name,
        summary,
        failures=collector.failures,
        elapsed=time.monotonic() - started,
    )
