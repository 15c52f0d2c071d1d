"""`run_flow`, the one front door: journal, resume, reports and the emulator from Python, as the
CLI has them (issue 10, item 4), and a missing data file as exit 2 with its path."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import FLOWS, default_answer, env_for
from support import cli, message_ids

from cio_flows import DataFileError, JournalError, RunOptions, recent_runs, run_flow
from cio_flows.analysis import Workspace
from cio_flows.api import options_for_emulator
from cio_flows.emulator import DEMO_CREDENTIALS, Emulator
from cio_flows.run.events import RunStarted

ROWS = 200
FLOW = """\
version: 1
name: front_door
for_each: {file: users.csv, key: "{{ row.id }}"}
steps:
  - identify: {userId: "{{ row.id }}", traits: {email: "{{ row.email }}"}}
  - track: {userId: "{{ row.id }}", event: synced}
"""


def write_flow(folder: Path, rows: int = ROWS) -> Path:
    lines = ["id,email"] + [f"r{i},r{i}@example.com" for i in range(rows)]
    (folder / "users.csv").write_text("\n".join(lines) + "\n")
    path = folder / "front_door.yaml"
    path.write_text(FLOW)
    return path


@pytest.mark.slow
def test_a_cli_run_killed_with_sigkill_is_finished_by_run_flow_every_row_once(tmp_path):
    flow, journal = write_flow(tmp_path), tmp_path / "journal.db"
    with Emulator(workspace={}, faults={"pipelines": {"latency": 0.02}}) as emulator:
        options = options_for_emulator(emulator, RunOptions(environ={}))
        env = {**os.environ, **options.environ, "CIO_FLOWS_JOURNAL": str(journal)}
        first = subprocess.Popen(
            cli("run", str(flow), "--no-batch", "--workers", "4"),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        run_id = first.stdout.readline().strip().removeprefix("run id: ")
        deadline = time.monotonic() + 60
        while len(emulator.inspect.requests("pipelines")) < ROWS // 2:
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the CLI run never got going"
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        before = len(emulator.inspect.requests("pipelines"))
        assert 0 < before < 2 * ROWS, "the kill should land half-way"

        summary = run_flow(
            flow, RunOptions(resume=run_id, journal=journal, environ=options.environ)
        )

        assert summary.run_id == run_id and summary.exit_code == 0, summary
        ids = message_ids(emulator)
        assert len(ids) == 2 * ROWS, "every (row, step) arrived"
        assert all(len(v) == 1 for v in ids.values()), "a resent request changed its messageId"
        assert len(emulator.inspect.people()) == ROWS
        assert len(emulator.inspect.events()) == ROWS  # deduplicated by id: no event twice
        assert len(emulator.inspect.requests("pipelines")) - before < 2 * ROWS, "none redone"
    with sqlite3.connect(journal) as db:
        statuses = db.execute("SELECT status, count(*) FROM outcomes GROUP BY 1").fetchall()
    assert statuses == [("ok", 2 * ROWS)]
    assert [r.status for r in recent_runs(journal=journal) if r.run_id == run_id] == ["passed"]


def test_run_flow_writes_a_json_report_and_junit_with_no_key_in_them(tmp_path):
    report, junit = tmp_path / "out" / "report.json", tmp_path / "out" / "junit.xml"
    seen: list[object] = []
    options = RunOptions(environ={}, emulator=True, report=report, junit=junit)

    summary = run_flow(FLOWS / "onboarding.yaml", options, [seen.append])

    assert summary.exit_code == 0, summary
    data = json.loads(report.read_text())
    assert data["run_id"] == summary.run_id and data["status"] == "passed"
    assert sum(step["ok"] for step in data["steps"]) == summary.counts["ok"] > 0
    cases = ET.parse(junit).getroot().findall(".//testcase")
    assert len(cases) == len(data["steps"])
    started = next(e for e in seen if isinstance(e, RunStarted))
    assert started.targets["app"].startswith("http://127.0.0.1:"), "the in-process emulator"
    for text in (report.read_text(), junit.read_text()):
        for key in (DEMO_CREDENTIALS.track_key, DEMO_CREDENTIALS.app_key):
            assert key not in text


def test_run_flow_with_the_emulator_journals_the_run_by_default(tmp_path):
    summary = run_flow(FLOWS / "onboarding.yaml", RunOptions(environ={}, emulator=True))
    assert summary.ok and summary.requests > 0
    journal = Path(os.environ["CIO_FLOWS_JOURNAL"])  # conftest: the default, under tmp_path
    assert [(r.run_id, r.status) for r in recent_runs(journal=journal)] == [
        (summary.run_id, "passed")
    ]


def test_journal_off_records_nothing_and_cannot_resume(tmp_path):
    summary = run_flow(
        FLOWS / "onboarding.yaml", RunOptions(environ={}, emulator=True, journal=False)
    )
    assert summary.ok
    assert not Path(os.environ["CIO_FLOWS_JOURNAL"]).exists()
    with pytest.raises(ValueError, match="needs a journal"):
        run_flow(FLOWS / "onboarding.yaml", RunOptions(journal=None, resume=summary.run_id))


def test_resuming_a_run_the_journal_lacks_raises_journal_error(tmp_path):
    journal = tmp_path / "journal.db"
    with pytest.raises(JournalError, match=f"no run 'nope' in the journal {journal}"):
        run_flow(FLOWS / "onboarding.yaml", RunOptions(resume="nope", journal=journal))


def test_a_second_concurrent_run_flow_of_the_same_run_id_is_refused_naming_the_holder(
    recording_server, tmp_path
):
    rows = 40

    def slow(request):
        time.sleep(0.02)
        return default_answer(request)

    recording_server.handler = slow
    flow, journal = write_flow(tmp_path, rows), tmp_path / "journal.db"
    options = RunOptions(
        run_id="front-door-1",
        journal=journal,
        environ=env_for(recording_server.url),
        workers=1,
        batch=False,
    )
    results = []
    first = threading.Thread(target=lambda: results.append(run_flow(flow, options)))
    first.start()
    deadline = time.monotonic() + 30
    while len(recording_server.requests) < 3:
        assert time.monotonic() < deadline and first.is_alive(), results
        time.sleep(0.005)

    second = replace(options, run_id=None, resume="front-door-1")
    with pytest.raises(JournalError) as refused:
        run_flow(flow, second)
    first.join(timeout=60)

    message = str(refused.value)
    assert "run 'front-door-1' is being executed by" in message
    assert f"pid {os.getpid()} on host {socket.gethostname()}" in message
    assert results and results[0].ok, results
    sent = len(recording_server.requests)
    assert sent == 2 * rows, "the refused resume sent nothing"
    resumed = run_flow(flow, second)  # the lock went with the first run
    assert resumed.ok and len(recording_server.requests) == sent, "nothing to send again"


@pytest.mark.parametrize(
    "data", ["missing.json", "missing.csv", "missing.jsonl", "a-file.csv/rows.csv"]
)
@pytest.mark.slow
def test_a_missing_or_unreadable_data_file_exits_2_with_its_path(tmp_path, data):
    (tmp_path / "a-file.csv").write_text("id\n1\n")
    flow = FLOWS / "sync_users.yaml"
    result = subprocess.run(
        cli("run", str(flow), "--emulator", "--data", data),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith(f"error: {data}:1:1: "), result.stderr
    assert "data file" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""

    with pytest.raises(DataFileError) as raised:
        run_flow(flow, RunOptions(environ={}, emulator=True, data=tmp_path / data))
    assert str(tmp_path / data) in str(raised.value)


def test_workspace_run_goes_through_the_journal_and_resume_finishes_nothing_twice(tmp_path):
    with Workspace.emulator(progress=False) as ws:
        table = ws.run(FLOWS / "onboarding.yaml")
        summary = table.attrs["summary"]
        assert summary.ok
        again = ws.resume(FLOWS / "onboarding.yaml", summary.run_id)
    assert again.attrs["summary"].run_id == summary.run_id
    assert again.attrs["summary"].requests == 0, "every step succeeded before: nothing resent"
    journal = Path(os.environ["CIO_FLOWS_JOURNAL"])
    assert [r.run_id for r in recent_runs(journal=journal)] == [summary.run_id]
