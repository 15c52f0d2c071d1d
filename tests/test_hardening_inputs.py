"""Issue 18, hostile inputs: secrets held through `env` (item 5), `--env-file` interpolation (6),
`use:` outside the project (7), template bombs (13), YAML bombs outside flows (15), non-finite
numbers (17), deeply nested data rows (18), wait_until's numbers (21), YAML merge keys (24).

Each case runs the real `cio-flows` process and checks it ends with exit 2, a located message,
no traceback, no secret in any form, nothing sent, and memory within bounds (MAX_RSS_MB)."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import SECRETS, env_for
from support import cli_measured, peak_mb

from cio_flows.errors import TemplateError
from cio_flows.flow.sandbox import TemplateEnv
from cio_flows.flow.templating import render_value

pytestmark = pytest.mark.slow  # nearly every test runs the CLI as a real process

HEAD = "version: 1\nname: demo\nsteps:\n"
PARTNER_TOKEN = "partner-tok-9f8e7d6c"  # a secret the flow may send as it is
MAX_RSS_MB = 400  # the whole process: Python, its imports and whatever the input costs


@dataclass
class Finished:
    code: int
    out: str
    err: str
    rss_mb: float

    @property
    def output(self) -> str:
        return self.out + self.err


def run_process(args: list[str], env: dict[str, str], cwd: Path | None = None) -> Finished:
    """`cio-flows ARGS` as its own process, with its own peak memory (support.cli_measured)."""
    environ = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    environ.update(env)
    handle, peak_name = tempfile.mkstemp(prefix="cio-peak-")
    os.close(handle)
    environ["CIO_TEST_PEAK_FILE"] = peak_name
    process = subprocess.Popen(
        cli_measured(*map(str, args)),
        env=environ,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    killer = threading.Timer(120, process.kill)  # a hang fails the test, it does not stall it
    killer.start()
    with ThreadPoolExecutor(2) as readers:
        out = readers.submit(process.stdout.read)  # type: ignore[union-attr]
        err = readers.submit(process.stderr.read)  # type: ignore[union-attr]
        code = process.wait()
        peak = peak_mb(Path(peak_name)) if Path(peak_name).stat().st_size else float("inf")
        finished = Finished(code, out.result(), err.result(), peak)
    killer.cancel()
    Path(peak_name).unlink(missing_ok=True)
    return finished


def assert_invalid(result: Finished, *fragments: str) -> None:
    assert result.code == 2, result.output
    for fragment in fragments:
        assert fragment in result.output, result.output
    assert "Traceback" not in result.output
    assert result.rss_mb < MAX_RSS_MB, f"{result.rss_mb:.0f} MB"


def assert_no_secret(text: str) -> None:
    for secret in (PARTNER_TOKEN, *SECRETS.values()):
        if len(secret) > 6:
            assert secret not in text and secret[::-1] not in text
            assert ".".join(secret) not in text
    assert PARTNER_TOKEN[:8] not in text


# --- item 5: `env` cannot be held, passed or transformed ----------------------------------------

ENV_ALIASES = {
    "set": "{% set e = env %}{{ e.PARTNER_TOKEN | join('.') }}",
    "list": "{{ [env][0].PARTNER_TOKEN | reverse }}",
    "macro": "{% macro m(e) %}{{ e.PARTNER_TOKEN | reverse }}{% endmacro %}{{ m(env) }}",
    "loop": "{% for e in [env] %}{{ e.PARTNER_TOKEN | reverse }}{% endfor %}",
    "conditional": "{{ (env if true else none).PARTNER_TOKEN | reverse }}",
    "with": "{% with e = env %}{{ e.PARTNER_TOKEN[::-1] }}{% endwith %}",
    "filter": "{{ env | dictsort }}",
    # Output that is captured and changed after: a secret must reach the result unchanged.
    "block set": "{% set x %}{{ env.PARTNER_TOKEN }}{% endset %}{{ x | reverse }}",
    "macro output": "{% macro m() %}{{ env.PARTNER_TOKEN }}{% endmacro %}{{ m() | reverse }}",
    "filter block": "{% filter reverse %}{{ env.PARTNER_TOKEN }}{% endfilter %}",
    "macro argument": ("{% macro m(t) %}{{ t | reverse }}{% endmacro %}{{ m(env.PARTNER_TOKEN) }}"),
}


@pytest.mark.parametrize("case", sorted(ENV_ALIASES))
def test_env_cannot_be_held_or_its_secrets_transformed(case, write_flow, recording_server):
    template = ENV_ALIASES[case]
    path = write_flow(HEAD + f'  - track: {{userId: u1, event: "{template}"}}\n')
    env = env_for(recording_server.url, PARTNER_TOKEN=PARTNER_TOKEN)
    for command in ("validate", "run"):
        result = run_process([command, path], env)
        assert_invalid(result, f"{path}:4:")
        assert_no_secret(result.output)
    assert recording_server.requests == []


def test_expect_cannot_guess_a_secret_by_slicing(write_flow, recording_server):
    path = write_flow(
        HEAD + "  - list_segments:\n    expect: \"[env][0].PARTNER_TOKEN[:8] == 'partner-'\"\n"
    )
    env = env_for(recording_server.url, PARTNER_TOKEN=PARTNER_TOKEN)
    result = run_process(["run", path], env)
    assert_invalid(result, f"{path}:5:", "env is read only by name")
    assert recording_server.requests == []


def test_a_secret_is_still_sent_as_it_is(write_flow, recording_server):
    path = write_flow(
        HEAD + "  - track: {userId: u1, event: e, properties: "
        "{t: '{{ env.PARTNER_TOKEN }}', s: 'Bearer {{ env.PARTNER_TOKEN }}',"
        " h: '{{ env.HOME_DIR | upper }}'}}\n"
    )
    env = env_for(recording_server.url, PARTNER_TOKEN=PARTNER_TOKEN, HOME_DIR="/home/x")
    result = run_process(["run", path, "--no-batch"], env)
    assert result.code == 0, result.output
    properties = recording_server.requests[0].body["properties"]
    assert properties == {"t": PARTNER_TOKEN, "s": f"Bearer {PARTNER_TOKEN}", "h": "/HOME/X"}
    assert PARTNER_TOKEN not in result.output


SECRET_OPERATIONS = [
    "{{ e.PARTNER_TOKEN | reverse }}",
    "{{ e.PARTNER_TOKEN | string }}",
    "{{ e.PARTNER_TOKEN | join('.') }}",
    "{{ e.PARTNER_TOKEN[:8] }}",
    "{{ e.PARTNER_TOKEN == 'x' }}",
    "{{ e.PARTNER_TOKEN < 'p' }}",
    "{{ 'p' in e.PARTNER_TOKEN }}",
    "{{ e.PARTNER_TOKEN | list }}",
    "{{ e.PARTNER_TOKEN | length }}",
    "{{ e.PARTNER_TOKEN.upper() }}",
    "{{ e.PARTNER_TOKEN + 'x' }}",
    "{{ '%s' % e.PARTNER_TOKEN }}",
    "{{ '{}'.format(e.PARTNER_TOKEN) }}",
    "{% for c in e.PARTNER_TOKEN %}{{ c }}{% endfor %}",
    "{{ 1 if e.PARTNER_TOKEN else 0 }}",
]


@pytest.mark.parametrize("template", SECRET_OPERATIONS)
def test_a_secret_value_refuses_every_operation_at_run_time(template):
    # The static check is not consulted here: the value itself refuses to be changed.
    env = TemplateEnv({"PARTNER_TOKEN": PARTNER_TOKEN})
    with pytest.raises(TemplateError, match="PARTNER_TOKEN is secret") as error:
        render_value(template, {"e": env}, lambda _path: None)
    assert PARTNER_TOKEN not in str(error.value)


def test_a_secret_value_renders_as_it_is():
    env = TemplateEnv({"PARTNER_TOKEN": PARTNER_TOKEN})
    assert render_value("{{ e.PARTNER_TOKEN }}", {"e": env}, lambda _p: None) == PARTNER_TOKEN
    text = render_value("x {{ e.PARTNER_TOKEN }}", {"e": env}, lambda _p: None)
    assert text == f"x {PARTNER_TOKEN}"
    assert json.dumps(render_value(["{{ e.PARTNER_TOKEN }}"], {"e": env}, lambda _p: None))


# --- item 6: --env-file does not expand ${VAR} --------------------------------------------------


def test_an_env_file_does_not_copy_a_key_into_a_public_name(write_flow, recording_server, tmp_path):
    path = write_flow(HEAD + '  - track: {userId: u1, event: "{{ env.PUBLIC_ID | reverse }}"}\n')
    env_file = tmp_path / "ci.env"
    env_file.write_text("PUBLIC_ID=${CUSTOMERIO_APP_TOKEN}\nOTHER=${PARTNER_TOKEN:-x}\n")
    env = env_for(recording_server.url, PARTNER_TOKEN=PARTNER_TOKEN)
    result = run_process(["run", path, "--no-batch", "--env-file", env_file], env)
    assert result.code == 0, result.output
    sent = json.dumps([request.body for request in recording_server.requests])
    assert "}NEKOT_PPA_OIREMOTSUC{$" in sent  # the text as written, reversed
    assert_no_secret(sent + result.output)


# --- item 7: `use:` stays in the project and never shows another file's content -----------------

TOKEN_TEXT = "API_TOKEN=tok-0123456789abcdef"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "token.txt").write_text(TOKEN_TEXT + "\n")
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "conf.yaml").write_text("password: hunter2-secret-value\n")
    (tmp_path / "proj" / "link.yaml").symlink_to(tmp_path / "token.txt")
    return tmp_path / "proj"


@pytest.mark.parametrize("used", ["../token.txt", "{outside}/token.txt", "../../../etc/passwd"])
@pytest.mark.parametrize("command", ["validate", "plan", "run"])
def test_use_outside_the_project_is_refused(project, used, command, recording_server):
    flow = project / "flow.yaml"
    flow.write_text(HEAD + f"  - use: {used.format(outside=project.parent)}\n")
    result = run_process([command, flow], env_for(recording_server.url), cwd=project)
    assert_invalid(result, f"{flow}:4:", "the used file is outside the project", str(project))
    assert "tok-0123456789" not in result.output
    assert recording_server.requests == []


@pytest.mark.parametrize("used", ["conf.yaml", "link.yaml"])
def test_a_used_file_that_is_not_a_flow_is_not_shown(project, used, recording_server):
    flow = project / "flow.yaml"
    flow.write_text(HEAD + f"  - use: {used}\n")
    result = run_process(["run", flow], env_for(recording_server.url), cwd=project)
    assert result.code == 2, result.output
    assert "Traceback" not in result.output
    assert "hunter2" not in result.output and "tok-0123456789" not in result.output
    if used == "link.yaml":  # a link out of the project is outside it, wherever it sits
        assert "outside the project" in result.output
    else:
        assert "conf.yaml is not a flow file" in result.output and "password" not in result.output


def test_root_widens_the_project(project, recording_server):
    shared = project.parent / "shared.yaml"
    shared.write_text(HEAD + "  - identify: {userId: u1}\n")
    flow = project / "flow.yaml"
    flow.write_text(HEAD + "  - use: ../shared.yaml\n")
    refused = run_process(["validate", flow], env_for(recording_server.url), cwd=project)
    assert refused.code == 2, refused.output
    allowed = run_process(
        ["validate", flow, "--root", project.parent], env_for(recording_server.url), cwd=project
    )
    assert allowed.code == 0, allowed.output
    # Run from the project's top, a flow in a subfolder uses flows beside that folder.
    from_top = run_process(["validate", flow], env_for(recording_server.url), cwd=project.parent)
    assert from_top.code == 0, from_top.output


# --- item 13: template bombs: a render budget and checks on size arguments -----------------------

TEMPLATE_BOMBS = {
    "tojson indent": ("{{ {'a': [1, 2]} | tojson(indent=10**9) }}", "tojson indent"),
    "indent a big text": ("{{ ('x\\n' * 2500000) | indent(4) }}", "a string of 15,000,004"),
    "nested ranges": (
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "loop steps and calls",
    ),
    "list loops": (
        "{% for a in [1] * 3000 %}{% for b in [1] * 3000 %}{% endfor %}{% endfor %}",
        "loop steps and calls",
    ),
    "recursive macro": (
        "{% macro m(n) %}{% if n > 0 %}{{ m(n - 1) }}{{ m(n - 1) }}{% endif %}{% endmacro %}"
        "{{ m(40) }}",
        "loop steps and calls",
    ),
    "wordwrap": ("{{ ('x ' * 4000000) | wordwrap(1) }}", "wordwrap of 8,000,000 characters"),
    "expandtabs": ("{{ '\\t'.expandtabs(10**7) }}", "a string of 10,000,001"),
    "many tabs": ("{{ ('\\t' * 1000).expandtabs(10**6) }}", "a string of 1,000,001,000"),
}


@pytest.mark.parametrize("case", sorted(TEMPLATE_BOMBS))
@pytest.mark.parametrize("command", ["validate", "run"])
def test_template_bombs_are_refused(case, command, write_flow, recording_server):
    template, fragment = TEMPLATE_BOMBS[case]
    path = write_flow(
        HEAD + "  - list_segments:\n  - track: {userId: u1, event: " + json.dumps(template) + "}\n"
    )
    result = run_process([command, path], env_for(recording_server.url))
    assert_invalid(result, f"{path}:5:", fragment)
    assert recording_server.requests == []


def test_a_loop_over_many_rows_worth_of_items_stays_within_the_budget(write_flow, recording_server):
    path = write_flow(
        HEAD + "  - track: {userId: u1, event: e, properties: {n: "
        '"{% for i in range(100000) %}{% if loop.last %}{{ i }}{% endif %}{% endfor %}"}}\n'
    )
    result = run_process(["run", path, "--no-batch"], env_for(recording_server.url))
    assert result.code == 0, result.output
    assert recording_server.requests[0].body["properties"] == {"n": "99999"}


# --- item 15: alias bombs in cassettes and emulator workspaces -----------------------------------


def alias_bomb(first_key: str = "a") -> str:
    """A few hundred bytes that expand to 10**9 values."""
    lines = [f"{first_key}: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 9):
        aliases = ", ".join([f"*l{level - 1}"] * 10)
        lines.append(f"l{level}: &l{level} [{aliases}]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_cassette_is_refused(tmp_path, recording_server):
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "signup.yaml").write_text(HEAD + "  - identify: {userId: u1}\n")
    cassettes = tmp_path / "cassettes" / "suite"
    cassettes.mkdir(parents=True)
    (cassettes / "signup.yaml").write_text("version: 1\n" + alias_bomb("bomb"))
    result = run_process(["test", "suite", "--replay", "cassettes"], {}, cwd=tmp_path)
    assert_invalid(result, "signup.yaml", "this alias makes the aliases")
    assert recording_server.requests == []


def test_an_alias_bomb_workspace_is_refused(tmp_path, write_flow):
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(alias_bomb("people"))
    path = write_flow(HEAD + "  - identify: {userId: u1}\n")
    result = run_process(["run", path, "--emulator-workspace", workspace], {})
    assert_invalid(result, "emulator workspace", "the workspace file repeat more than")
    # The emulator's own command refuses it the same way.
    served = run_process(["emulator", "--port", "0", "--workspace", workspace], {})
    assert served.code != 0 and "Traceback" not in served.output, served.output
    assert "the workspace file repeat more than" in served.output
    assert served.rss_mb < MAX_RSS_MB


def test_cassettes_and_workspaces_within_the_limits_still_load(tmp_path):
    from cio_flows.yaml_limits import safe_load

    text = "base: &b {plan: pro}\npeople:\n" + "".join(
        f"  - {{<<: *b, id: p{i}}}\n" for i in range(3000)
    )
    data = safe_load(text)
    assert len(data["people"]) == 3000 and data["people"][-1] == {"plan": "pro", "id": "p2999"}


# --- item 24 (end): a YAML merge key overridden ---------------------------------------------------

MERGE_FLOW = """\
version: 1
name: merge
vars:
  base: &b {userId: u1, event: signed_up}
steps:
  - track: {<<: *b, event: other}
"""


def test_a_key_overriding_a_merge_is_no_duplicate(write_flow, recording_server):
    path = write_flow(MERGE_FLOW)
    result = run_process(["run", path, "--no-batch"], env_for(recording_server.url))
    assert result.code == 0, result.output
    body = recording_server.requests[0].body
    assert body["event"] == "other" and body["userId"] == "u1"


def test_a_key_written_twice_is_still_a_duplicate(write_flow):
    path = write_flow(MERGE_FLOW.replace("event: other}", "event: other, event: again}"))
    result = run_process(["validate", path], {})
    assert_invalid(result, f"{path}:6:", "duplicate key 'event'")


# --- item 17: non-finite numbers in payloads ----------------------------------------------------


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", ".NaN", "+.Inf"])
@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_non_finite_number_in_a_payload_is_refused(value, command, write_flow, recording_server):
    path = write_flow(
        HEAD + f"  - track: {{userId: u1, event: e, properties: {{ratio: {value}}}}}\n"
    )
    result = run_process([command, path], env_for(recording_server.url))
    assert_invalid(result, f"{path}:4:", f"{value} is not a finite number")
    assert recording_server.requests == []


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_a_non_finite_number_in_a_data_row_is_refused(
    value, write_flow, recording_server, tmp_path
):
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"id": "a", "n": 1}\n{"id": "b", "n": ' + value + "}\n")
    path = write_flow(
        "version: 1\nname: d\nfor_each: {file: rows.jsonl}\nsteps:\n"
        "  - track: {userId: '{{ row.id }}', event: e, properties: {n: '{{ row.n }}'}}\n"
    )
    result = run_process(["run", path, "--no-batch"], env_for(recording_server.url))
    assert_invalid(result, f"{rows}:2:", f"{value} is not a JSON number")
    assert recording_server.requests == []


# --- item 18: deeply nested data rows ------------------------------------------------------------

DEPTHS = {"just past the limit": 101, "1,500 levels": 1_500, "100k levels": 100_000}
NESTED_FLOW = (
    "version: 1\nname: d\nfor_each: {file: rows.jsonl}\nsteps:\n"
    "  - track: {userId: '{{ row.id }}', event: e, properties: {x: '{{ row.x }}'}}\n"
)


@pytest.mark.parametrize("depth", sorted(DEPTHS))
@pytest.mark.parametrize("suffix", [".jsonl", ".json"])
@pytest.mark.parametrize("command", ["validate", "plan", "run"])
def test_deeply_nested_rows_are_refused_with_their_line(
    depth, suffix, command, write_flow, recording_server, tmp_path
):
    levels = DEPTHS[depth] - 1  # the row object is a level
    deep = '{"id": "b", "x": ' + "[" * levels + "]" * levels + "}"
    rows = tmp_path / f"rows{suffix}"
    if suffix == ".jsonl":
        rows.write_text('{"id": "a", "x": [[1]]}\n' + deep + "\n")
    else:
        rows.write_text('[\n  {"id": "a", "x": "[[[[[["},\n  ' + deep + "\n]\n")
    path = write_flow(NESTED_FLOW)
    result = run_process([command, path, "--data", rows], env_for(recording_server.url))
    assert_invalid(result, f"{rows}:", "a row nests deeper than 100 levels")
    assert f"{rows}:{2 if suffix == '.jsonl' else 3}:" in result.output
    assert recording_server.requests == []


def test_rows_at_the_depth_limit_still_run(write_flow, recording_server, tmp_path):
    levels = 99  # the row object makes 100
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"id": "a", "x": ' + "[" * levels + "]" * levels + "}\n")
    path = write_flow(NESTED_FLOW)
    result = run_process(["run", path, "--no-batch"], env_for(recording_server.url))
    assert result.code == 0, result.output


def test_the_nesting_scan_agrees_with_json_across_any_block_boundary():
    from cio_flows.errors import DataFileError
    from cio_flows.run.row_nesting import NestingScan

    first = {"a": "x\\", "b": ']]]"[[[', "c": [[{"d": '\\"{{'}]], "e": "\n["}
    second = {"f": [[[[1]]]], "g": "[" * 50}
    text = ("[" + json.dumps(first) + ",\n " + json.dumps(second) + "]\n").encode()
    assert json.loads(text)  # valid JSON
    for size in range(1, 40):
        scan = NestingScan("f", 6)
        for start in range(0, len(text), size):
            scan.feed(text[start : start + size])
        assert scan.depth == 0 and scan.line == 3, size
        scan = NestingScan("f", 5)  # the array, an object, f's four lists: six levels
        with pytest.raises(DataFileError, match="deeper than 5") as error:
            for start in range(0, len(text), size):
                scan.feed(text[start : start + size])
        assert error.value.location.line == 2, size


# --- item 21: wait_until's numbers ---------------------------------------------------------------

WAIT_VALUES = {
    "interval: .nan": ".nan is not a finite number",
    "interval: .inf": ".inf is not a finite number",
    "timeout: .nan": ".nan is not a finite number",
    "timeout: 1e3": "YAML reads an exponent without a dot as text",
    "timeout: -1": "wait_until timeout must be a number of seconds above 0",
    "interval: 0": "wait_until interval must be a number of seconds above 0",
    "timeout: 1.0e300": "at most 86,400",
    "interval: soon": "found the text 'soon'",
}


@pytest.mark.parametrize("setting", sorted(WAIT_VALUES))
def test_wait_until_takes_finite_positive_seconds(setting, write_flow, recording_server):
    path = write_flow(
        HEAD + "  - list_segments:\n    wait_until:\n      condition: response.segments\n"
        f"      {setting}\n"
    )
    for command in ("validate", "run"):
        result = run_process([command, path], env_for(recording_server.url))
        assert_invalid(result, f"{path}:7:", WAIT_VALUES[setting])
    assert recording_server.requests == []


def test_the_budget_is_per_render_not_per_thread(write_flow, recording_server, tmp_path):
    # Many rows through an inlined `{{ row.x | filter }}` and a loop each: no budget carries over.
    rows = tmp_path / "rows.csv"
    rows.write_text("id,name\n" + "".join(f"u{i},n{i}\n" for i in range(3000)))
    path = write_flow(
        "version: 1\nname: d\nfor_each: {file: rows.csv}\nsteps:\n"
        "  - track: {userId: '{{ row.id | upper }}', event: '{{ row.name | lower }}',"
        " properties: {n: '{% for i in range(1000) %}{% endfor %}{{ row.id }}'}}\n"
    )
    result = run_process(["plan", path, "--format", "jsonl"], env_for(recording_server.url))
    assert result.code == 0, result.output[-2000:]
    assert result.out.count("\n") >= 3000 / 1000  # batched requests listed


def test_inlined_filters_outside_a_render_spend_no_budget(monkeypatch):
    from cio_flows.flow import sandbox
    from cio_flows.flow.templating import compile_value

    monkeypatch.setattr(sandbox, "MAX_OPERATIONS", 10)
    render = compile_value({"a": "{{ row.x | upper }}", "b": "{{ row.x }}"}, lambda _p: None)
    for _ in range(100):  # generated code calls the filter itself, with no render around it
        assert render({"row": {"x": "a"}}) == {"a": "A", "b": "a"}
    with pytest.raises(TemplateError, match="over 10 loop steps"):
        render_value("{% for i in range(20) %}{% endfor %}", {}, lambda _p: None)


def test_a_top_level_file_that_is_not_a_flow_is_not_shown(tmp_path):
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "token.yaml").write_text(TOKEN_TEXT + "\n")  # a scalar, not a mapping
    (suite / "list.yaml").write_text(f"- {TOKEN_TEXT}\n")
    for args in (["validate", suite / "token.yaml"], ["test", suite]):
        result = run_process(args, {})
        assert_invalid(result, "is not a flow file")
        assert "tok-0123456789" not in result.output
