"""`plan`, `validate --data` and `Workspace.plan_table` walk a flow as the run does (run/plan.py)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from click.testing import CliRunner

from cio_flows import RunOptions, run_flow
from cio_flows.analysis import Workspace
from cio_flows.cli import main

RUN_ID = "20260101000000walker"

# Batched identify for every row, a batched track only for pro rows (`when`), a looped track
# that goes alone, a step reading an earlier answer, and a `finally` step.
FLOW = """\
version: 1
name: walker
for_each: {file: people.csv}
steps:
  - name: identify
    identify:
      userId: "{{ row.id }}"
      traits: {plan: "{{ row.plan }}", partner: "{{ env.PARTNER_SECRET }}"}
  - name: upgraded
    when: row.plan == 'pro'
    track: {userId: "{{ row.id }}", event: upgraded}
  - name: looped
    when: row.plan == 'team'
    loop: ["a", "b"]
    track: {userId: "{{ row.id }}", event: "seat_{{ item }}"}
finally:
  - name: goodbye
    track: {userId: "{{ row.id }}", event: bye}
"""
PLANS = ["free", "pro", "team", "pro", "free"]
SECRET = "partner-secret-value-123"


def write_flow(directory: Path, rows: int = 1100) -> Path:
    lines = ["id,plan"] + [f"u{i},{PLANS[i % len(PLANS)]}" for i in range(rows)]
    (directory / "people.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    flow = directory / "flow.yaml"
    flow.write_text(FLOW, encoding="utf-8")
    return flow


def request_key(method: str, path: str, body: object) -> tuple[str, str, str]:
    return method, path, json.dumps(body, sort_keys=True)


def test_plan_jsonl_lists_exactly_the_requests_the_run_sends(tmp_path, recording_server):
    flow = write_flow(tmp_path)
    url = recording_server.url
    environ = {
        "CUSTOMERIO_PIPELINES_URL": url,
        "CUSTOMERIO_PIPELINES_KEY": "walker-key-abcdef",
        "PARTNER_SECRET": SECRET,
    }
    summary = run_flow(flow, RunOptions(run_id=RUN_ID, environ=environ, journal=False))
    assert summary.exit_code == 0
    sent = Counter(request_key(r.method, r.path, r.body) for r in recording_server.requests)

    result = CliRunner().invoke(main, ["plan", str(flow), "--format", "jsonl"], env=environ)
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    # The run id is part of every messageId: plan with the run's to compare bodies byte for byte.
    planned = _plan_with_run_id(flow, environ)
    assert len(planned) == len(lines)
    assert Counter(planned) == sent
    batches = [line for line in lines if "items" in line]
    assert sum(b["items"] for b in batches if b["step"] == "identify") == 1100
    assert sum(b["items"] for b in batches if b["step"] == "upgraded") == 440  # pro rows only
    assert sum(1 for line in lines if line["step"] == "looped") == 2 * 220  # alone, per item
    assert SECRET not in result.stdout


def _plan_with_run_id(flow: Path, environ: dict[str, str]) -> list[tuple[str, str, str]]:
    from cio_flows.api import plan_flow
    from cio_flows.run.plan import PlannedRequest

    options = RunOptions(run_id=RUN_ID, environ=environ)
    keys = []
    for item in plan_flow(flow, options):
        assert isinstance(item, PlannedRequest) and item.request is not None
        keys.append(request_key(item.request.method, item.request.path + item.request.query,
                                json.loads(item.body or b"null")))  # fmt: skip
    return keys


def test_plan_table_has_a_row_per_plan_line_and_masks_env_secrets(tmp_path):
    flow = write_flow(tmp_path, rows=60)
    environ = {"PARTNER_SECRET": SECRET}
    cli = CliRunner().invoke(main, ["plan", str(flow), "--format", "jsonl"], env=environ)
    assert cli.exit_code == 0, cli.stderr
    assert SECRET not in cli.stdout and "***" in cli.stdout
    with Workspace.emulator(environ=environ, progress=False) as ws:
        table = ws.plan_table(flow)
    assert len(table) == len(cli.stdout.splitlines())
    text = table.to_string() + "".join(table["body"].dropna())
    assert SECRET not in text and "***" in text
    assert list(table["step"]).count("upgraded") == 1  # one batch of the 24 pro rows
    assert table.loc[table["step"] == "upgraded", "items"].item() == 24


def test_validate_data_names_the_failing_row(tmp_path):
    flow = tmp_path / "dated.yaml"
    flow.write_text(
        'version: 1\nname: dated\nsteps:\n  - identify:\n      userId: "{{ row.id }}"\n'
        '      timestamp: "{{ row.created }}"\n',
        encoding="utf-8",
    )
    rows = ["id,created"] + [
        f"u{i},{'12/31/2025' if i == 38 else '2025-12-31T00:00:00Z'}" for i in range(1, 51)
    ]
    data = tmp_path / "rows.csv"
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["validate", str(flow), "--data", str(data)])
    assert result.exit_code == 2
    assert "row 38: invalid field 'timestamp'" in result.stderr
    assert "(expected a date-time, found '12/31/2025')" in result.stderr
    assert "failing row(s) 38" in result.stderr
    assert "ok:" not in result.stdout
    good = data.read_text(encoding="utf-8").replace("12/31/2025", "2025-12-31T00:00:00Z")
    data.write_text(good, encoding="utf-8")
    fixed = CliRunner().invoke(main, ["validate", str(flow), "--data", str(data)])
    assert fixed.exit_code == 0
    assert "with 1 step(s), 50 row(s) rendered and checked" in fixed.stdout
