"""`cio-flows test` as a CI suite (tags, jobs, shards, fail-fast, reports), --env-file, -v and
--trace, --emulator-workspace, and exit statuses 3 and 4, against servers on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import SECRETS, env_for
from support import TEAM_HELLO, TEAM_WORKSPACE

from cio_flows.cli import main
from cio_flows.wire.retry import RetryPolicy

# --- a server that sleeps, counts concurrent requests and can refuse or hang up -------------


@dataclass
class SlowServer:
    url: str = ""
    delay: float = 0.0
    status: Callable[[str, dict], int] = lambda path, body: 200
    answer: Callable[[dict, dict], Any] = lambda headers, body: {}
    hang_up: Callable[[str], bool] = lambda path: False  # close without answering
    users: list[str] = field(default_factory=list)  # userId of every identify received
    headers: list[dict[str, str]] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    # Hold each request until another is in flight too (or `overlap_wait` passes): flows that
    # run concurrently then overlap for certain, however slow the machine.
    hold_for_overlap: bool = False
    overlap_wait: float = 60.0
    lock: threading.Condition = field(default_factory=threading.Condition)


@pytest.fixture
def server() -> Iterator[SlowServer]:
    state = SlowServer()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"null") or {}
            with state.lock:
                state.in_flight += 1
                state.most_in_flight = max(state.most_in_flight, state.in_flight)
                state.lock.notify_all()
                state.headers.append(dict(self.headers))
                if "userId" in body:
                    state.users.append(body["userId"])
                if state.hold_for_overlap:
                    state.lock.wait_for(lambda: state.most_in_flight > 1, state.overlap_wait)
            try:
                time.sleep(state.delay)
                hang_up = state.hang_up(self.path)
                if not hang_up:
                    data = json.dumps(state.answer(dict(self.headers), body)).encode()
                    status = state.status(self.path, body)
            finally:
                # Out of flight before the client can see an answer: its next request (the
                # next flow's, with --jobs 1) must never count as overlapping this one.
                with state.lock:
                    state.in_flight -= 1
            if hang_up:
                self.close_connection = True
                return
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_PUT = do_POST

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def quick_retries(monkeypatch):
    """Backoff of a millisecond: the retries still happen, the test does not wait for them."""
    monkeypatch.setattr(RetryPolicy, "backoff", lambda self, attempt, rng=None: 0.001)


def write_suite(directory: Path, flows: dict[str, list[str]]) -> Path:
    """One flow per name, identifying user `<name>`, with the given tags."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, tags in flows.items():
        (directory / f"{name}.yaml").write_text(
            f"version: 1\nname: {name}\ntags: {json.dumps(tags)}\n"
            f"steps:\n  - identify: {{userId: {name}}}\n",
            encoding="utf-8",
        )
    return directory


def cli(args: list[str], env: dict[str, str]):
    return CliRunner().invoke(main, args, env=env, catch_exceptions=False)


def junit_cases(path: Path) -> dict[str, ET.Element]:
    return {case.get("name"): case for case in ET.parse(path).getroot().iter("testcase")}


def report_statuses(path: Path) -> dict[str, str]:
    return {flow["name"]: flow["status"] for flow in json.loads(path.read_text())["flows"]}


# --- selection: tags, shards ------------------------------------------------------------------


def test_tags_select_flows_with_any_of_them_and_junit_lists_exactly_those(tmp_path, server):
    suite = write_suite(
        tmp_path / "suite",
        {"a_smoke": ["smoke"], "b_slow": ["slow"], "c_billing": ["smoke", "billing"], "d_none": []},
    )
    junit = tmp_path / "junit.xml"
    result = cli(
        ["test", str(suite), "--tag", "billing", "--tag", "slow", "--junit", str(junit)],
        env_for(server.url),
    )
    assert result.exit_code == 0, result.output
    assert sorted(server.users) == ["b_slow", "c_billing"]
    assert set(junit_cases(junit)) == {"b_slow", "c_billing"}
    assert "2 passed, 0 failed" in result.output


def test_a_tag_no_flow_has_selects_nothing_and_exits_2(tmp_path, server):
    suite = write_suite(tmp_path / "suite", {"a": ["smoke"]})
    result = cli(["test", str(suite), "--tag", "nightly"], env_for(server.url))
    assert result.exit_code == 2
    assert "no flow selected" in result.output and server.users == []


def test_two_shards_together_run_every_flow_exactly_once(tmp_path, server):
    names = [f"flow_{n}" for n in range(7)]
    suite = write_suite(tmp_path / "suite", {name: [] for name in names})
    listed = []
    for shard in ("1/2", "2/2"):
        junit = tmp_path / f"junit_{shard[0]}.xml"
        result = cli(
            ["test", str(suite), "--shard", shard, "--junit", str(junit)], env_for(server.url)
        )
        assert result.exit_code == 0, result.output
        listed.append(set(junit_cases(junit)))
    assert sorted(server.users) == names  # each once
    assert listed[0] | listed[1] == set(names) and not listed[0] & listed[1]
    assert listed[0] == {"flow_0", "flow_2", "flow_4", "flow_6"}  # sorted paths, index % N


@pytest.mark.parametrize("shard", ["0/2", "3/2", "1", "a/b"])
def test_a_bad_shard_is_invalid_input(tmp_path, server, shard):
    suite = write_suite(tmp_path / "suite", {"a": []})
    result = cli(["test", str(suite), "--shard", shard], env_for(server.url))
    assert result.exit_code == 2 and "--shard" in result.output
    assert server.users == []


# --- running: jobs, fail-fast ------------------------------------------------------------------


def test_jobs_4_overlaps_flows_and_gives_the_results_of_jobs_1(tmp_path, server):
    names = [f"flow_{n}" for n in range(8)]
    suite = write_suite(tmp_path / "suite", {name: [] for name in names})
    server.status = lambda path, body: 400 if body.get("userId") == "flow_3" else 200
    outcomes = {}
    for jobs in (1, 4):
        server.most_in_flight = 0
        server.hold_for_overlap = jobs > 1  # with 1 job a held request would wait in vain
        server.users.clear()
        report = tmp_path / f"report_{jobs}.json"
        result = cli(
            ["test", str(suite), "--jobs", str(jobs), "--report", str(report)],
            env_for(server.url),
        )
        assert result.exit_code == 1, result.output
        assert sorted(server.users) == names
        outcomes[jobs] = (report_statuses(report), server.most_in_flight)
    assert outcomes[1][0] == outcomes[4][0]
    assert outcomes[1][0]["flow_3"] == "failed" and outcomes[1][0]["flow_0"] == "passed"
    assert outcomes[1][1] == 1  # one after another
    assert outcomes[4][1] > 1  # flows overlapped


def test_the_suite_report_has_one_entry_per_flow_with_its_run_report(tmp_path, server):
    suite = write_suite(tmp_path / "suite", {"a": ["smoke"], "b": []})
    report = tmp_path / "report.json"
    result = cli(["test", str(suite), "--report", str(report)], env_for(server.url))
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    assert (data["status"], data["exit_code"], data["counts"]["passed"]) == ("passed", 0, 2)
    [a, b] = data["flows"]
    assert (a["name"], a["tags"], a["status"]) == ("a", ["smoke"], "passed")
    assert a["report"]["counts"]["ok"] == 1 and a["report"]["steps"][0]["kind"] == "identify"
    assert b["path"].endswith("b.yaml")


def test_fail_fast_starts_no_flow_after_the_first_failure(tmp_path, server):
    suite = write_suite(tmp_path / "suite", {name: [] for name in "abcd"})
    server.status = lambda path, body: 400 if body.get("userId") == "b" else 200
    junit = tmp_path / "junit.xml"
    result = cli(["test", str(suite), "--fail-fast", "--junit", str(junit)], env_for(server.url))
    assert result.exit_code == 1, result.output
    assert server.users == ["a", "b"]
    assert "1 passed, 1 failed, 2 not run" in result.output
    cases = junit_cases(junit)
    assert set(cases) == {"a", "b", "c", "d"}
    assert cases["b"].find("failure") is not None
    for name in ("c", "d"):
        assert "fail-fast" in cases[name].find("skipped").get("message")


def test_var_goes_to_the_flows_that_declare_it_and_an_unknown_one_is_invalid(tmp_path, server):
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "with_var.yaml").write_text(
        "version: 1\nname: with_var\nvars: {who: nobody}\n"
        "steps:\n  - identify: {userId: '{{ who }}'}\n"
    )
    write_suite(suite, {"without_var": []})
    result = cli(["test", str(suite), "--var", "who=jane"], env_for(server.url))
    assert result.exit_code == 0, result.output
    assert sorted(server.users) == ["jane", "without_var"]
    result = cli(["test", str(suite), "--var", "whom=jane"], env_for(server.url))
    assert result.exit_code == 2 and "--var whom" in result.output
    assert sorted(server.users) == ["jane", "without_var"]  # nothing more sent


# --- --env-file -------------------------------------------------------------------------------


def test_env_file_supplies_the_environment_and_the_process_environment_wins(tmp_path, server):
    flow = tmp_path / "flow.yaml"
    flow.write_text(
        "version: 1\nname: env\nsteps:\n"
        "  - identify: {userId: '{{ env.WHO }}', traits: {team: '{{ env.TEAM }}'}}\n"
    )
    env_file = tmp_path / ".env"
    env_file.write_text(
        f"CUSTOMERIO_PIPELINES_URL={server.url}\n"
        "CUSTOMERIO_PIPELINES_KEY=file-key-123456\n"
        "WHO=from_file\nTEAM=growth\n"
    )
    process = {"CUSTOMERIO_PIPELINES_KEY": "process-key-123456", "WHO": "from_process"}
    for command in ("run", "test"):
        result = cli([command, str(flow), "--env-file", str(env_file)], process)
        assert result.exit_code == 0, result.output
    assert server.users == ["from_process", "from_process"]
    auth = base64.b64decode(server.headers[0]["Authorization"].split()[1]).decode()
    assert auth == "process-key-123456:"


@pytest.mark.parametrize("command", ["run", "test", "plan", "validate"])
def test_a_missing_env_file_exits_2_naming_it(tmp_path, server, command):
    flow = write_suite(tmp_path, {"a": []}) / "a.yaml"
    missing = tmp_path / "nowhere.env"
    result = cli([command, str(flow), "--env-file", str(missing)], env_for(server.url))
    assert result.exit_code == 2
    assert str(missing) in result.output and server.users == []


# --- exit statuses 3 and 4 ----------------------------------------------------------------------


@pytest.mark.parametrize("command", ["run", "test"])
def test_a_refused_key_exits_3_naming_the_cause(tmp_path, server, command):
    flow = write_suite(tmp_path, {"a": []}) / "a.yaml"
    server.status = lambda path, body: 401
    result = cli([command, str(flow)], env_for(server.url))
    assert result.exit_code == 3, result.output
    assert "exit 3: " in result.output and "refused the credentials" in result.output
    assert "HTTP 401" in result.output


def test_refused_wins_over_unavailable_and_failed_in_a_suite(tmp_path, server, quick_retries):
    suite = write_suite(tmp_path / "suite", {name: [] for name in "abc"})
    statuses = {"a": 400, "b": 503, "c": 403}
    server.status = lambda path, body: statuses[body["userId"]]
    result = cli(["test", str(suite)], env_for(server.url))
    assert result.exit_code == 3, result.output
    assert "exit 3: c (" in result.output


@pytest.mark.parametrize("command", ["run", "test"])
def test_an_unreachable_api_exits_4(tmp_path, quick_retries, command):
    flow = write_suite(tmp_path, {"a": []}) / "a.yaml"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = cli([command, str(flow)], env_for(f"http://127.0.0.1:{port}"))
    assert result.exit_code == 4, result.output
    assert f"connection refused by 127.0.0.1:{port}" in result.output
    assert "exit 4: " in result.output and "Customer.io stayed unavailable" in result.output


def test_a_send_whose_outcome_is_unknown_exits_4(tmp_path, server, quick_retries):
    flow = tmp_path / "send.yaml"
    flow.write_text(
        "version: 1\nname: send\nsteps:\n  - send_email:\n"
        "      transactional_message_id: 1\n      to: jane@example.com\n"
        "      identifiers: {id: jane}\n"
    )
    server.hang_up = lambda path: path.startswith("/v1/send/")
    result = cli(["run", str(flow)], env_for(server.url))
    assert result.exit_code == 4, result.output
    assert "exit 4: a send's outcome is unknown" in result.output
    assert len(server.headers) == 1  # never resent


# --- -v and --trace -----------------------------------------------------------------------------


def key_forms() -> list[str]:
    """Every way the test keys could leak: raw, and base64 as Basic auth carries them."""
    keys = [SECRETS["CUSTOMERIO_PIPELINES_KEY"], SECRETS["CUSTOMERIO_APP_TOKEN"]]
    basic = [f"{SECRETS['CUSTOMERIO_PIPELINES_KEY']}:"]
    encoded = [base64.b64encode(k.encode()).decode() for k in keys + basic]
    return keys + encoded + [e.rstrip("=") for e in encoded]


@pytest.mark.parametrize("command", ["run", "test"])
def test_verbose_and_trace_show_each_exchange_and_never_a_key(tmp_path, server, command):
    flow = tmp_path / "flow.yaml"
    flow.write_text(
        "version: 1\nname: traced\nsteps:\n  - identify: {userId: jane, traits: {plan: pro}}\n"
    )
    # The server echoes every header (Authorization too), the raw key, and a long text.
    server.answer = lambda headers, body: {
        "headers": headers,
        "key": SECRETS["CUSTOMERIO_PIPELINES_KEY"],
        "long": "x" * 2000,
    }
    trace = tmp_path / "trace.jsonl"
    result = cli([command, str(flow), "-v", "--trace", str(trace)], env_for(server.url))
    assert result.exit_code == 0, result.output
    assert f"> POST {server.url}/v1/identify" in result.stderr
    assert "< 200 in " in result.stderr and '"plan":"pro"' in result.stderr
    assert "more characters" in result.stderr  # the long body is cut on the terminal
    [line] = trace.read_text().splitlines()
    record = json.loads(line)
    assert record["request"]["method"] == "POST"
    assert record["request"]["url"] == f"{server.url}/v1/identify"
    assert record["request"]["body"]["traits"] == {"plan": "pro"}
    assert record["response"]["status"] == 200
    assert record["response"]["body"]["long"] == "x" * 2000  # whole in the trace
    assert "authorization" not in {k.lower() for k in record["request"]["headers"]}
    shown = result.output + trace.read_text()
    assert "Basic" in server.headers[0]["Authorization"]
    for form in key_forms():
        assert form not in shown, form
    assert "***" in shown  # the echoed header and key were there, masked


def test_verbose_shows_an_attempt_that_got_no_answer(tmp_path, quick_retries):
    flow = write_suite(tmp_path, {"a": []}) / "a.yaml"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = cli(["run", str(flow), "-v"], env_for(f"http://127.0.0.1:{port}"))
    assert result.exit_code == 4
    assert result.stderr.count("< no answer after") == 6  # every attempt
    assert "(attempt 6)" in result.stderr


# --- --emulator-workspace -----------------------------------------------------------------------


@pytest.mark.parametrize("command", ["run", "test"])
def test_emulator_workspace_loads_the_teams_template(tmp_path, command):
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(TEAM_WORKSPACE)
    flow = tmp_path / "flows" / "hello.yaml"
    flow.parent.mkdir()
    flow.write_text(TEAM_HELLO)
    result = cli([command, str(flow), "--emulator-workspace", str(workspace)], {})
    assert result.exit_code == 0, result.output
    demo = cli([command, str(flow), "--emulator"], {})  # the demo workspace lacks it
    assert demo.exit_code == 1, demo.output


def test_an_emulator_workspace_it_cannot_load_exits_2(tmp_path):
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text("version: 1\nname: x\nnonsense: 1\n")
    flow = write_suite(tmp_path / "flows", {"a": []}) / "a.yaml"
    result = cli(["run", str(flow), "--emulator-workspace", str(workspace)], {})
    assert result.exit_code == 2
    assert "emulator workspace" in result.output and "nonsense" in result.output
