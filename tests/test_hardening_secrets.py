"""Issue 9, items 8-11: URL overrides and template limits are checked before anything is sent;
templates cannot read Customer.io's keys; no form of a key or secret reaches any output."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import SECRETS, env_for

from cio_flows.cli import main

HEAD = "version: 1\nname: demo\nsteps:\n"
PARTNER_TOKEN = "partner-tok-9f8e7d6c"  # a secret the flow may legitimately send


def run_cli(args, env):
    return CliRunner().invoke(main, [str(a) for a in args], env=env, catch_exceptions=False)


def assert_refused(result, path: Path, line: int, fragment: str) -> None:
    """Exit 2 with the file and line, a clear reason, and no traceback."""
    assert result.exit_code == 2, result.output
    assert f"{path}:{line}:" in result.output, result.output
    assert fragment in result.output, result.output
    assert "Traceback" not in result.output


# --- item 8: URL overrides ----------------------------------------------------------------------

BAD_URLS = {
    "not a url": "no scheme",
    "ftp://127.0.0.1/x": "scheme must be http or https",
    "http://": "no host",
    "https://127.0.0.1:notaport": "Port could not be cast",
}
URL_VARS = ("CUSTOMERIO_TRACK_URL", "CUSTOMERIO_PIPELINES_URL", "CUSTOMERIO_APP_URL")


@pytest.mark.parametrize("command", ["validate", "plan", "run"])
@pytest.mark.parametrize("variable", URL_VARS)
@pytest.mark.parametrize("url", sorted(BAD_URLS))
def test_a_bad_url_override_is_refused_up_front(
    command, variable, url, write_flow, recording_server
):
    path = write_flow(HEAD + "  - identify: {userId: u1}\n  - list_segments:\n")
    result = run_cli([command, path], env_for(recording_server.url, **{variable: url}))
    assert result.exit_code == 2, result.output
    assert f"error: {variable} is not a usable root URL" in result.output
    assert BAD_URLS[url] in result.output
    assert repr(url) in result.output  # what was found
    assert "Traceback" not in result.output and "UNKNOWN" not in result.output
    assert recording_server.requests == []


def test_a_password_in_a_bad_url_is_not_printed(write_flow):
    path = write_flow(HEAD + "  - list_segments:\n")
    result = run_cli(["validate", path], {"CUSTOMERIO_APP_URL": "ftp://user:hunter2pw@host/"})
    assert result.exit_code == 2
    assert "hunter2pw" not in result.output and "user:***@host" in result.output


# --- item 9: template limits and values that are not JSON -------------------------------------

BAD_TEMPLATES = {
    "huge string": ("\"{{ 'x' * 10**9 }}\"", "template result too large"),
    "huge list": ('"{{ [1] * 10**9 }}"', "template result too large"),
    "huge power": ('"{{ 2 ** 100000 }}"', "template result too large"),
    "huge width": ("\"{{ '%999999999d' % 1 }}\"", "template result too large"),
    "huge center": ("\"{{ 'x' | center(10**9) }}\"", "template result too large"),
    "loop output": (
        "\"{% for i in range(100000) %}{{ 'x' * 1000000 }}{% endfor %}\"",
        "template result too large",
    ),
    "lipsum": ('"{{ lipsum }}"', "undefined name 'lipsum'"),
    "joiner": ('"{{ joiner }}"', "undefined name 'joiner'"),
    "self": ('"{{ self }}"', "'self' is not available"),
    "function": ('"{{ now }}"', "'now' is a function, not a value"),
    "undefined-like": ('"{{ range }}"', "'range' is a function"),
    "dunder attribute": ('"{{ (1).__class__ }}"', "not allowed"),
}


@pytest.mark.parametrize("case", sorted(BAD_TEMPLATES))
def test_template_limits_and_non_json_values_are_refused(case, write_flow, recording_server):
    template, fragment = BAD_TEMPLATES[case]
    path = write_flow(
        HEAD + "  - list_segments:\n  - track: {userId: u1, event: " + template + "}\n"
    )
    result = run_cli(["validate", path], {})  # refused before building anything big
    assert_refused(result, path, 5, fragment)
    result = run_cli(["run", path], env_for(recording_server.url))
    assert_refused(result, path, 5, fragment)
    assert recording_server.requests == []


def test_a_non_json_value_in_a_row_fails_that_row_without_a_traceback(
    write_flow, recording_server, tmp_path
):
    (tmp_path / "rows.csv").write_text("id,n\nu1,1\nu2,100000\n", encoding="utf-8")
    path = write_flow(
        "version: 1\nname: demo\nfor_each: {file: rows.csv}\nsteps:\n"
        "  - track: {userId: '{{ row.id }}', event: e, properties: {p: '{{ 2 ** (row.n|int) }}'}}\n"
    )
    result = run_cli(["run", path, "--no-batch"], env_for(recording_server.url))
    assert result.exit_code == 1, result.output
    assert "template result too large: 2 ** 100000" in result.output
    assert "Traceback" not in result.output
    assert len(recording_server.requests) == 1  # row 1 only


def test_iterators_render_as_lists(write_flow, recording_server):
    path = write_flow(
        HEAD + "  - track: {userId: u1, event: e, properties: "
        "{tags: \"{{ ['a', 'b'] | map('upper') }}\", n: '{{ range(3) }}'}}\n"
    )
    result = run_cli(["run", path, "--no-batch"], env_for(recording_server.url))
    assert result.exit_code == 0, result.output
    body = json.dumps(recording_server.requests[0].body)
    assert '"tags": ["A", "B"]' in body and '"n": [0, 1, 2]' in body


# --- item 10: templates and the environment ----------------------------------------------------

CREDENTIAL_READS = {
    "dotted": "{{ env.CUSTOMERIO_APP_TOKEN }}",
    "subscript": "{{ env['CUSTOMERIO_PIPELINES_KEY'] }}",
    "in a var": "{{ env.CUSTOMERIO_TRACK_TOKEN | lower }}",
}


@pytest.mark.parametrize("command", ["validate", "plan", "run"])
@pytest.mark.parametrize("case", sorted(CREDENTIAL_READS))
def test_a_flow_reading_a_customerio_key_is_invalid(command, case, write_flow, recording_server):
    template = CREDENTIAL_READS[case]
    path = write_flow(
        f'version: 1\nname: demo\nvars:\n  k: "{template}"\nsteps:\n  - list_segments:\n'
    )
    result = run_cli([command, path], env_for(recording_server.url))
    assert_refused(result, path, 4, "templates cannot read CUSTOMERIO_")
    assert recording_server.requests == []
    for secret in SECRETS.values():
        assert secret not in result.output


def test_a_computed_name_cannot_reach_a_customerio_key(write_flow, recording_server):
    path = write_flow(
        HEAD + "  - track: {userId: u1, event: \"{{ env['CUSTOMERIO_' ~ 'APP_TOKEN'] }}\"}\n"
    )
    result = run_cli(["run", path], env_for(recording_server.url))
    assert_refused(result, path, 4, "templates cannot read CUSTOMERIO_APP_TOKEN")
    assert recording_server.requests == []


def test_listing_the_environment_shows_no_secret(write_flow, recording_server):
    path = write_flow(
        HEAD + "  - track: {userId: u1, event: e, properties: "
        "{all: '{{ env.items() | list }}', sorted: '{{ env.items() | sort }}',"
        " n: '{{ env.values() | list }}'}}\n"
    )
    env = env_for(recording_server.url, PARTNER_TOKEN=PARTNER_TOKEN, PUBLIC_SETTING="visible")
    result = run_cli(["run", path, "--no-batch"], env)
    assert result.exit_code == 0, result.output
    sent = json.dumps(recording_server.requests[0].body)
    assert "visible" in sent  # the environment is there ...
    for secret in (*SECRETS.values(), PARTNER_TOKEN):  # ... without a secret
        if secret != SECRETS["CUSTOMERIO_SITE_ID"]:
            assert secret not in sent
    assert "PARTNER_TOKEN" not in sent


SECRET_TRANSFORMS = {
    "reverse": "{{ env.PARTNER_TOKEN | reverse }}",
    "join": "{{ env.PARTNER_TOKEN | join('.') }}",
    "slice": "{{ env.PARTNER_TOKEN[1:] }}",
    "subscript": "{{ env['PARTNER_TOKEN'] }}",
    "computed": "{{ env['PARTNER_' ~ 'TOKEN'] }}",
    "lookup": "{{ env.get('PARTNER_TOKEN') }}",
}


@pytest.mark.parametrize("case", sorted(SECRET_TRANSFORMS))
def test_a_secret_can_be_used_only_as_it_is(case, write_flow, recording_server):
    template = SECRET_TRANSFORMS[case]
    path = write_flow(HEAD + f'  - track: {{userId: u1, event: "{template}"}}\n')
    env = env_for(recording_server.url, PARTNER_TOKEN=PARTNER_TOKEN)
    result = run_cli(["run", path], env)
    assert_refused(result, path, 4, "PARTNER_TOKEN")
    assert "is secret" in result.output
    assert recording_server.requests == []
    assert PARTNER_TOKEN not in result.output and PARTNER_TOKEN[::-1] not in result.output


def test_a_secret_used_as_it_is_is_sent_and_masked_in_plan(write_flow, recording_server):
    path = write_flow(
        HEAD + "  - track: {userId: u1, event: e, properties: "
        "{auth: 'Token {{ env.PARTNER_TOKEN }}', other: '{{ env.GITHUB_TOKEN }}'}}\n"
    )
    env = env_for(recording_server.url, PARTNER_TOKEN=PARTNER_TOKEN, GITHUB_TOKEN="ghp_0123456789")
    plan = run_cli(["plan", path], env)
    assert plan.exit_code == 0, plan.output
    assert PARTNER_TOKEN not in plan.output and "ghp_0123456789" not in plan.output
    assert "Token ***" in plan.output
    result = run_cli(["run", path, "--no-batch"], env)
    assert result.exit_code == 0, result.output
    assert recording_server.requests[0].body["properties"]["auth"] == f"Token {PARTNER_TOKEN}"


# --- item 11: a server that echoes the Authorization header ------------------------------------


class EchoServer:
    """Answers every request with an error whose text holds its Authorization header (as sent
    and decoded) and its body: 500 for sends, 400 for everything else."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        echo = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                auth = self.headers.get("Authorization", "")
                echo.requests.append(self.path)
                value = auth.split(" ", 1)[-1]
                try:
                    decoded = base64.b64decode(value).decode()
                except ValueError:
                    decoded = ""
                text = f"rejected {value} ({decoded}) header [{auth}] for {body}"
                status = 500 if self.path.startswith("/v1/send/") else 400
                data = json.dumps({"meta": {"error": text}, "errors": [{"detail": value}]})
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data.encode())

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def echo_server() -> Iterator[EchoServer]:
    echo = EchoServer()
    thread = threading.Thread(target=echo.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield echo
    echo.server.shutdown()
    echo.server.server_close()


def forbidden_forms(env: dict[str, str]) -> list[str]:
    """Every form in which the transport sends a key, and the partner secret."""
    site = env["CUSTOMERIO_SITE_ID"]
    keys = [env[n] for n in ("CUSTOMERIO_TRACK_TOKEN", "CUSTOMERIO_APP_TOKEN")]
    keys.append(env.get("CUSTOMERIO_PIPELINES_KEY", ""))
    pairs = [f"{site}:{env['CUSTOMERIO_TRACK_TOKEN']}", f"{keys[2]}:"]
    encoded = [base64.b64encode(p.encode()).decode().rstrip("=") for p in pairs]
    return [f for f in (*keys, *pairs, *encoded, PARTNER_TOKEN) if len(f) > 2]


@pytest.mark.parametrize("people_api", ["pipelines", "track"])
def test_echoed_credentials_reach_no_output(people_api, echo_server, tmp_path, monkeypatch):
    journal = tmp_path / "journal.db"
    monkeypatch.setenv("CIO_FLOWS_JOURNAL", str(journal))
    rows = "id,email\n" + "".join(f"u{n},u{n}@example.com\n" for n in range(1, 6))
    (tmp_path / "people.csv").write_text(rows, encoding="utf-8")
    path = tmp_path / "flow.yaml"
    path.write_text(
        "version: 1\nname: echo\nfor_each: {file: people.csv, key: '{{ row.id }}'}\nsteps:\n"
        "  - identify:\n      userId: '{{ row.id }}'\n"
        "      traits: {email: '{{ row.email }}', partner: '{{ env.PARTNER_TOKEN }}'}\n"
        "finally:\n"
        "  - send_email:\n      transactional_message_id: welcome\n"
        "      to: '{{ row.email }}'\n      identifiers: {id: '{{ row.id }}'}\n",
        encoding="utf-8",
    )
    env = env_for(echo_server.url, PARTNER_TOKEN=PARTNER_TOKEN)
    if people_api == "track":
        env["CUSTOMERIO_PIPELINES_KEY"] = ""
    report, junit = tmp_path / "report.json", tmp_path / "junit.xml"
    result = run_cli(["run", path, "--report", report, "--junit", junit], env)

    assert result.exit_code in (1, 4), result.output
    assert any(p.startswith("/v1/send/") for p in echo_server.requests)
    outputs = {
        "console": result.output,
        "report": report.read_text(encoding="utf-8"),
        "junit": junit.read_text(encoding="utf-8"),
        "journal": b"".join(p.read_bytes() for p in tmp_path.glob("journal.db*")).decode(
            "utf-8", "replace"
        ),
    }
    assert "HTTP 400" in outputs["report"] and "rejected ***" in outputs["report"]
    assert "rejected ***" in outputs["journal"]
    for where, text in outputs.items():
        for form in forbidden_forms(env):
            assert form not in text, f"{form!r} in the {where}"
