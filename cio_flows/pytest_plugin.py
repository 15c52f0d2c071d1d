"""pytest plugin: flow files become test items, so scenario flows run inside a project's own suite.

A YAML file is collected when its first line declares the flow schema
(`# yaml-language-server: $schema=.../flow.schema.json`), as every cio-flows example does.
Flows run against one emulator per session (per pytest-xdist worker: `-n 4` runs four at
once), or with --cio-flows-live against the workspace named by the CUSTOMERIO_* variables.

A flow's `tags` are its markers (`pytest -m smoke`, `-m "not slow"`), registered as they are
found, so `--strict-markers` accepts them. A flow file another collected flow `use`s is shared
steps, not a test: it is deselected (and checked through the flows using it). --cio-flows-record DIR writes one cassette per flow and
--cio-flows-replay DIR answers from them with no network (`cio-flows test --record/--replay`);
pytest-recording's --block-network then lets nothing but loopback open a connection.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import replace
from pathlib import Path

import pytest

from .errors import FlowFailed, FlowInputError
from .flow.loader import load_flow
from .run.prepare import RunOptions
from .scenarios import (
    FLOW_SUFFIXES,
    SCENARIO_OPTIONS,
    Around,
    ScenarioResult,
    emulated,
    flow_tags,
    recording,
    replaying,
    run_one,
    used_files,
)

_SESSION = pytest.StashKey[dict]()
_LOOPBACK = [r"127\.\d+\.\d+\.\d+$", r"localhost$", r"::1$"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cio-flows")
    group.addoption(
        "--cio-flows-live",
        action="store_true",
        help="run flow files against the workspace in CUSTOMERIO_* instead of a local emulator",
    )
    group.addoption(
        "--cio-flows-record",
        metavar="DIR",
        help="write one cassette per flow file under DIR (keys scrubbed)",
    )
    group.addoption(
        "--cio-flows-replay",
        metavar="DIR",
        help="answer every request from the cassettes under DIR, with no network",
    )
    group.addoption(
        "--cio-flows-emulator-workspace",
        metavar="FILE",
        help="the emulator loads this workspace file (templates, segments, people)",
    )


def pytest_configure(config: pytest.Config) -> None:
    record = config.getoption("cio_flows_record")
    replay = config.getoption("cio_flows_replay")
    if record and replay:
        raise pytest.UsageError("--cio-flows-record and --cio-flows-replay exclude each other")
    if replay and (config.getoption("cio_flows_live") or _workspace(config)):
        raise pytest.UsageError("--cio-flows-replay sends nothing: it takes no live workspace")
    if _blocks_network(config) and config.getoption("cio_flows_live") and not replay:
        raise pytest.UsageError(
            "--block-network forbids --cio-flows-live: record with --cio-flows-record, or"
            " replay with --cio-flows-replay DIR"
        )
    around: Around | None = None
    if record:
        around = recording(record, config.rootpath)
    elif replay:
        around = replaying(replay, config.rootpath)
    config.stash[_SESSION] = {"stack": ExitStack(), "options": None, "around": around}


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


def _workspace(config: pytest.Config) -> Path | None:
    value = config.getoption("cio_flows_emulator_workspace")
    return Path(value) if value else None


def _blocks_network(config: pytest.Config) -> bool:
    """pytest-recording's --block-network (when it is installed), except while recording, as
    pytest-recording does."""
    blocking = bool(config.getoption("--block-network", None))
    return blocking and not config.getoption("cio_flows_record")


def _session_options(config: pytest.Config) -> RunOptions:
    """One set of options per session: the emulator is started on the first flow run."""
    state = config.stash[_SESSION]
    if state["options"] is None:
        if config.getoption("cio_flows_live") or config.getoption("cio_flows_replay"):
            state["options"] = SCENARIO_OPTIONS
        else:
            options = replace(SCENARIO_OPTIONS, emulator_workspace=_workspace(config))
            state["options"] = state["stack"].enter_context(emulated(options))
    return state["options"]


@contextmanager
def _loopback_only(config: pytest.Config) -> Iterator[None]:
    """While a flow runs under --block-network: connections to loopback (the emulator) only."""
    from pytest_recording.network import blocking_context

    allowed = config.getoption("--allowed-hosts", None)
    hosts = [*_LOOPBACK, *(allowed.split(",") if allowed else ())]
    with blocking_context(allowed_hosts=hosts):
        yield


class FlowFile(pytest.File):
    def collect(self):
        item = FlowItem.from_parent(self, name=self.path.stem)
        tags, item.uses = _tags_and_uses(self.path)
        for tag in tags:
            _register_marker(self.config, tag)
            item.add_marker(tag)
        yield item


def _tags_and_uses(path: Path) -> tuple[tuple[str, ...], frozenset[Path]]:
    try:
        flow = load_flow(path)
    except FlowInputError:  # the item fails with the reason when it runs
        return (), frozenset()
    return flow_tags(flow), used_files(flow)


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Deselect the flow files other collected flows `use`: shared steps, not scenarios."""
    used = {path for item in items if isinstance(item, FlowItem) for path in item.uses}
    shared = [item for item in items if isinstance(item, FlowItem) and item.path.resolve() in used]
    if shared:
        config.hook.pytest_deselected(items=shared)
        items[:] = [item for item in items if item not in shared]


def _register_marker(config: pytest.Config, tag: str) -> None:
    known = {line.split(":")[0].split("(")[0].strip() for line in config.getini("markers")}
    if tag not in known:
        config.addinivalue_line("markers", f"{tag}: flows tagged '{tag}' (cio-flows tags)")


class FlowItem(pytest.Item):
    uses: frozenset[Path] = frozenset()  # the flow files it uses (set when collected)

    def runtest(self) -> None:
        blocked = _blocks_network(self.config)
        with _loopback_only(self.config) if blocked else nullcontext():
            try:
                options = _session_options(self.config)
            except FlowInputError as exc:  # the emulator's workspace file
                raise FlowFailed(ScenarioResult(self.path, self.name, invalid=exc)) from None
            around = self.config.stash[_SESSION]["around"]
            run = lambda flow_options: run_one(self.path, flow_options)  # noqa: E731
            result = around(self.path, options, run) if around else run(options)
        if not result.passed:
            raise FlowFailed(result)

    def repr_failure(self, excinfo, style=None):
        failed = excinfo.value
        if isinstance(failed, FlowFailed) and isinstance(failed.result, ScenarioResult):
            result = failed.result
            if result.invalid is not None:
                return f"invalid flow: {result.invalid.describe()}"
            return "\n".join(result.failures) or "the run did not finish"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.path, 0, f"flow {self.name}"
