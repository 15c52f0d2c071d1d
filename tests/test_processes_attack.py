"""`run --processes N` attacked as a hostile user would (run/processes.py): signals at the worst
moments (while the workers are forked, before a worker's run starts), a worker that breaks, and
what is left behind. Each run is then resumed and every row must be sent exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from conftest import Recorded, default_answer, env_for
from support import cli, started
from test_processes import workers_of

from cio_flows import RunOptions, run_flow
from cio_flows.api import prepare
from cio_flows.run.events import StepFinished
from cio_flows.run.executor import Executor
from cio_flows.run.processes import AUTO_ROWS, available_cores, process_count

pytestmark = pytest.mark.slow

ROWS = 2_050  # 3 chunks of up to 1,000 rows: worker 1 of 2 takes the first and the third

# Identify and track only: batched (a handful of requests), no App API rate limit to wait on.
FLOW = """\
version: 1
name: sync
for_each: {file: people.csv, key: "{{ row.id }}"}
steps:
  - name: identify
    identify: {userId: "{{ row.id }}", traits: {email: "{{ row.email }}"}}
  - name: track
    track: {userId: "{{ row.id }}", event: synced}
"""


def write_flow(folder: Path, rows: int = ROWS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["id,email"] + [f"u{i:05d},u{i:05d}@example.com" for i in range(rows)]
    (folder / "people.csv").write_text("\n".join(lines) + "\n")
    path = folder / "sync.yaml"
    path.write_text(FLOW)
    return path


def identified(server) -> dict[str, set[str]]:
    """Each userId identified, with the messageIds it was identified with, over every batch the
    server received (a batch sent again after an interruption carries the same ids)."""
    seen: dict[str, set[str]] = defaultdict(set)
    for request in server.requests:
        if request.path == "/v1/batch":
            for item in request.body["batch"]:
                if item.get("type") == "identify":
                    seen[item["userId"]].add(item["messageId"])
    return seen


def outcomes(journal: Path, run_id: str) -> Counter[str]:
    """The statuses of the run's steps in the journal (not its "(run)" errors)."""
    with sqlite3.connect(journal) as db:
        rows = db.execute(
            "SELECT status FROM outcomes WHERE run_id = ? AND step_key LIKE 'steps.%'", (run_id,)
        )
        return Counter(status for (status,) in rows)


def resume_all(env: dict[str, str], flow: Path, run_id: str, journal: Path, server) -> None:
    """`--resume` in 2 processes finishes the run: every row identified, under one messageId
    (Customer.io keeps one: a batch whose outcomes a stopped run did not record is sent again)."""
    again = subprocess.run(
        cli("run", str(flow), "--resume", run_id, "--processes", "2"),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    ids = identified(server)
    assert len(ids) == ROWS and {len(message_ids) for message_ids in ids.values()} == {1}
    assert outcomes(journal, run_id) == {"ok": 2 * ROWS}


# A run in this script's process, SIGTERM arriving while its workers are being forked: the
# process gets it through a thread of its own (the journal's timer), as a kill from outside
# does, while the forking thread blocks signals.
SIGNAL_WHILE_FORKING = """
import json, os, signal, sys, threading
from cio_flows import RunOptions, run_flow

def sigterm_from_another_thread():
    if not fired:
        fired.append(1)
        sender = threading.Thread(target=os.kill, args=(os.getpid(), signal.SIGTERM))
        sender.start()
        sender.join()

fired = []
os.register_at_fork(after_in_parent=sigterm_from_another_thread)
try:
    summary = run_flow(sys.argv[1], RunOptions(processes=2))
    said = {"run_id": summary.run_id, "interrupted": summary.interrupted,
            "counts": {str(k): v for k, v in summary.counts.items()}}
except BaseException as exc:
    said = {"raised": repr(exc)}
said["children"] = [
    int(entry) for entry in os.listdir("/proc") if entry.isdigit()
    and open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[1] == str(os.getpid())
]
print(json.dumps(said))
"""


def test_a_signal_while_the_workers_are_forked_interrupts_the_run_and_leaves_no_worker(
    recording_server, tmp_path
):
    flow = write_flow(tmp_path / "flows")
    journal = tmp_path / "journal.db"
    env = {**os.environ, **env_for(recording_server.url, CIO_FLOWS_JOURNAL=str(journal))}
    done = subprocess.run(
        [sys.executable, "-c", SIGNAL_WHILE_FORKING, str(flow)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    said = json.loads(done.stdout.splitlines()[-1])
    # It stops as a Ctrl-C does, in run_flow's hands: no KeyboardInterrupt out of it with a
    # worker left running (and sending) in a process that lives on, a notebook's kernel.
    assert "raised" not in said, said
    assert said["interrupted"] is True and said["children"] == []
    assert said["counts"]["failed"] == 0
    resume_all(env, flow, said["run_id"], journal, recording_server)


# `cio-flows run`, each worker getting its parent's Ctrl-C (SIGUSR1) as soon as it is forked,
# while it still opens its journal and transport.
SIGNAL_BEFORE_A_WORKER_STARTS = (
    "import os, signal, sys; "
    "os.register_at_fork(after_in_child=lambda: os.kill(os.getpid(), signal.SIGUSR1)); "
    "sys.argv[0] = 'cio-flows'; from cio_flows.cli import main; main()"
)


def test_a_ctrl_c_a_worker_gets_before_its_rows_start_is_an_interruption_not_a_crash(
    recording_server, tmp_path
):
    flow = write_flow(tmp_path / "flows")
    journal = tmp_path / "journal.db"
    env = {**os.environ, **env_for(recording_server.url, CIO_FLOWS_JOURNAL=str(journal))}
    first = subprocess.run(
        [sys.executable, "-c", SIGNAL_BEFORE_A_WORKER_STARTS, "run", str(flow), "--processes", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = first.stdout + first.stderr
    assert first.returncode == 1, out
    assert "interrupted: the run did not finish" in out
    assert "stopped before its rows were done" not in out and "KeyboardInterrupt" not in out
    assert "failed" not in out.split("summary:")[1].split("\n")[0], out  # no failure counted
    run_id = first.stdout.splitlines()[0].removeprefix("run id: ")
    resume_all(env, flow, run_id, journal, recording_server)


def test_a_worker_that_breaks_is_reported_and_its_recorded_outcomes_are_heard(
    recording_server, tmp_path, monkeypatch
):
    """A bug in a worker (here on its second chunk): the run says so and exits 1, and the
    listeners heard every outcome the journal recorded (the console, reports), as in one
    process; a resume finishes the rows."""
    flow = write_flow(tmp_path / "flows")
    journal = tmp_path / "journal.db"
    original = Executor._run_chunk_steps

    def breaks_on_the_last_chunk(self, rows):
        if rows and rows[0] is not None and rows[0].number > 2000:
            raise RuntimeError("a bug in the worker")
        original(self, rows)

    monkeypatch.setattr(Executor, "_run_chunk_steps", breaks_on_the_last_chunk)
    heard: list[object] = []
    environ = env_for(recording_server.url)
    # one thread a process: the worker has finished its first chunk when the third breaks
    options = RunOptions(environ=environ, processes=2, workers=2, journal=journal)
    before = set(workers_of(os.getpid()))  # pytest's own (servers of other tests' fixtures)
    summary = run_flow(flow, options, [heard.append])
    monkeypatch.undo()

    assert summary.exit_code == 1 and summary.interrupted
    assert set(workers_of(os.getpid())) - before == set()
    errors = [e for e in heard if type(e).__name__ == "RunError"]
    assert len(errors) == 1 and "RuntimeError: a bug in the worker" in str(errors[0])
    recorded = outcomes(journal, summary.run_id)
    heard_ok = sum(1 for e in heard if isinstance(e, StepFinished) and e.status == "ok")
    assert recorded["ok"] == heard_ok == 2 * 2000  # the two chunks done, every outcome heard

    env = {**os.environ, **environ, "CIO_FLOWS_JOURNAL": str(journal)}
    resume_all(env, flow, summary.run_id, journal, recording_server)


def test_no_more_processes_than_workers_each_keeps_a_chunk_in_flight(tmp_path):
    """--workers is the chunks in flight over the whole run, one a process at least: `--workers
    1` (one chunk at a time, rows in order) keeps a big run in one process, and `--processes 4
    --workers 2` runs 2 processes, saying why."""
    flow = write_flow(tmp_path / "flows", AUTO_ROWS)

    def prepared(**options: object):
        return prepare(flow, RunOptions(environ=env_for("http://127.0.0.1:9"), **options))

    assert process_count(prepared(workers=1), None, emulated=False) == 1
    assert process_count(prepared(workers=2), None, emulated=False) == min(available_cores(), 2)
    capped = prepared(workers=2)
    assert process_count(capped, 4, emulated=False) == 2
    assert capped.notes == [
        "--processes 4: --workers 2 allows 2 chunk(s) in flight, each process one at least:"
        " the run uses 2 process(es)"
    ]
    assert process_count(prepared(workers=3), 3, emulated=False) == 3


def test_a_caller_listener_that_ends_the_run_leaves_no_worker_behind(recording_server, tmp_path):
    """A Python caller's listener that raises past the dispatcher (SystemExit: "stop at the
    first failure") ends run_flow in this process, which lives on (a notebook): its workers
    are stopped and reaped, not left sending with the run's lock; a resume finishes the rows."""
    flow = write_flow(tmp_path / "flows")
    journal = tmp_path / "journal.db"
    environ = env_for(recording_server.url)

    def stop_at_first_outcome(event: object) -> None:
        if isinstance(event, StepFinished):
            raise SystemExit("enough")

    options = RunOptions(environ=environ, processes=2, workers=2, journal=journal)
    before = set(workers_of(os.getpid()))  # pytest's own (servers of other tests' fixtures)
    with pytest.raises(SystemExit):
        run_flow(flow, options, [stop_at_first_outcome])
    assert set(workers_of(os.getpid())) - before == set()
    with sqlite3.connect(journal) as db:
        (run_id,) = db.execute("SELECT run_id FROM runs").fetchone()
    env = {**os.environ, **environ, "CIO_FLOWS_JOURNAL": str(journal)}
    resume_all(env, flow, run_id, journal, recording_server)


def test_one_sigterm_to_the_process_group_stops_the_run_as_one_ctrl_c(recording_server, tmp_path):
    """`kill -TERM -- -PGID`, systemd's stop (every process of the unit): the run and each of
    its workers get SIGTERM once. That is one signal, as in one process: the steps in flight
    finish and are recorded, not left behind as after a second one."""
    flow = write_flow(tmp_path / "flows")
    journal = tmp_path / "journal.db"
    sent = threading.Event()

    def slow(request: Recorded) -> tuple[int, dict[str, str], Any]:
        sent.set()
        time.sleep(0.5)  # the batches in flight when the signal comes
        return default_answer(request)

    recording_server.handler = slow
    env = {**os.environ, **env_for(recording_server.url, CIO_FLOWS_JOURNAL=str(journal))}
    first = started(cli("run", str(flow), "--processes", "2"), env, own_group=True)
    assert sent.wait(120), "nothing was sent"
    os.killpg(first.pid, signal.SIGTERM)
    out, err = first.communicate(timeout=120)
    assert first.returncode == 1, out + err
    assert "interrupted: the run did not finish" in out
    assert "second signal" not in out + err  # the steps in flight were waited for
    run_id = out.splitlines()[0].removeprefix("run id: ")
    recording_server.handler = default_answer
    resume_all(env, flow, run_id, journal, recording_server)
