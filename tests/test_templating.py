"""Templating: native types, strict undefined, sandbox, helpers."""

from __future__ import annotations

import re

import pytest

from cio_flows.errors import Location, TemplateError
from cio_flows.flow.loader import load_flow
from cio_flows.flow.sandbox import MAX_SIZE, TemplateEnv
from cio_flows.flow.templating import evaluate_condition, render_value

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


# --- the sandbox's limits, results that are not JSON, and the environment (issue 9) -----------


@pytest.mark.parametrize(
    "template",
    [
        "{{ 'x' * 10**9 }}",
        "{{ [1] * 10**9 }}",
        "{{ 2 ** 100000 }}",
        "{{ 10**300 * 10**300 * 10**300 * 10**300 }}",
        "{{ 'x'.center(10**9) }}",
        "{{ 'x' | center(10**9) }}",
        "{{ '%999999999d' % 1 }}",
        "{{ '{:>999999999}'.format(1) }}",
        "{{ '{:{}}'.format(1, 10**9) }}",
        "{{ range(100000) | join('x' * 1000000) }}",
        "{{ ('x' * 1000000).join(range(100000) | map('string')) }}",
        "{{ ('x' * 100) | replace('', 'y' * 1000000) }}",
        "{{ [1] | batch(10**9, 0) | list }}",
        "{{ [1] | slice(10**9) | list }}",
        "{% for i in range(100000) %}{{ 'x' * 1000000 }}{% endfor %}",
        "{% macro f(s, n) %}{{ f(s ~ s, n - 1) if n else s }}{% endmacro %}{{ f('x', 60) }}",
    ],
)
def test_values_over_the_limits_are_refused(template):
    # How quickly: benchmarks/quick_answers.py (no wall-clock assertions in tests).
    with pytest.raises(TemplateError, match="template result too large"):
        render(template)


def test_values_within_the_limits_render():
    assert render("{{ 'ab' * 3 }}") == "ababab"
    assert render("{{ 2 ** 64 }}") == 2**64
    assert render("{{ [1, 2] * 2 }}") == [1, 2, 1, 2]
    assert render("{{ ('x' * 1000) | length }}") == 1000
    assert len(render("{{ 'x' * (limit - 1) }}", limit=MAX_SIZE)) == MAX_SIZE - 1
    assert render("{{ '%05d' % 42 }}") == "00042"
    assert render("{{ range(3) | join(',') }}") == "0,1,2"


def test_templates_cannot_change_what_they_are_given():
    with pytest.raises(TemplateError, match="not allowed"):
        render("{{ row.tags.append('x') }}", row={"tags": []})
    with pytest.raises(TemplateError, match="undefined name 'namespace'"):
        render("{% set ns = namespace(s='x') %}{{ ns.s }}")


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("{{ self }}", "not JSON: a TemplateReference"),
        ("{{ now }}", "'now' is a function"),
        ("{{ row.get }}", "'get' is a function"),
        ("{{ 1e308 * 10 }}", "inf is not a JSON number"),
    ],
)
def test_results_that_are_not_json_are_refused(template, reason):
    with pytest.raises(TemplateError, match=re.escape(reason)):
        render(template, row={})


def test_iterators_and_mappings_become_json():
    assert render("{{ row.tags | map('upper') }}", row={"tags": ["a", "b"]}) == ["A", "B"]
    assert render("{{ range(3) }}") == [0, 1, 2]
    assert render("{{ {'a': (1, 2)} }}") == {"a": [1, 2]}
    assert render("{{ env }}", env=TemplateEnv({"HOME": "/h", "API_KEY": "k" * 10})) == {
        "HOME": "/h"
    }


ENVIRON = {
    "HOME": "/home/jane",
    "GITHUB_TOKEN": "ghp_secret_value",
    "CUSTOMERIO_APP_TOKEN": "app-key-value",
}


def test_the_environment_hides_keys_and_secrets_from_every_listing():
    env = TemplateEnv(ENVIRON)
    for template in ("{{ env.items() | list }}", "{{ env | dictsort }}", "{{ env | list }}"):
        text = str(render(template, env=env))
        assert "HOME" in text
        assert "GITHUB_TOKEN" not in text and "ghp_secret_value" not in text
        assert "app-key-value" not in text


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("{{ env.CUSTOMERIO_APP_TOKEN }}", "cannot read CUSTOMERIO_APP_TOKEN"),
        ("{{ env['CUSTOMERIO_' ~ 'APP_TOKEN'] }}", "cannot read CUSTOMERIO_APP_TOKEN"),
        ("{{ env['GITHUB_' ~ 'TOKEN'] }}", "GITHUB_TOKEN is secret"),
        ("{{ env.get('GITHUB_TOKEN') }}", "GITHUB_TOKEN is secret"),
        ("{{ [env] | map(attribute='GITHUB_TOKEN') | list }}", "GITHUB_TOKEN is secret"),
    ],
)
def test_computed_names_cannot_read_keys_or_secrets(template, reason):
    with pytest.raises(TemplateError, match=reason):
        render(template, env=TemplateEnv(ENVIRON))


def test_a_secret_is_read_by_its_literal_name():
    assert render("{{ env.GITHUB_TOKEN }}", env=TemplateEnv(ENVIRON)) == "ghp_secret_value"


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("{{ env.CUSTOMERIO_PIPELINES_KEY }}", "templates cannot read CUSTOMERIO_PIPELINES_KEY"),
        ("{{ env['CUSTOMERIO_TRACK_TOKEN'] }}", "templates cannot read CUSTOMERIO_TRACK_TOKEN"),
        ("{{ env.GITHUB_TOKEN | reverse }}", "env.GITHUB_TOKEN is secret"),
        ("{{ env.GITHUB_TOKEN | join('.') }}", "env.GITHUB_TOKEN is secret"),
        ("{{ env.db_password ~ '' }}", "env.db_password is secret"),
        ("{{ env['GITHUB_TOKEN'] }}", "env.GITHUB_TOKEN is secret"),
        ("{{ self }}", "'self' is not available"),
        ("{{ uuid }}", "'uuid' is a function, not a value: call it, uuid()"),
    ],
)
def test_the_static_check_names_the_template(template, reason, tmp_path):
    path = tmp_path / "flow.yaml"
    path.write_text(
        f'version: 1\nname: demo\nsteps:\n  - track: {{userId: u1, event: "{template}"}}\n',
        encoding="utf-8",
    )
    with pytest.raises(TemplateError, match=re.escape(reason)) as error:
        load_flow(path)
    assert error.value.location.line == 4


def test_the_static_check_allows_a_secret_used_as_it_is(tmp_path):
    path = tmp_path / "flow.yaml"
    path.write_text(
        "version: 1\nname: demo\nsteps:\n"
        "  - track: {userId: u1, event: e, properties: {a: 'Token {{ env.GITHUB_TOKEN }}',"
        " b: '{{ env.HOME | upper }}', c: '{{ now() }}'}}\n",
        encoding="utf-8",
    )
    assert load_flow(path).name == "demo"


@pytest.mark.parametrize(
    ("vars_", "payload", "line", "reason"),
    [
        ("  t: '{{ env.GITHUB_TOKEN }}'\n", "{{ t | reverse }}", 6, "var 't' holds a secret"),
        (
            "  t: '{{ env.GITHUB_TOKEN }}'\n  u: 'x {{ t }}'\n",
            "{{ u | join('.') }}",
            7,
            "var 'u' holds a secret",
        ),
        ("  t: '{{ env.GITHUB_TOKEN | upper }}'\n", "{{ t }}", 4, "env.GITHUB_TOKEN is secret"),
    ],
)
def test_a_secret_held_in_a_var_keeps_its_rules(vars_, payload, line, reason, tmp_path):
    path = tmp_path / "flow.yaml"
    path.write_text(
        f'version: 1\nname: demo\nvars:\n{vars_}steps:\n  - track: {{userId: u1, event: "{payload}"}}\n',
        encoding="utf-8",
    )
    with pytest.raises(TemplateError, match=re.escape(reason)) as error:
        load_flow(path)
    assert error.value.location.line == line


@pytest.mark.parametrize(
    "text",
    [
        "for_each: {file: rows.csv, key: '{{ env.GITHUB_TOKEN }}'}\nsteps:\n  - list_segments:\n",
        "steps:\n  - list_segments:\n    when: env.GITHUB_TOKEN\n",
    ],
)
def test_a_secret_cannot_be_a_row_key_or_a_condition(text, tmp_path):
    path = tmp_path / "flow.yaml"
    path.write_text("version: 1\nname: demo\n" + text, encoding="utf-8")
    with pytest.raises(TemplateError, match=re.escape("env.GITHUB_TOKEN is secret")):
        load_flow(path)
