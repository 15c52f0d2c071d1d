"""Journal and resume: a run killed with SIGKILL resumes to deliver every row exactly once."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time

import pytest
from support import cli, cli_ctrl_c, message_ids

from cio_flows import RunOptions, run_flow
from cio_flows.api import options_for_emulator
from cio_flows.emulator import Emulator

pytestmark = pytest.mark.slow  # every test kills or interrupts a real cio-flows process

ROWS = 300

FLOW = """\
version: 1
name: resume
for_each: {file: users.csv, key: "{{ row.id }}"}
steps:
  - identify: {userId: "{{ row.id }}", traits: {email: "{{ row.email }}"}}
  - track: {userId: "{{ row.id }}", event: synced}
"""


def write_flow_and_rows(tmp_path, rows: int):
    lines = ["id,email"] + [f"r{i},r{i}@example.com" for i in range(rows)]
    (tmp_path / "users.csv").write_text("\n".join(lines) + "\n")
    path = tmp_path / "resume.yaml"
    path.write_text(FLOW)
    return path


@pytest.fixture
def flow(tmp_path):
    return write_flow_and_rows(tmp_path, ROWS)


def cli_env(emulator, tmp_path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(options_for_emulator(emulator, RunOptions(environ={})).environ)
    env["CIO_FLOWS_JOURNAL"] = str(tmp_path / "journal.db")
    return env


def start_run_until(emulator, env, flow, *, workers: int, requests: int):
    """Start `cio-flows run` row by row; return (process, run id) once `requests` have arrived."""
    process = subprocess.Popen(
        cli_ctrl_c("run", str(flow), "--no-batch", "--workers", str(workers)),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    run_id = process.stdout.readline().strip().removeprefix("run id: ")
    deadline = time.monotonic() + 60
    while len(emulator.inspect.requests("pipelines")) < requests and time.monotonic() < deadline:
        time.sleep(0.02)
    return process, run_id


def test_sigkill_then_resume_delivers_every_row_with_the_same_ids(flow, tmp_path):
    with Emulator(workspace={}, faults={"pipelines": {"latency": 0.02}}) as emulator:
        env = cli_env(emulator, tmp_path)
        first, run_id = start_run_until(emulator, env, flow, workers=4, requests=ROWS)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        before = len(emulator.inspect.requests("pipelines"))
        assert 0 < before < 2 * ROWS, "the kill should land halfway"

        runs = subprocess.run(cli("runs"), env=env, capture_output=True, text=True, timeout=60)
        assert run_id in runs.stdout and "interrupted" in runs.stdout

        resumed = subprocess.run(
            cli("run", str(flow), "--resume", run_id, "--no-batch"),
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert resumed.stdout.startswith(f"run id: {run_id}\n")

        ids = message_ids(emulator)
        assert len(ids) == 2 * ROWS  # every (row, step) arrived
        assert all(len(v) == 1 for v in ids.values()), "a resent request changed its messageId"
        assert len(emulator.inspect.people()) == ROWS
        assert len(emulator.inspect.events()) == ROWS  # deduplicated: no event twice
        resent = len(emulator.inspect.requests("pipelines")) - before
        assert resent < 2 * ROWS  # what succeeded before was not sent again


def test_faults_and_429s_still_deliver_every_event_once(tmp_path):
    rows = 100
    flow = write_flow_and_rows(tmp_path, rows)
    faults = {"track": {"error_rate": 0.1, "error_statuses": [503], "seed": 7}}
    with Emulator(workspace={}, faults=faults, limits={"track": {"rate": 80, "burst": 2}}) as emu:
        options = options_for_emulator(emu, RunOptions(environ={}, batch=False, workers=8))
        options.environ["CUSTOMERIO_PIPELINES_KEY"] = ""  # Track API: v1 events with ids
        summary = run_flow(flow, options)
        assert summary.ok, summary
        statuses = [r["status"] for r in emu.inspect.requests("track")]
        assert statuses.count(503) > 0 and statuses.count(429) > 0
        assert summary.throttled == statuses.count(429)
        assert len(emu.inspect.people()) == rows
        assert len(emu.inspect.events()) == rows


def test_ctrl_c_stops_cleanly_and_the_journal_says_interrupted(flow, tmp_path):
    with Emulator(workspace={}, faults={"pipelines": {"latency": 0.02}}) as emulator:
        env = cli_env(emulator, tmp_path)
        first, run_id = start_run_until(emulator, env, flow, workers=2, requests=40)
        first.send_signal(signal.SIGINT)
        out, err = first.communicate(timeout=30)
        assert first.returncode == 1, out + err
        assert "interrupted: the run did not finish" in out
        assert "Traceback" not in err
        runs = subprocess.run(cli("runs"), env=env, capture_output=True, text=True, timeout=60)
        line = next(line for line in runs.stdout.splitlines() if line.startswith(run_id))
        assert "interrupted" in line
        resumed = subprocess.run(
            cli("run", str(flow), "--resume", run_id),
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert len(emulator.inspect.events()) == ROWS


SEND_FLOW = """\
version: 1
name: resume_sends
for_each: {file: users.csv, key: "{{ row.id }}"}
steps:
  - identify: {userId: "{{ row.id }}", traits: {email: "{{ row.email }}"}}
  - send_email:
      transactional_message_id: welcome
      to: "{{ row.email }}"
      identifiers: {id: "{{ row.id }}"}
"""


def test_sigkill_of_a_batched_run_with_sends_then_resume_emails_nobody_twice(tmp_path):
    rows = 300
    write_flow_and_rows(tmp_path, rows)
    flow = tmp_path / "sends.yaml"
    flow.write_text(SEND_FLOW)
    faults = {"app": {"latency": 0.01}}
    with Emulator(workspace={}, faults=faults) as emulator:
        env = cli_env(emulator, tmp_path)
        first = subprocess.Popen(
            cli("run", str(flow), "--workers", "4"),  # batched identify, sends one by one
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        run_id = first.stdout.readline().strip().removeprefix("run id: ")
        deadline = time.monotonic() + 60
        while len(emulator.inspect.deliveries()) < 60 and time.monotonic() < deadline:
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)

        resumed = subprocess.run(
            cli("run", str(flow), "--resume", run_id),
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert resumed.returncode in (0, 4), resumed.stdout + resumed.stderr  # 4: unknown sends
        recipients = [d["recipient"] for d in emulator.inspect.deliveries()]
        assert len(recipients) == len(set(recipients)), "an email went out twice"
        with sqlite3.connect(tmp_path / "journal.db") as db:
            sends = dict(
                db.execute(
                    "SELECT status, count(*) FROM outcomes WHERE step_key = 'steps.1' GROUP BY 1"
                ).fetchall()
            )
        assert set(sends) <= {"ok", "unknown"} and sum(sends.values()) == rows
        assert len(recipients) >= sends["ok"]  # every send settled ok went out, once
        assert sends.get("unknown", 0) <= 8  # at most what was in flight when it died
        assert len(emulator.inspect.people()) == rows
