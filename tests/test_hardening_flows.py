"""Hostile and mistyped flow files (issue 9): refused with exit 2, file:line:col, nothing sent.

Each file in tests/corpus/flows/ is one case; the table below keeps what it must produce.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ROOT, env_for

from cio_flows import FlowSyntaxError, TemplateError, load_flow
from cio_flows.cli import main
from cio_flows.flow.yaml_source import MAX_DEPTH, MAX_NODES

CORPUS = Path(__file__).resolve().parent / "corpus" / "flows"

# file, line:col of the refusal, fragments the message must hold
CASES = [
    ("alias_bomb.yaml", "9:10", ["this alias expands the flow file past 100000 values"]),
    ("alias_cycle.yaml", "4:16", ["an alias refers to a node that contains it"]),
    ("alias_too_deep.yaml", "5:36", ["nests deeper than 64 levels", "found level 73"]),
    ("unknown_top_level_key.yaml", "3:1", ["unknown key 'stepz'", "did you mean 'steps'?"]),
    ("unknown_step_option.yaml", "4:5", ["option 'nmae' in 'steps[0]'", "did you mean 'name'?"]),
    ("unknown_step_kind.yaml", "4:5", ["'identfy'", "did you mean 'identify'?"]),
    ("unknown_payload_key.yaml", "6:7", ["unknown field 'traitz'", "did you mean 'traits'?"]),
    (
        "unknown_payload_key_flow_style.yaml",
        "4:25",
        ["step 'track #1': unknown field 'evnt'", "did you mean 'event'?"],
    ),
    ("unknown_for_each_key.yaml", "3:12", ["unknown key 'fiel'", "did you mean 'file'?"]),
    ("deep_payload.yaml", "6:252", ["nests deeper than 64 levels", "found level 65"]),
    ("deep_block_vars.yaml", "66:127", ["nests deeper than 64 levels"]),
    ("not_utf8.yaml", "4:28", ["flow file is not UTF-8", "found byte 0xe9"]),
    ("control_character.yaml", "4:26", ["control characters are not allowed"]),
    (
        "unsaved_name.yaml",
        "6:24",
        ["step 'identify #2': 'steps.nosave' is not saved by any earlier step", "one of segments"],
    ),
    ("unsaved_name_typo.yaml", "8:23", ["'steps.segmnts'", "did you mean 'segments'?"]),
    ("saved_only_later.yaml", "4:24", ["'steps.person' is saved only later", "5:5"]),
    ("own_save_before_answer.yaml", "5:33", ["'steps.person' is this step's own save"]),
    ("unsaved_in_when.yaml", "5:11", ["'steps.earlier' is not saved by any earlier step"]),
    ("unsaved_in_vars.yaml", "4:7", ["'steps.person' is read before any step runs"]),
    ("unsaved_in_finally.yaml", "7:22", ["'steps.persn'", "did you mean 'person'?"]),
]


def test_every_corpus_file_has_a_case():
    assert sorted(path.name for path in CORPUS.glob("*.yaml")) == sorted(c[0] for c in CASES)


def _invoke(args: list[str], env: dict[str, str]):
    return CliRunner().invoke(main, args, env=env, catch_exceptions=False)


@pytest.mark.parametrize(("name", "where", "fragments"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("command", ["validate", "run"])
def test_corpus_is_refused_before_sending(command, name, where, fragments, recording_server):
    path = CORPUS / name
    result = _invoke([command, str(path)], env_for(recording_server.url))
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"error: {path}:{where}: "), result.output
    for fragment in fragments:
        assert fragment in result.output
    assert "Traceback" not in result.output
    assert recording_server.requests == []


@pytest.mark.slow
def test_alias_bomb_is_refused_by_a_real_process(recording_server):
    """The bomb once took 77 s and 3.6 GB; the timeout only keeps a regression from hanging CI."""
    path = CORPUS / "alias_bomb.yaml"
    assert len(path.read_bytes()) < 350
    cli = str(Path(sys.executable).with_name("cio-flows"))
    done = subprocess.run(
        [cli, "run", str(path)],
        env=env_for(recording_server.url, PATH="/usr/bin:/bin"),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 2, done.stderr
    assert f"{path}:9:10: this alias expands the flow file past {MAX_NODES}" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert recording_server.requests == []


# --- what must keep working -----------------------------------------------------------------


def test_aliases_and_merge_keys_within_the_limits_still_load(write_flow):
    # 4 levels of 9 aliases: about 7,400 values, far under the limit
    levels = "".join(f"  l{n}: &l{n} [" + ", ".join([f"*l{n - 1}"] * 9) + "]\n" for n in (1, 2, 3))
    path = write_flow(
        "version: 1\nname: ok\nvars:\n  l0: &l0 [a, b, c, d, e, f, g, h, i]\n"
        + levels
        + "  base: &base {plan: pro}\n  merged: {<<: *base, seats: 3}\n"
        + "steps:\n  - identify: &same {userId: u1}\n  - identify: *same\n"
    )
    flow = load_flow(path)
    values = dict(flow.vars)
    assert len(values["l3"]) == 9 and values["l3"][8][8][8][8] == "i"
    assert values["merged"] == {"plan": "pro", "seats": 3}
    assert flow.steps[1].payload == {"userId": "u1"}


def test_nesting_up_to_the_limit_loads(write_flow):
    inner = MAX_DEPTH - 3  # the root mapping, `vars` and the innermost value are levels too
    path = write_flow(
        "version: 1\nname: ok\nvars:\n  deep: "
        + "[" * inner
        + "1"
        + "]" * inner
        + "\nsteps:\n  - list_segments:\n"
    )
    assert load_flow(path).vars[0][0] == "deep"
    path.write_text(path.read_text().replace("[1]", "[[1]]"))
    with pytest.raises(FlowSyntaxError, match=f"nests deeper than {MAX_DEPTH} levels"):
        load_flow(path)


def test_a_flow_file_with_too_many_values_of_its_own(write_flow):
    items = ", ".join(["1"] * (MAX_NODES + 1))
    path = write_flow(
        f"version: 1\nname: big\nvars:\n  many: [{items}]\nsteps:\n  - list_segments:\n"
    )
    with pytest.raises(FlowSyntaxError, match=f"the flow file has more than {MAX_NODES} values"):
        load_flow(path)


def test_no_suggestion_when_nothing_is_close(write_flow):
    path = write_flow("version: 1\nname: demo\nzzz: 1\nsteps:\n  - list_segments:\n")
    result = _invoke(["validate", str(path)], {})
    assert result.exit_code == 2
    assert f"{path}:3:1: unknown key 'zzz'" in result.output
    assert "did you mean" not in result.output


def test_saves_that_are_made_in_time_pass(write_flow):
    path = write_flow(
        "version: 1\nname: demo\nsteps:\n"
        "  - list_segments:\n    save: segs\n    expect: steps.segs.segments is defined\n"
        "  - get_person: {id: \"{{ steps['segs'].segments | length }}\"}\n"
        "    when: steps.segs\n"
        "    save: {name: person, value: response.id}\n"
        "finally:\n"
        '  - delete: {userId: "{{ steps.person }}"}\n'
        '    loop: "{{ [steps.segs, steps.person] }}"\n'
    )
    result = _invoke(["validate", str(path)], {})
    assert result.exit_code == 0, result.output


def test_a_local_name_steps_is_not_a_saved_response(write_flow):
    path = write_flow(
        "version: 1\nname: demo\nsteps:\n"
        "  - identify: {userId: \"{% set steps = {'a': 1} %}{{ steps.a }}\"}\n"
    )
    assert load_flow(path).steps[0].kind == "identify"


def test_saved_name_check_names_the_template(write_flow):
    path = write_flow(
        'version: 1\nname: demo\nsteps:\n  - identify: {userId: "{{ steps.nosave.x }}"}\n'
    )
    with pytest.raises(TemplateError) as info:
        load_flow(path)
    assert str(info.value).startswith(
        f"{path}:4:24: step 'identify #1': 'steps.nosave' is not saved by any earlier step"
    )
