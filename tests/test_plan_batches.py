"""`plan` lists the requests a run sends, as it sends them: batches where the run batches, with
their item counts and sizes, the same number of requests, the same bytes."""

from __future__ import annotations

import inspect
import io
import json

from click.testing import CliRunner
from test_batched_equivalence import FLOW, RUN_ID, record_run, write_data

from cio_flows import RunOptions
from cio_flows.api import validate_flow
from cio_flows.cli import main
from cio_flows.redact import Redactor
from cio_flows.reporting.plan_output import PlanOutput, endpoint
from cio_flows.run.batching import CHUNK_ROWS
from cio_flows.run.executor import Executor
from cio_flows.run.plan import PlannedFailure, PlannedRequest, Planner

PIPELINES = {"CUSTOMERIO_PIPELINES_KEY": "plan-key-123456"}
TRACK = {"CUSTOMERIO_SITE_ID": "site", "CUSTOMERIO_TRACK_TOKEN": "token-123456"}


def planned(tmp_path, environ, **options):
    run = validate_flow(
        tmp_path / "flow.yaml", RunOptions(run_id=RUN_ID, environ=environ, **options)
    )
    return run, list(Planner(run))


def test_the_plan_holds_the_bytes_the_run_sends(tmp_path):
    for family, environ in (("pipelines", PIPELINES), ("track", TRACK)):
        sent = record_run(tmp_path, family)["requests"]
        _, items = planned(tmp_path, environ)
        requests = [i for i in items if isinstance(i, PlannedRequest)]
        assert len(requests) == len(sent) == 6
        for plan, run in zip(requests, sent, strict=True):
            assert plan.batched and plan.request.path == run["path"]
            assert plan.body.decode() == run["body"]  # same ids, same encoding
            assert plan.items == len(json.loads(run["body"])["batch"])
        failures = [i for i in items if isinstance(i, PlannedFailure)]
        assert sorted(f.row for f in failures) == [1204, 1205]  # bad userId, item too big


def test_row_by_row_plans_one_request_per_row_and_step(tmp_path):
    (tmp_path / "flow.yaml").write_text(FLOW, encoding="utf-8")
    write_data(tmp_path, rows=10)
    _, items = planned(tmp_path, PIPELINES, batch=False)
    requests = [i for i in items if isinstance(i, PlannedRequest)]
    # 10 rows, one with an empty userId (fails, sends nothing) and one too big for a batch
    # (alone, it goes): identify and page 11 times, track where the plan is not 'skip' (9)
    paths = [r.request.path for r in requests]
    assert (paths.count("/v1/identify"), paths.count("/v1/track"), paths.count("/v1/page")) == (
        11,
        9,
        11,
    )
    assert not any(r.batched for r in requests)
    assert all(r.size == len(r.body) for r in requests)


def test_cli_jsonl_streams_one_line_per_request(tmp_path):
    (tmp_path / "flow.yaml").write_text(FLOW, encoding="utf-8")
    write_data(tmp_path)
    result = CliRunner().invoke(
        main, ["plan", str(tmp_path / "flow.yaml"), "--format", "jsonl"], env=PIPELINES
    )
    assert result.exit_code == 2  # two rows would fail: the input is invalid
    assert "error: " in result.stderr and "row 1204" in result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    batches = [line for line in lines if "items" in line]
    assert len(batches) == 6
    assert sum(b["items"] for b in batches if b["step"] == "identify") == 1203
    assert all(b["bytes"] == len(json.dumps(b["body"], separators=(",", ":"),
                                            ensure_ascii=False).encode()) for b in batches)  # fmt: skip
    assert PIPELINES["CUSTOMERIO_PIPELINES_KEY"] not in result.stdout
    assert [line["row"] for line in lines if "error" in line] == [1204, 1205]


def test_text_shows_the_first_requests_and_a_summary(tmp_path):
    (tmp_path / "flow.yaml").write_text(FLOW, encoding="utf-8")
    write_data(tmp_path)
    run, items = planned(tmp_path, PIPELINES)
    out = io.StringIO()
    output = PlanOutput(run, out, Redactor(), "text", limit=2)
    for item in items:
        output.write(item)
    output.finish(1205)
    text = out.getvalue()
    assert text.count("POST https://cdp.customer.io/v1/batch") == 2
    assert "rows 1-1000: identify (identify)" in text and "(1,000 items, " in text
    assert "... 6 more (--all lists every request)" in text  # 4 batches and 2 failing rows
    assert "plan: 6 request(s) over 1,205 row(s)" in text
    assert "identify: 2 x POST /v1/batch" in text
    # as the run's journal: track where the plan is "skip" (301), the failing rows' later steps (4)
    assert "skipped: 305 step(s)" in text
    assert "failing rows: 2" in text


def test_endpoints_fold_ids():
    assert endpoint("/api/v1/customers/u%401/events") == "/api/v1/customers/{id}/events"
    assert endpoint("/api/v2/batch") == "/api/v2/batch"


def test_the_plan_chunks_rows_as_the_executor_does():
    assert inspect.signature(Executor).parameters["chunk_size"].default == CHUNK_ROWS


def test_two_processes_plan_exactly_what_one_plans(tmp_path, monkeypatch):
    record_run(tmp_path, "pipelines")  # writes the flow and its data (with failing rows)

    def plan_with(processes: str):
        monkeypatch.setenv("CIO_FLOWS_PLAN_PROCESSES", processes)
        run, items = planned(tmp_path, PIPELINES)
        planner = Planner(run)
        assert planner.processes() == int(processes)
        described = []
        for item in items:
            if isinstance(item, PlannedRequest):
                described.append(("request", item.first_row, item.last_row, item.items, item.body))
            elif isinstance(item, PlannedFailure):
                described.append(("failure", item.row, item.failure.message))
            else:
                described.append(("skipped", item.row_number, item.step.key))
        return described

    one, two = plan_with("1"), plan_with("2")
    assert two == one
    assert sum(1 for kind, *_ in one if kind == "request") == 6
