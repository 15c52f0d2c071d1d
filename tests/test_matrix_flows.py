"""Every shipped flow through every command: validate, plan (text, json, jsonl), the run on the
emulator, record then replay with no keys, and Workspace.plan_table. Plan and run list the same
requests; no traceback anywhere. The emulator runs are `slow` (some flows wait for deliveries)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from click.testing import CliRunner, Result

from cio_flows import RunOptions, api
from cio_flows.analysis import Workspace
from cio_flows.cli import main
from cio_flows.flow.jinja_env import Helpers
from cio_flows.run.events import SKIPPED, Event, StepFinished
from cio_flows.run.plan import PlannedFailure, PlannedRequest
from cio_flows.scenarios import find_flows
from cio_flows.wire.exchange import Exchange

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = find_flows([ROOT / "flows"])  # what `cio-flows test flows` runs
KEYS = ("SITE_ID", "TRACK_TOKEN", "PIPELINES_KEY", "APP_TOKEN", "REGION")
RUN_ID = "20260101000000matrix"


def flow_id(path: Path) -> str:
    return str(path.relative_to(ROOT / "flows"))


each_flow = pytest.mark.parametrize("flow", SHIPPED, ids=flow_id)


@pytest.fixture
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in KEYS:
        monkeypatch.delenv(f"CUSTOMERIO_{name}", raising=False)


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=True)
    output = result.output + result.stderr
    assert "Traceback" not in output, output
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    return result


def test_the_matrix_covers_every_shipped_flow() -> None:
    assert len(SHIPPED) >= 14
    assert ROOT / "flows" / "gdpr_delete.yaml" in SHIPPED


@each_flow
def test_validate_exits_0(flow: Path, no_keys: None) -> None:
    result = invoke("validate", str(flow))
    assert result.exit_code == 0, result.output + result.stderr
    assert result.stdout.startswith("ok: ")


@each_flow
@pytest.mark.parametrize("fmt", ["text", "json", "jsonl"])
def test_plan_exits_0(flow: Path, fmt: str, no_keys: None) -> None:
    result = invoke("plan", str(flow), "--format", fmt)
    assert result.exit_code == 0, result.output + result.stderr
    if fmt != "text":  # json and jsonl: one JSON object per request
        assert [json.loads(line) for line in result.stdout.splitlines()]
    else:
        assert "plan: " in result.stdout


@pytest.fixture(scope="module")
def ws() -> Iterator[Workspace]:
    with Workspace.emulator(environ={"PARTNER_SECRET": "matrix-partner-secret"}) as workspace:
        yield workspace


@each_flow
def test_plan_table_has_a_row_per_line_of_plan_jsonl(flow: Path, ws: Workspace) -> None:
    table = ws.plan_table(flow)
    environ = dict(ws.options.environ or {})
    cli = invoke("plan", str(flow), "--format", "jsonl", env=environ)
    assert cli.exit_code == 0, cli.stderr
    lines = [json.loads(line) for line in cli.stdout.splitlines()]
    assert len(table) == len(lines)
    assert list(table["step"]) == [line["step"] for line in lines]
    assert table["error"].isna().all()
    for key in ("matrix-partner-secret", *ws.emulator.credentials.__dict__.values()):
        if isinstance(key, str) and len(key) > 6:
            assert key not in table.to_string() + cli.stdout


# --- against the emulator ---------------------------------------------------------------------


class FixedHelpers(Helpers):
    """now() and uuid() the same in the plan and the run, so their bodies compare."""

    def now(self) -> str:
        return "2026-01-01T00:00:00Z"

    def unix_now(self) -> int:
        return 1767225600

    def uuid(self) -> str:
        return "00000000-0000-4000-8000-000000000000"


def fixed_helpers(_scope: str) -> Helpers:
    return FixedHelpers()


def wire_key(method: str, url: str, body: Any) -> tuple[str, str, str, str]:
    parts = urlsplit(url)
    query = json.dumps(sorted(parse_qsl(parts.query, keep_blank_values=True)))
    return method.upper(), parts.path, query, json.dumps(body, sort_keys=True)


@pytest.mark.slow
@each_flow
def test_the_run_sends_what_the_plan_lists(flow: Path) -> None:
    base = RunOptions(run_id=RUN_ID, journal=False, template_helpers=fixed_helpers)
    with api.emulated(base) as options:
        planned = list(api.plan_flow(flow, options))
        exchanges: list[Exchange] = []
        steps: list[StepFinished] = []

        def keep_step(event: Event) -> None:
            if isinstance(event, StepFinished):
                steps.append(event)

        transport = replace(options.transport, on_exchange=exchanges.append)
        summary = api.run_flow(flow, replace(options, transport=transport), [keep_step])
    assert summary.exit_code == 0, [s.error for s in steps if s.error]
    assert not [p for p in planned if isinstance(p, PlannedFailure)]
    sent = Counter(
        wire_key(e.method, e.url, json.loads(e.request_body) if e.request_body else None)
        for e in exchanges
        if e.attempt == 1
    )
    requests = [p for p in planned if isinstance(p, PlannedRequest)]
    listed = Counter(
        wire_key(p.request.method, p.request.url("http://x"), json.loads(p.body or b"null"))
        for p in requests
        if p.request is not None
    )
    assert listed and not listed - sent, (
        "planned but not sent"
    )  # every request the plan shows, sent
    # Each step the run did not skip is listed once per row (a batch: once per item), those
    # that read an earlier answer included; a loop lists each item.
    ran = Counter(s.step.name for s in steps if s.status != SKIPPED)
    per_step: Counter[str] = Counter()
    for p in requests:
        per_step[p.step.name] += p.items if p.batched else 1
    looped = {p.step.name for p in requests if p.step.loop is not None}
    assert {k: v for k, v in per_step.items() if k not in looped} == {
        k: v for k, v in ran.items() if k not in looped
    }


@pytest.mark.slow
@each_flow
def test_record_on_the_emulator_then_replay_with_no_keys(
    flow: Path, tmp_path: Path, no_keys: None
) -> None:
    cassettes = str(tmp_path / "cassettes")
    recorded = invoke("test", str(flow), "--emulator", "--record", cassettes)
    assert recorded.exit_code == 0, recorded.output + recorded.stderr
    replayed = invoke("test", str(flow), "--replay", cassettes)
    assert replayed.exit_code == 0, replayed.output + replayed.stderr
    assert "1 passed, 0 failed" in replayed.output
