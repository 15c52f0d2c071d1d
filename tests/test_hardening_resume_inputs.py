"""`--resume RUN_ID` with another flow or data file: refused (exit 2, naming what changed), or with
`--resume-changed` run under new keys for new and changed steps only (issue 18, item 1)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from support import cli

from cio_flows import RunOptions
from cio_flows.api import options_for_emulator
from cio_flows.emulator import Emulator

pytestmark = pytest.mark.slow  # each test runs the CLI as a real process

ROWS = 4
FLOW_A = """\
version: 1
name: resume_a
for_each: {file: users.csv, key: "{{ row.id }}"}
steps:
  - identify: {userId: "{{ row.id }}", traits: {email: "{{ row.email }}"}}
  - track: {userId: "{{ row.id }}", event: synced}
"""
# Another flow: the same second step, a different first one.
FLOW_B = FLOW_A.replace("name: resume_a", "name: resume_b").replace(
    '- identify: {userId: "{{ row.id }}", traits: {email: "{{ row.email }}"}}',
    '- track: {userId: "{{ row.id }}", event: migrated}',
)
# A step inserted at the top: the others move down a key.
FLOW_INSERTED = FLOW_A.replace(
    "steps:\n", 'steps:\n  - track: {userId: "{{ row.id }}", event: first}\n'
)


@pytest.fixture
def emulator():
    with Emulator(workspace={}) as running:
        yield running


@pytest.fixture
def env(emulator, tmp_path) -> dict[str, str]:
    environ = dict(os.environ)
    environ.update(options_for_emulator(emulator, RunOptions(environ={})).environ)
    environ["CIO_FLOWS_JOURNAL"] = str(tmp_path / "journal.db")
    return environ


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def rows_csv(tmp_path: Path, emails: str = "example.com") -> None:
    lines = ["id,email"] + [f"r{i},r{i}@{emails}" for i in range(ROWS)]
    write(tmp_path, "users.csv", "\n".join(lines) + "\n")


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli("run", *args, "--no-batch"), env=env, capture_output=True, text=True, timeout=120
    )


def first_run(env: dict[str, str], flow: Path) -> str:
    done = run_cli(env, str(flow))
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.splitlines()[0].removeprefix("run id: ")


def events_named(emulator: Emulator, name: str) -> list[dict]:
    return [event for event in emulator.inspect.events() if event.get("name") == name]


def test_resuming_with_another_flow_is_refused_naming_it(emulator, env, tmp_path):
    rows_csv(tmp_path)
    run_id = first_run(env, write(tmp_path, "a.yaml", FLOW_A))
    sent = len(emulator.inspect.requests("pipelines"))
    other = run_cli(env, str(write(tmp_path, "b.yaml", FLOW_B)), "--resume", run_id)
    assert other.returncode == 2, other.stdout + other.stderr
    assert "b.yaml" in other.stderr and "a.yaml" in other.stderr
    assert "the flow changed" in other.stderr and "steps.0" in other.stderr
    assert "Traceback" not in other.stderr
    assert len(emulator.inspect.requests("pipelines")) == sent  # nothing sent


def test_resuming_with_replaced_data_is_refused(emulator, env, tmp_path):
    rows_csv(tmp_path)
    flow = write(tmp_path, "a.yaml", FLOW_A)
    run_id = first_run(env, flow)
    rows_csv(tmp_path, emails="example.org")  # same file name, other rows
    again = run_cli(env, str(flow), "--resume", run_id)
    assert again.returncode == 2, again.stdout + again.stderr
    assert "users.csv changed" in again.stderr


def test_a_step_inserted_at_the_top_is_refused_then_runs_alone_with_resume_changed(
    emulator, env, tmp_path
):
    rows_csv(tmp_path)
    flow = write(tmp_path, "a.yaml", FLOW_A)
    run_id = first_run(env, flow)
    flow.write_text(FLOW_INSERTED)
    refused = run_cli(env, str(flow), "--resume", run_id)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "new or changed steps steps.0" in refused.stderr
    assert events_named(emulator, "first") == []

    sent = len(emulator.inspect.requests("pipelines"))
    accepted = run_cli(env, str(flow), "--resume", run_id, "--resume-changed")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    # Only the new step went out, once a row; the moved steps kept their keys (not resent).
    assert len(events_named(emulator, "first")) == ROWS
    assert len(events_named(emulator, "synced")) == ROWS
    assert len(emulator.inspect.requests("pipelines")) == sent + ROWS

    # The resumed run now holds the changed flow: resuming it again needs no flag, sends nothing.
    again = run_cli(env, str(flow), "--resume", run_id)
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(emulator.inspect.requests("pipelines")) == sent + ROWS


def test_a_changed_step_gets_new_message_ids_with_resume_changed(emulator, env, tmp_path):
    rows_csv(tmp_path)
    flow = write(tmp_path, "a.yaml", FLOW_A)
    run_id = first_run(env, flow)
    flow.write_text(FLOW_A.replace("event: synced", "event: resynced"))
    accepted = run_cli(env, str(flow), "--resume", run_id, "--resume-changed")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    # A reused messageId would make Customer.io drop the new event: it arrives, once a row.
    assert len(events_named(emulator, "resynced")) == ROWS
    assert len(events_named(emulator, "synced")) == ROWS
