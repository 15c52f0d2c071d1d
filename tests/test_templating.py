"""Templating: native types, strict undefined, sandbox, helpers."""

from __future__ import annotations

import re

import pytest

from cio_flows.errors import Location, TemplateError
from cio_flows.templating import evaluate_condition, render_value

HERE = Location("f.yaml", 1, 1)


def render(value, **context):
    return render_value(value, context, lambda _path: HERE)


def test_whole_expression_keeps_native_types():
    assert render("{{ 49 }}") == 49
    assert render("{{ tags }}", tags=["a", "b"]) == ["a", "b"]
    assert render("  {{ flag }}  ", flag=True) is True
    assert render("{{ row.n * 2 }}", row={"n": 21}) == 42


def test_mixed_strings_render_to_strings():
    assert render("n={{ 49 }}") == "n=49"
    assert render("{{ a }}-{{ b }}", a=1, b=2) == "1-2"


def test_nested_values_and_keys_render():
    value = {"{{ k }}": ["{{ v }}", {"x": "{{ v + 1 }}"}], "plain": 3}
    assert render(value, k="key", v=1) == {"key": [1, {"x": 2}], "plain": 3}


def test_undefined_name_is_an_error():
    with pytest.raises(TemplateError, match="undefined name 'missing'"):
        render("{{ missing }}")
    with pytest.raises(TemplateError, match="undefined"):
        render("hello {{ row.nope }}", row={})


def test_sandbox_blocks_unsafe_attribute_access():
    with pytest.raises(TemplateError, match=r"not allowed|undefined"):
        render("{{ ''.__class__.__mro__ }}")


def test_helpers():
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", render("{{ now() }}"))
    assert render("{{ uuid() }}") != render("{{ uuid() }}")
    assert render("{{ '2024-01-01T00:00:00Z' | unix }}") == 1704067200


def test_conditions_need_no_braces():
    assert evaluate_condition("response.count == 1", {"response": {"count": 1}}, HERE) is True
    assert evaluate_condition("{{ 1 > 2 }}", {}, HERE) is False
