"""pytest plugin: flow files become test items, so scenario flows run inside a project's own suite.

A YAML file is collected when its first line declares the flow schema
(`# yaml-language-server: $schema=.../flow.schema.json`), as every cio-flows example does.
Flows run against one emulator per session, or with --cio-flows-live against the workspace
named by the CUSTOMERIO_* variables.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import pytest

from .errors import FlowFailed
from .run.prepare import RunOptions
from .scenarios import FLOW_SUFFIXES, SCENARIO_OPTIONS, emulated, run_one

_SESSION = pytest.StashKey[dict]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cio-flows")
    group.addoption(
        "--cio-flows-live",
        action="store_true",
        help="run flow files against the workspace in CUSTOMERIO_* instead of a local emulator",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_SESSION] = {"stack": ExitStack(), "options": None}


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(_SESSION, None)
    if state:
        state["stack"].close()


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    if file_path.suffix in FLOW_SUFFIXES and _declares_flow_schema(file_path):
        return FlowFile.from_parent(parent, path=file_path)
    return None


def _declares_flow_schema(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8") as handle:
            first = handle.readline()
    except (OSError, UnicodeDecodeError):
        return False
    return "yaml-language-server" in first and "flow.schema.json" in first


def _session_options(config: pytest.Config) -> RunOptions:
    state = config.stash[_SESSION]
    if state["options"] is None:
        if config.getoption("cio_flows_live"):
            state["options"] = SCENARIO_OPTIONS
        else:
            state["options"] = state["stack"].enter_context(emulated(SCENARIO_OPTIONS))
    return state["options"]


class FlowFile(pytest.File):
    def collect(self):
        yield FlowItem.from_parent(self, name=self.path.stem)


class FlowItem(pytest.Item):
    def runtest(self) -> None:
        result = run_one(self.path, _session_options(self.config))
        if not result.passed:
            raise FlowFailed(result)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, FlowFailed):
            result = excinfo.value.result
            if result.invalid is not None:
                return f"invalid flow: {result.invalid.describe()}"
            return "\n".join(result.failures) or "the run did not finish"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.path, 0, f"flow {self.name}"
