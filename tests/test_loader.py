"""Loading flow files: positions, structure errors and their wording."""

from __future__ import annotations

import pytest

from cio_flows import FlowSchemaError, FlowSyntaxError, TemplateError, load_flow

VALID = """\
version: 1
name: demo
vars:
  a: "x"
steps:
  - identify:
      userId: "{{ a }}"
"""


def test_valid_flow_models_steps_with_locations(write_flow):
    path = write_flow(VALID)
    flow = load_flow(path)
    assert flow.name == "demo"
    step = flow.steps[0]
    assert step.kind == "identify"
    assert step.name == "identify #1"
    assert (step.location.line, step.location.column) == (6, 5)
    assert flow.locate(("steps", 0, "identify", "userId")).line == 7


def test_yaml_syntax_error_names_line_and_column(write_flow):
    path = write_flow("version: 1\nname: demo\nsteps:\n  - identify: {userId: [\n")
    with pytest.raises(FlowSyntaxError) as info:
        load_flow(path)
    message = str(info.value)
    assert message.startswith(f"{path}:5:1: YAML syntax error")


def test_unknown_step_kind_points_at_the_key(write_flow):
    path = write_flow("version: 1\nname: demo\nsteps:\n  - idnetify: {userId: x}\n")
    with pytest.raises(FlowSchemaError) as info:
        load_flow(path)
    message = str(info.value)
    assert message.startswith(f"{path}:4:5: unknown step kind or option 'idnetify'")
    assert "expected one of" in message and "identify" in message


def test_unknown_top_level_key(write_flow):
    path = write_flow("version: 1\nname: demo\nstepz: []\nsteps:\n  - list_segments:\n")
    with pytest.raises(FlowSchemaError, match=r":3:1: unknown key 'stepz'"):
        load_flow(path)


def test_wrong_type_names_expected_and_found(write_flow):
    path = write_flow("version: 2\nname: demo\nsteps:\n  - list_segments:\n")
    with pytest.raises(FlowSchemaError) as info:
        load_flow(path)
    assert (
        str(info.value) == f"{path}:1:10: invalid value for 'version' (expected 1, found number 2)"
    )


def test_two_step_kinds_in_one_step(write_flow):
    path = write_flow(
        "version: 1\nname: demo\nsteps:\n  - identify: {userId: x}\n    track: {userId: x}\n"
    )
    with pytest.raises(FlowSchemaError, match="exactly one step kind"):
        load_flow(path)


def test_duplicate_keys_are_errors(write_flow):
    path = write_flow("version: 1\nname: demo\nname: again\nsteps:\n  - list_segments:\n")
    with pytest.raises(FlowSyntaxError, match=r":3:1: duplicate key 'name'"):
        load_flow(path)


def test_missing_steps(write_flow):
    path = write_flow("version: 1\nname: demo\n")
    with pytest.raises(FlowSchemaError, match="missing required key 'steps'"):
        load_flow(path)


def test_undefined_name_is_found_statically(write_flow):
    path = write_flow(
        'version: 1\nname: demo\nsteps:\n  - identify:\n      userId: "{{ usr_id }}"\n'
    )
    with pytest.raises(TemplateError) as info:
        load_flow(path)
    assert str(info.value) == f"{path}:5:15: step 'identify #1': undefined name 'usr_id'"


def test_var_may_use_only_earlier_vars(write_flow):
    path = write_flow(
        'version: 1\nname: demo\nvars:\n  a: "{{ b }}"\n  b: x\nsteps:\n  - list_segments:\n'
    )
    with pytest.raises(TemplateError, match=r":4:6: undefined name 'b'"):
        load_flow(path)


def test_template_syntax_error(write_flow):
    path = write_flow('version: 1\nname: demo\nsteps:\n  - identify: {userId: "{{ a b }}"}\n')
    with pytest.raises(TemplateError, match="template syntax error"):
        load_flow(path)


def test_missing_file(tmp_path):
    with pytest.raises(FlowSyntaxError, match="flow file not found"):
        load_flow(tmp_path / "nope.yaml")


@pytest.mark.parametrize("flow", ["onboarding.yaml", "gdpr_delete.yaml"])
def test_example_flows_load_and_declare_the_schema(flow):
    from conftest import FLOWS

    path = FLOWS / flow
    assert path.read_text().startswith(
        "# yaml-language-server: $schema=../schemas/flow.schema.json"
    )
    assert load_flow(path).steps
