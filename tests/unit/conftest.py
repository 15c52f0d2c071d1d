"""In-memory runs: a flow prepared from a file, a Transport whose sessions answer from a function.

No sockets: every request goes to a MockAdapter (cio_flows.wire.mock).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cio_flows.flow.loader import load_flow
from cio_flows.run.events import Event, StepFinished
from cio_flows.run.executor import Executor
from cio_flows.run.prepare import PreparedRun, RunOptions
from cio_flows.wire.mock import MockAdapter, MockCall, mock_sessions
from cio_flows.wire.transport import Transport

ROOT_URL = "http://cio.test"
ENVIRON = {
    "CUSTOMERIO_SITE_ID": "site-123",
    "CUSTOMERIO_TRACK_TOKEN": "track-secret-abcdef",
    "CUSTOMERIO_PIPELINES_KEY": "pipelines-secret-abcdef",
    "CUSTOMERIO_APP_TOKEN": "app-secret-abcdef",
    "CUSTOMERIO_TRACK_URL": ROOT_URL,
    "CUSTOMERIO_PIPELINES_URL": ROOT_URL,
    "CUSTOMERIO_APP_URL": ROOT_URL,
}


def path_of(url: str) -> str:
    return url.removeprefix(ROOT_URL).split("?")[0]


def answer(method: str, url: str, headers, body) -> tuple[int, dict, Any]:
    """Customer.io-shaped successes for the paths the step kinds use."""
    path = path_of(url)
    if path.startswith("/v1/send/"):
        return 200, {}, {"delivery_id": "dlv_1", "queued_at": 1700000000}
    if path == "/v1/customers" and method == "POST":
        return 200, {}, {"identifiers": [{"id": "u1"}], "ids": ["u1"], "next": ""}
    return 200, {}, {}


@dataclass
class Harness:
    """One flow, one mock Customer.io: run it and look at the events and the requests."""

    flow_path: Path
    handler: Callable = answer
    events: list[Event] = field(default_factory=list)
    adapter: MockAdapter | None = None

    def run(
        self,
        listeners=(),
        data: Path | None = None,
        before_run: Callable[[PreparedRun], None] | None = None,
        **executor_args: Any,
    ):
        self.events.clear()
        self.adapter = MockAdapter(lambda *request: self.handler(*request))
        batch = executor_args.pop("batch", False)
        run = PreparedRun(
            load_flow(self.flow_path), RunOptions(environ=ENVIRON, data=data, run_id="unit")
        )
        transport = Transport(
            run.endpoints,
            run.credentials,
            session_factory=mock_sessions(self.adapter),
            sleep=lambda _seconds: None,
        )
        if before_run is not None:
            before_run(run)
        executor_args.setdefault("workers", 1)
        with transport:
            executor = Executor(
                run,
                transport,
                [self.events.append, *listeners],
                batch=batch,
                sleep=lambda _seconds: None,
                **executor_args,
            )
            return executor.execute()

    @property
    def calls(self) -> list[MockCall]:
        return self.adapter.calls if self.adapter else []

    @property
    def paths(self) -> list[str]:
        return [path_of(c.url) for c in self.calls]

    @property
    def steps(self) -> list[StepFinished]:
        return [e for e in self.events if isinstance(e, StepFinished)]

    def statuses(self) -> list[tuple[Any, str, str]]:
        return [(e.row_number, e.step.name, e.status) for e in self.steps]


@pytest.fixture
def harness(tmp_path: Path) -> Callable[[str], Harness]:
    def make(flow_text: str) -> Harness:
        path = tmp_path / "flow.yaml"
        path.write_text(flow_text, encoding="utf-8")
        return Harness(path)

    return make


@pytest.fixture
def rows_file(tmp_path: Path) -> Callable[[list[dict]], Path]:
    def write(rows: list[dict], name: str = "rows.jsonl") -> Path:
        path = tmp_path / name
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        return path

    return write
