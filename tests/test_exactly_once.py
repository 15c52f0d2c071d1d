"""Exactly-once sends with real `cio-flows run` processes and real servers on 127.0.0.1 (issue 19).

Outcomes of sends committed as they arrive; unknown sends settled on resume by reading the
person's messages (found: not resent; unreadable: left unknown, --resend-unknown sends them);
`once:` keys across runs; the resume command printed on SIGTERM; and a SIGKILL mid-run against
the emulator, then a plain resume: everyone gets exactly one email.
"""

from __future__ import annotations

import json
import os
import random
import re
import shlex
import signal
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from conftest import Recorded, default_answer, env_for
from support import cli

from cio_flows import RunOptions
from cio_flows.api import options_for_emulator
from cio_flows.emulator import Emulator

pytestmark = pytest.mark.slow

FLOW = """\
version: 1
name: welcome
vars: {{greeting: hello}}
for_each: {{file: people.csv, key: "{{{{ row.id }}}}"}}
steps:
  - name: identify
    identify: {{userId: "{{{{ row.id }}}}", traits: {{email: "{{{{ row.email }}}}"}}}}
  - name: welcome
{once}    send_email:
      transactional_message_id: welcome
      to: "{{{{ row.email }}}}"
      identifiers: {{id: "{{{{ row.id }}}}"}}
      message_data: {{greeting: "{{{{ greeting }}}}"}}
"""


def write_flow(folder: Path, rows: int, *, once: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_people(folder, rows)
    path = folder / "welcome.yaml"
    path.write_text(FLOW.format(once='    once: "welcome:{{ row.id }}"\n' if once else ""))
    return path


def write_people(folder: Path, rows: int) -> None:
    lines = ["id,email"] + [f"u{i:04d},u{i:04d}@example.com" for i in range(rows)]
    (folder / "people.csv").write_text("\n".join(lines) + "\n")


def start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        cli("run", *args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cli("run", *args), env=env, capture_output=True, text=True, timeout=180)


def run_id_of(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("run id: "), line
    return line.strip().removeprefix("run id: ")


def statuses(journal: Path, run_id: str, step: str = "steps.1") -> Counter[str]:
    with sqlite3.connect(journal) as db:
        rows = db.execute(
            "SELECT status FROM outcomes WHERE run_id = ? AND step_key = ?", (run_id, step)
        )
        return Counter(status for (status,) in rows)


class MessagesServer:
    """The recording server as Customer.io: a send is recorded when it arrives (then answered
    after `delay`), and GET /v1/customers/{id}/messages lists the sends recorded for a person."""

    def __init__(self, server: Any, delay: float, messages_status: int = 200) -> None:
        self.server = server
        self.delay = delay
        self.messages_status = messages_status
        self.arrived: dict[str, float] = {}  # recipient -> when its (last) send arrived
        self._lock = threading.Lock()
        server.handler = self.answer

    def sends(self) -> Counter[str]:
        return Counter(
            r.body["to"] for r in list(self.server.requests) if r.path == "/v1/send/email"
        )

    def answer(self, request: Recorded) -> tuple[int, dict[str, str], Any]:
        url = urlsplit(request.path)
        if url.path == "/v1/send/email":
            with self._lock:
                self.arrived[request.body["to"]] = time.time()
            time.sleep(self.delay)
            return 200, {}, {"delivery_id": f"dlv-{request.body['to']}", "queued_at": 1}
        match = re.fullmatch(r"/v1/customers/([^/]+)/messages", url.path)
        if match is None:
            return default_answer(request)
        if self.messages_status != 200:
            return self.messages_status, {}, {"meta": {"error": "forbidden"}}
        person = unquote(match[1])
        start_ts = int(parse_qs(url.query)["start_ts"][0])
        found = [
            {
                "id": f"dlv-{r.body['to']}",
                "type": "email",
                "recipient": r.body["to"],
                "created": int(self.arrived.get(r.body["to"], 0)),
                "transactional_message_id": r.body["transactional_message_id"],
            }
            for r in list(self.server.requests)
            if r.path == "/v1/send/email" and r.body["identifiers"]["id"] == person
        ]
        return 200, {}, {"messages": [m for m in found if m["created"] >= start_ts], "next": ""}


def kill_after_sends(server: MessagesServer, env: dict[str, str], flow: Path, sends: int) -> str:
    """Start a run, SIGKILL it once `sends` sends reached the server; its run id."""
    first = start(env, str(flow), "--no-batch", "--workers", "4")
    run_id = run_id_of(first)
    deadline = time.monotonic() + 60
    while sum(server.sends().values()) < sends:
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline, "the run never sent that many"
        time.sleep(0.005)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    return run_id


def test_outcomes_of_sends_are_committed_as_they_arrive(recording_server, tmp_path):
    server = MessagesServer(recording_server, delay=0.01)
    flow, journal = write_flow(tmp_path, 300), tmp_path / "journal.db"
    env = env_for(recording_server.url, CIO_FLOWS_JOURNAL=str(journal))
    run_id = kill_after_sends(server, env, flow, 120)
    sent = sum(server.sends().values())
    final = statuses(journal, run_id)
    # Only what was truly in flight (one per worker) is unknown; every other send that got
    # an answer is committed ok, not left in a batch the kill lost.
    assert final["in_flight"] <= 4, final
    assert final["ok"] >= sent - 4, (final, sent)


def test_a_resume_after_sigkill_settles_unknown_sends_from_customer_io(recording_server, tmp_path):
    server = MessagesServer(recording_server, delay=0.05)  # sends spend 50 ms in flight
    flow, journal = write_flow(tmp_path, 120), tmp_path / "journal.db"
    env = env_for(recording_server.url, CIO_FLOWS_JOURNAL=str(journal))
    run_id = kill_after_sends(server, env, flow, 40)
    in_flight = statuses(journal, run_id)["in_flight"]
    assert in_flight >= 1, "a kill among 4 workers each 50 ms in flight catches some"

    report = tmp_path / "report.json"
    resumed = run(env, str(flow), "--resume", run_id, "--report", str(report))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    counted = server.sends()
    assert len(counted) == 120 and max(counted.values()) == 1, counted.most_common(3)
    assert statuses(journal, run_id) == {"ok": 120}
    settled = json.loads(report.read_text())["settled"]
    assert len(settled) == in_flight
    found = [s for s in settled if s["how"] == "found"]
    assert found, settled  # recorded when they arrived: Customer.io lists them
    for item in found:
        assert item["step"] == "welcome" and "not sent again" in item["reason"]
    assert f"unknown sends settled: {len(found)} found in Customer.io" in resumed.stdout
    assert f"settling {in_flight} unknown send(s) of run {run_id}" in resumed.stderr
    assert f"row {found[0]['row_key']}, welcome: found in Customer.io (dlv-" in resumed.stdout


def test_unknown_sends_stay_unknown_when_customer_io_cannot_be_read(recording_server, tmp_path):
    server = MessagesServer(recording_server, delay=0.05, messages_status=403)
    flow, journal = write_flow(tmp_path, 120), tmp_path / "journal.db"
    env = env_for(recording_server.url, CIO_FLOWS_JOURNAL=str(journal))
    run_id = kill_after_sends(server, env, flow, 40)
    in_flight = statuses(journal, run_id)["in_flight"]
    assert in_flight >= 1

    resumed = run(env, str(flow), "--resume", run_id)
    assert resumed.returncode == 4, resumed.stdout + resumed.stderr
    assert f"{in_flight} left unknown (Customer.io could not be read)" in resumed.stdout
    assert "HTTP 403" in resumed.stdout
    counted = server.sends()  # an in-flight send may have arrived or not: never resent
    assert max(counted.values()) == 1 and len(counted) >= 120 - in_flight
    assert statuses(journal, run_id)["unknown"] == in_flight

    again = run(env, str(flow), "--resume", run_id, "--resend-unknown")  # the explicit override
    assert again.returncode == 0, again.stdout + again.stderr
    assert statuses(journal, run_id) == {"ok": 120}
    assert len(server.sends()) == 120


def test_sigterm_prints_the_exact_resume_command_and_it_finishes_the_run(
    recording_server, tmp_path
):
    server = MessagesServer(recording_server, delay=0.01)
    flow = write_flow(tmp_path / "flows", 200)
    data = tmp_path / "flows" / "people.csv"
    env = env_for(recording_server.url, CIO_FLOWS_JOURNAL=str(tmp_path / "journal.db"))
    first = start(env, str(flow), "--data", str(data), "--var", "greeting=hi there")
    run_id = run_id_of(first)
    while sum(server.sends().values()) < 30:
        assert first.poll() is None, first.communicate()
        time.sleep(0.005)
    first.send_signal(signal.SIGTERM)
    out, err = first.communicate(timeout=60)
    assert first.returncode == 1, out + err
    command = next(line for line in out.splitlines() if line.startswith("to go on where"))
    given = ["--data", str(data), "--var", "greeting=hi there"]
    expected = shlex.join(["cio-flows", "run", str(flow), "--resume", run_id, *given])
    assert command == f"to go on where it stopped: {expected}"

    words = shlex.split(command.split(": ", 1)[1])
    resumed = subprocess.run(cli(*words[1:]), env=env, capture_output=True, text=True, timeout=180)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    counted = server.sends()
    assert len(counted) == 200 and max(counted.values()) == 1
    greetings = {
        r.body["message_data"]["greeting"]
        for r in recording_server.requests
        if r.path == "/v1/send/email"
    }
    assert greetings == {"hi there"}  # the resume kept the run's --var


@pytest.fixture
def emulator():
    with Emulator(workspace={}, faults={"app": {"latency": 0.05}}) as running:
        yield running


def emulator_env(emulator: Emulator, journal: Path) -> dict[str, str]:
    environ = dict(os.environ)
    environ.update(options_for_emulator(emulator, RunOptions(environ={})).environ)
    environ["CIO_FLOWS_JOURNAL"] = str(journal)
    return environ


def welcome_emails(emulator: Emulator) -> Counter[str]:
    return Counter(
        d["recipient"]
        for d in emulator.inspect.deliveries()
        if d["channel"] == "email" and d["template"] == "welcome"
    )


def test_sigkill_at_a_random_moment_then_a_plain_resume_sends_each_welcome_once(emulator, tmp_path):
    rows = 240
    flow, journal = write_flow(tmp_path, rows), tmp_path / "journal.db"
    env = emulator_env(emulator, journal)
    first = start(env, str(flow))
    run_id = run_id_of(first)
    time.sleep(random.Random(19).uniform(1.0, 3.0))
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)

    resumed = run(env, str(flow), "--resume", run_id)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    emails = welcome_emails(emulator)
    assert set(emails) == {f"u{i:04d}@example.com" for i in range(rows)}
    assert max(emails.values()) == 1
    assert statuses(journal, run_id) == {"ok": rows}


def test_once_sends_each_key_once_across_runs_sharing_a_journal(emulator, tmp_path):
    rows = 240
    flow, journal = write_flow(tmp_path, rows, once=True), tmp_path / "journal.db"
    env = emulator_env(emulator, journal)
    first = run(env, str(flow))
    assert first.returncode == 0, first.stdout + first.stderr
    assert sum(welcome_emails(emulator).values()) == rows

    second = run(env, str(flow))
    assert second.returncode == 0, second.stdout + second.stderr
    assert sum(welcome_emails(emulator).values()) == rows  # none sent
    assert (
        f"skipped welcome (send_email) in {rows} row(s): done once already"
        " (its once key is in the journal)"
    ) in second.stdout
    assert f"{rows} skipped" in second.stdout

    write_people(tmp_path, rows + 1)
    third = run(env, str(flow))
    assert third.returncode == 0, third.stdout + third.stderr
    emails = welcome_emails(emulator)
    assert sum(emails.values()) == rows + 1 and emails[f"u{rows:04d}@example.com"] == 1

    ignored = run(env, str(flow), "--ignore-once", "--var", "greeting=again")
    assert ignored.returncode == 0, ignored.stdout + ignored.stderr
    assert sum(welcome_emails(emulator).values()) == 2 * (rows + 1)


def test_once_keys_hold_across_flows_and_within_a_run(emulator, tmp_path):
    flow = write_flow(tmp_path, 3, once=True)
    env = emulator_env(emulator, tmp_path / "journal.db")
    # The same person twice in one file: the second row finds the key claimed.
    (tmp_path / "people.csv").write_text("id,email\nu1,u1@example.com\n")
    doubled = tmp_path / "doubled.csv"
    doubled.write_text("id,email\nu2,u2@example.com\nu2,u2@example.com\n")
    other = tmp_path / "other.yaml"
    other.write_text(
        flow.read_text()
        .replace("name: welcome\nvars", "name: other_flow\nvars")
        .replace(', key: "{{ row.id }}"}', "}")
    )
    assert run(env, str(flow)).returncode == 0
    again = run(env, str(other), "--data", str(doubled))
    assert again.returncode == 0, again.stdout + again.stderr
    done = run(env, str(other), "-v")  # u1, done by the first flow; -v: each skipped row
    assert done.returncode == 0 and "done once already (key welcome:u1)" in done.stdout
    assert welcome_emails(emulator) == {"u1@example.com": 1, "u2@example.com": 1}


BROADCAST = """\
version: 1
name: launch
steps:
  - name: announce
    trigger_broadcast: {broadcast_id: 12, data: {launch: spring}}
    save: trigger
  - name: after
    track: {userId: ops, event: "announced {{ steps.trigger.id }}"}
"""


def test_a_broadcast_trigger_in_flight_at_a_kill_is_settled_from_the_trigger_list(
    recording_server, tmp_path
):
    arrived = threading.Event()
    triggers: list[dict[str, Any]] = []

    def answer(request: Recorded) -> tuple[int, dict[str, str], Any]:
        path = urlsplit(request.path).path
        if request.method == "POST" and path == "/v1/campaigns/12/triggers":
            triggers.append({"id": 40 + len(triggers), "created_at": int(time.time())})
            arrived.set()
            time.sleep(30)  # the answer never reaches the killed run
            return 200, {}, {"id": triggers[-1]["id"]}
        if path == "/v1/broadcasts/12/triggers":
            return 200, {}, {"triggers": [{"id": 7, "created_at": 1_600_000_000}, *triggers]}
        return default_answer(request)

    recording_server.handler = answer
    flow = tmp_path / "launch.yaml"
    flow.write_text(BROADCAST)
    journal = tmp_path / "journal.db"
    env = env_for(recording_server.url, CIO_FLOWS_JOURNAL=str(journal))
    first = start(env, str(flow))
    run_id = run_id_of(first)
    assert arrived.wait(60), first.communicate()
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    assert statuses(journal, run_id, "steps.0") == {"in_flight": 1}

    resumed = run(env, str(flow), "--resume", run_id)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert len(triggers) == 1, "not triggered again"
    assert "1 found in Customer.io (not sent again)" in resumed.stdout
    assert "row -, announce: found in Customer.io (40)" in resumed.stdout
    tracked = [r.body for r in recording_server.requests if r.path.endswith("/track")]
    assert [t["event"] for t in tracked] == ["announced 40"]  # the save rebuilt from the list
