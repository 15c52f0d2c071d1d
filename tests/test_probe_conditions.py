"""Conditions (`expect`, `when`, `wait_until`) are one expression: a string literal holding
braces, or text around braces, once rendered to the string "False", which is true, so a wrong
expectation passed (found by an outside probe)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cio_flows import RunOptions, run_flow
from cio_flows.errors import TemplateError
from cio_flows.flow.templating import evaluate_condition

FLOW = """\
version: 1
name: braces_in_conditions
steps:
  - identify: {userId: braces_user, traits: {u: abc}}
  - get_person: {id: braces_user}
    expect: EXPECTATION
"""


@pytest.mark.parametrize(
    ("condition", "value"),
    [
        ('x == "nope{{ 1 }}"', False),
        ('x == "}}"', False),
        ("x == '{{'", False),
        ('{{ x == "abc" }}', True),
        ('x == "a{{b}}c" or x == "abc"', True),
    ],
)
def test_a_string_literal_with_braces_is_part_of_the_expression(
    condition: str, value: bool
) -> None:
    assert evaluate_condition(condition, {"x": "abc"}, None) is value


def test_text_around_braces_is_refused_not_true() -> None:
    with pytest.raises(TemplateError, match="a condition is one expression"):
        evaluate_condition("{{ x == 1 }} and {{ x == 2 }}", {"x": "abc"}, None)


def test_a_wrong_expectation_with_braces_in_a_string_fails_the_run(tmp_path: Path) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text(FLOW.replace("EXPECTATION", "'response.attributes.u == \"nope{{ 1 }}\"'"))
    summary = run_flow(flow, RunOptions(emulator=True, journal=False))
    assert summary.exit_code == 1
    assert summary.counts["failed"] == 1
