"""Conditions explained from their Jinja syntax tree: the operand that was false, with its value."""

from __future__ import annotations

import pytest

from cio_flows.errors import Location
from cio_flows.flow.conditions import Explanation, explain, explanation, holds, source
from cio_flows.flow.jinja_env import ENVIRONMENT
from cio_flows.flow.model import Condition

HERE = Location("flow.yaml", 3, 13)


def why(expression: str, **context) -> Explanation:
    condition = Condition(expression, HERE)
    assert not holds(condition, context), "explain is for conditions that did not hold"
    return explanation(condition, context)


def test_and_names_the_operand_that_was_false_not_the_one_that_held():
    response = {"count": 1, "ids": ["u1"]}
    found = why('response.count == 1 and response.ids == ["nobody"]', response=response)
    assert found == Explanation('["nobody"]', 'response.ids = ["u1"]', 'response.ids == ["nobody"]')


def test_and_stops_at_the_first_false_operand():
    response = {"count": 0, "ids": ["u1"]}
    found = why('response.count == 1 and response.ids == ["nobody"]', response=response)
    assert (found.expected, found.found) == ("1", "response.count = 0")


def test_a_bare_operand_of_and():
    # The regex split used to say "expected false, found count = 3" here.
    assert explain(Condition("count == 3 and ok", HERE), {"count": 3, "ok": False}) == (
        "true",
        "ok = false",
    )


def test_nested_and_or_explains_every_false_branch_of_the_or():
    found = why("ready and (plan == 'pro' or seats > 10)", ready=True, plan="free", seats=2)
    assert found.expected == '"pro" or seats > 10'
    assert found.found == 'plan = "free"; seats = 2'
    assert found.operand == 'plan == "pro" or seats > 10'


@pytest.mark.parametrize(
    ("expression", "context", "expected", "found"),
    [
        ("response.count > 2", {"response": {"count": 1}}, "response.count > 2",
         "response.count = 1"),
        ("1 == response.count", {"response": {"count": 0}}, "1", "response.count = 0"),
        ("a != b", {"a": 1, "b": 1}, "a != b", "a = 1, b = 1"),
        ("0 < n < 10", {"n": 12}, "n < 10", "n = 12"),
        ('"gold" in tags', {"tags": ["silver"]}, '"gold" in tags', 'tags = ["silver"]'),
        ("'x' not in tags", {"tags": ["x"]}, '"x" not in tags', 'tags = ["x"]'),
        ("segments | length > 0", {"segments": []}, "segments | length > 0",
         "segments | length = 0"),
        ("{{ count == 1 }}", {"count": 0}, "1", "count = 0"),
    ],
)  # fmt: skip
def test_comparisons_show_each_side_that_is_not_written_out(expression, context, expected, found):
    assert explain(Condition(expression, HERE), context) == (expected, found)


def test_not_and_tests_show_what_they_looked_at():
    assert explain(Condition("not response.ok", HERE), {"response": {"ok": True}}) == (
        "not response.ok",
        "response.ok = true",
    )
    assert explain(Condition("person.email is defined", HERE), {"person": {}}) == (
        "person.email is defined",
        "person.email = undefined",
    )
    assert explain(Condition("person.plan is not none", HERE), {"person": {"plan": None}}) == (
        "person.plan is not none",
        "person.plan = null",
    )


def test_a_plain_value_names_itself():
    assert explain(Condition("response.delivery_id", HERE), {"response": {}}) == (
        "true",
        "response.delivery_id = undefined",
    )


def test_long_values_are_cut():
    expected, found = explain(Condition("items == []", HERE), {"items": list(range(1000))})
    assert expected == "[]" and found.startswith("items = [0, 1, 2") and found.endswith("…")
    assert len(found) < 220


@pytest.mark.parametrize(
    "text",
    [
        'response.count == 1 and response.ids == ["nobody"]',
        "not (a or b) and c",
        "x.y[0] | default(1) >= -2",
        "person.email is not defined",
        "f(1, k=2) ~ 'a' in [1, 2]",
        "a if b else c",
    ],
)
def test_source_reads_back_as_the_same_tree(text):
    parsed = ENVIRONMENT.parse("{{ " + text + " }}").body[0].nodes[0]
    again = ENVIRONMENT.parse("{{ " + source(parsed) + " }}").body[0].nodes[0]
    assert again == parsed
