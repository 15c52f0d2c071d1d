"""The per-core fast paths give exactly what the general paths give, on hostile inputs.

Each fast path (payloads that skip drop_omitted's walk, row keys looked up without Jinja, the
uuid5 of messageIds) is compared with the plain computation it replaces: same value, same
types, same error, and no container shared with the row.
"""

from __future__ import annotations

import copy
import inspect
import json
import math
import threading
import uuid
from dataclasses import MISSING, FrozenInstanceError, fields, replace
from pathlib import Path
from typing import Any

import fastjsonschema
import pytest
from jinja2.sandbox import SecurityError

from cio_flows.errors import DataFileError, TemplateError, TemplateLimitError
from cio_flows.flow.jinja_env import ENVIRONMENT, OMIT, drop_omitted
from cio_flows.flow.loader import load_flow
from cio_flows.flow.sandbox import (
    MAX_OPERATIONS,
    MAX_SIZE,
    SecretText,
    TemplateEnv,
    render_budget,
)
from cio_flows.flow.schemas import without_negated_if
from cio_flows.flow.templating import (
    compile_payload,
    compile_value,
    evaluate_condition,
    render_string,
)
from cio_flows.run import rows as rows_module
from cio_flows.run.events import StepFinished
from cio_flows.run.keys import step_keys
from cio_flows.run.prepare import PreparedRun, RunOptions
from cio_flows.run.rows import DataSource
from cio_flows.wire import kinds
from cio_flows.wire.kinds.batching import encode_item
from cio_flows.wire.types import StepKeys


class _Text(str):
    """A str subclass, as a row source might hand over."""


ROWS: list[Any] = [
    {"id": "u1", "email": "a@x.io", "phone": "", "tags": ["a", ""], "n": "1.5"},
    {"id": "ü-ñ-漢字-😀", "email": "\u0000", "phone": None, "tags": [], "n": "0"},
    {"id": 7, "email": 3.25, "phone": True, "tags": {"k": ""}, "n": "-0.0"},
    {"id": OMIT, "email": "x" + OMIT + "y", "phone": [OMIT, "p"], "tags": [OMIT], "n": "1"},
    {"id": "\x00cio-flows:", "email": "omit\x00", "phone": "1", "tags": None, "n": "2"},
    {"id": _Text("sub" + OMIT), "email": _Text("t"), "phone": "", "tags": [{"x": OMIT}], "n": "3"},
    {"id": "u9", "email": "e", "phone": "p", "tags": ["t"], "n": "nan"},  # float nan: refused
    {"id": "u10", "email": "e", "tags": ["t"], "n": "1"},  # no phone column
    {"id": None, "email": None, "phone": None, "tags": None, "n": "1e400"},
    {"id": 10**400, "email": {"a": [1, 2]}, "phone": {}, "tags": [[]], "n": "5"},
]

PAYLOADS: list[Any] = [
    {"userId": "{{ row.id }}", "traits": {"email": "{{ row.email }}", "n": "{{ row.n | float }}"}},
    {
        "userId": "{{ row.id }}",
        "traits": {
            "phone": "{{ row.phone | omit_if_empty }}",
            "tags": ["vip", "{{ row.tags | omit_if_empty }}", "{{ row.email | omit_if_empty }}"],
            "greeting": "Hi {{ row.email }}{{ row.id }}!",
        },
    },
    {"a": "{{ row.tags }}", "b": "{{ row.email ~ row.id }}", "{{ row.id }}": "key"},
    {"literal": "x" + OMIT, "list": [OMIT, "{{ row.id }}"], "n": 1, "f": 1.5, "z": None},
    {"built": "{{ '\\x00cio-flows:' ~ 'omit\\x00' }}", "d": "{{ {'k': row.phone} }}"},
    {"loop": "{% for t in row.tags or [] %}{{ t }},{% endfor %}", "u": "{{ row.missing }}"},
    ["{{ row.id }}", {"x": "{{ row.phone | omit_if_empty }}"}, "{{ row.email }}"],
    {"bad": "{{ row.id ", "ok": "{{ row.id }}"},
]


def _outcome(render: Any, context: dict[str, Any]) -> Any:
    try:
        return ("ok", render(context))
    except TemplateError as exc:
        return ("error", str(exc))


def _same(a: Any, b: Any) -> bool:
    """Equal, with the same types all the way down (1 == 1.0 == True is not enough)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


def _containers(value: Any) -> list[int]:
    if isinstance(value, dict):
        return [id(value), *(i for v in value.values() for i in _containers(v))]
    if isinstance(value, list):
        return [id(value), *(i for v in value for i in _containers(v))]
    return []


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payloads_render_as_drop_omitted_of_the_plain_render(payload: Any) -> None:
    fast = compile_payload(payload, lambda _path: None)
    plain = compile_value(payload, lambda _path: None)
    for row in ROWS:
        context = {"row": row}
        got = _outcome(fast, context)
        expected = _outcome(lambda c: drop_omitted(plain(c)), context)
        assert got[0] == expected[0], (payload, row, got, expected)
        assert _same(got[1], expected[1]), (payload, row, got, expected)
        if got[0] == "ok":  # nothing the row holds is handed out to be changed
            assert not set(_containers(got[1])) & set(_containers(row)), (payload, row)


def test_a_context_that_is_not_a_plain_mapping_takes_the_general_path() -> None:
    payload = {"a": "{{ row.id | omit_if_empty }}", "b": ["{{ row.id }}"]}
    fast = compile_payload(payload, lambda _path: None)
    plain = compile_value(payload, lambda _path: None)

    class Row(dict[str, Any]):
        pass

    for row in (Row(id=""), Row(id="x"), {"id": ""}):
        context = {"row": row}
        assert _same(fast(context), drop_omitted(plain(context)))


@pytest.mark.parametrize("kind", sorted(kind.name for kind in kinds.all_kinds()))
def test_the_fast_payload_check_accepts_what_the_schema_as_written_accepts(kind: str) -> None:
    schema = kinds.get(kind).payload_schema
    as_written = fastjsonschema.compile(copy.deepcopy(schema))
    fast = fastjsonschema.compile(without_negated_if(copy.deepcopy(schema)))
    ids: list[dict[str, Any]] = [
        {},
        {"userId": "u1"},
        {"anonymousId": "a1"},
        {"userId": "u1", "anonymousId": "a1"},
        {"userId": ""},
        {"userId": 5},
        {"anonymousId": None},
    ]
    rest: list[Any] = [{}, {"event": "e"}, {"event": "e", "properties": {"a": 1}}, {"x": 1}]
    instances = [{**a, **b} for a in ids for b in rest] + [None, [], "u1", 3]
    for instance in instances:
        assert _valid(as_written, instance) == _valid(fast, instance), (kind, instance)


def test_only_a_root_negated_if_without_else_is_rewritten() -> None:
    kept = [
        {"if": {"required": ["a"]}, "then": {"required": ["b"]}},
        {"if": {"not": {"required": ["a"]}}, "then": {}, "else": {"required": ["b"]}},
        {"if": {"not": {"required": ["a"]}, "type": "object"}, "then": {"required": ["b"]}},
        {"properties": {"if": {"not": {}}, "then": {}}},
    ]
    for schema in kept:
        assert without_negated_if(copy.deepcopy(schema)) == schema
    rewritten = without_negated_if(
        {"allOf": [{"type": "object"}], "if": {"not": {"required": ["a"]}}, "then": {"x": 1}}
    )
    assert rewritten == {"allOf": [{"type": "object"}, {"anyOf": [{"required": ["a"]}, {"x": 1}]}]}


def _valid(check: Any, instance: Any) -> bool:
    try:
        check(instance)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


# messageIds are stable across versions: uuid5 of "run/row/step" in this namespace, forever.
_NAMESPACE = uuid.UUID("8d6f8c4e-3f7a-5a51-9b52-6b3c2c1e9a10")


@pytest.mark.parametrize(
    ("run", "row", "step"),
    [
        ("20261205010101abcdef", "u0000001", "steps.0"),
        ("", "", ""),
        ("r", "ü/漢字/😀", "steps.1/steps.0"),
        ("r", "a" * 5000, "finally.0"),
        ("r", "\x00\n#0", "steps.0"),
    ],
)
def test_message_ids_are_uuid5_of_the_run_row_and_step(run: str, row: str, step: str) -> None:
    expected = str(uuid.uuid5(_NAMESPACE, f"{run}/{row}/{step}"))
    assert step_keys(run, row, step).message_id == expected


def test_every_variant_digit_is_set_as_uuid5_sets_it() -> None:
    ids = [step_keys("run", str(i), "steps.0").message_id for i in range(400)]
    assert {message_id[19] for message_id in ids} == set("89ab")  # all 16 SHA-1 digits seen
    assert ids == [str(uuid.uuid5(_NAMESPACE, f"run/{i}/steps.0")) for i in range(400)]


def test_step_keys_are_computed_once_each_on_first_use() -> None:
    calls: list[str] = []

    def make(value: str) -> Any:
        return lambda: calls.append(value) or value

    step = StepKeys(make("m"), make("e"))
    assert calls == []
    assert (step.message_id, step.message_id, step.event_id, step.event_id) == ("m", "m", "e", "e")
    assert calls == ["m", "e"]


KEYED_FLOW = """version: 1
name: keyed
vars:
  {vars}
for_each:
  file: rows.jsonl
  key: "{key}"
  on_duplicate_key: first
steps:
  - name: track
    track:
      userId: "u"
      event: e
"""

KEY_CELLS: list[Any] = [
    "a",
    "ü-漢字-😀",
    "",
    " a ",
    OMIT,
    "7",
    7,
    7.0,
    True,
    None,
    ["a"],
    {"a": 1},
    "a",  # a duplicate of the first row: left out (on_duplicate_key: first)
    7,
]


def _prepared(tmp_path: Path, rows: list[dict[str, Any]], key: str, vars_: str) -> PreparedRun:
    (tmp_path / "rows.jsonl").write_text(
        "".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8"
    )
    flow = tmp_path / "flow.yaml"
    flow.write_text(KEYED_FLOW.format(key=key, vars=vars_), encoding="utf-8")
    return PreparedRun(load_flow(flow), RunOptions(environ={}, run_id="r"))


def _rendered_key(run: PreparedRun, row: Any, source: str) -> Any:
    """The key the general way: the template rendered in the row's whole context."""
    where = run.flow.for_each.location if run.flow.for_each else None
    try:
        return str(render_string(source, run.base_context(row), where))
    except TemplateError as exc:
        return ("error", str(exc))


@pytest.mark.parametrize(
    ("key", "vars_"),
    [
        ("{{ row.id }}", "{}"),
        ("{{ row.id }}", "{plain: 1, listed: [a, b]}"),
        ("{{ row.items }}", "{}"),  # a column named as a dict method: the cell, as the lookup
        ("{{ row.id | string }}", "{}"),
        ("{{ row.id | lower | trim }}", "{}"),  # `lower` of a number or a list fails
        ("{{ row.id | int }}", "{}"),
        ("{{ row.id | unix }}", "{}"),  # not a date: the filter's error
        ("{{ row.id | omit_if_empty }}", "{}"),
        ("{{ row.id.a }}", "{}"),  # one level down, where the cell is a mapping
        ("{{ row.id ~ '' }}", "{}"),  # not a lookup: always rendered
    ],
)
def test_row_keys_read_from_the_row_are_the_rendered_keys(
    tmp_path: Path, key: str, vars_: str
) -> None:
    column = "items" if "items" in key else "id"
    cells = [*KEY_CELLS, {"a": "x"}, {"a": ["x"]}, {"a": "1"}, "2024-05-01T12:00:00Z", "A ", "a"]
    rows = [{column: cell, "n": 1} for cell in cells] + [{"n": 1}]  # last: no such column
    run = _prepared(tmp_path, rows, key, vars_)
    seen: dict[str, int] = {}
    duplicates: list[int] = []
    for row in run.data.rows() if run.data else []:
        expected = _rendered_key(run, row, key)
        try:
            got: Any = run.row_key(row, run.base_context(row))
        except TemplateError as exc:
            got = ("error", str(exc))
        assert got == expected and type(got) is type(expected), (row, got, expected)
        if isinstance(expected, str):
            if expected in seen:
                duplicates.append(row.number)
            seen.setdefault(expected, row.number)
    # The pre-pass keyed every row as the run does: the later rows of a key are left out.
    assert sorted(run.dropped_rows) == duplicates, run.dropped_rows
    assert duplicates  # every key above repeats on some rows


def test_the_pre_pass_keys_no_row_whose_context_fails(tmp_path: Path) -> None:
    # Row 2's var divides by zero: its context fails, so it has no key in the pre-pass (it
    # fails when it runs) and is not taken for a duplicate of row 1.
    rows = [{"id": "a", "n": 1}, {"id": "a", "n": 0}, {"id": "b", "n": 1}, {"id": "b", "n": 2}]
    run = _prepared(tmp_path, rows, "{{ row.id }}", "{inverse: '{{ 10 // row.n }}'}")
    assert run.dropped_rows.keys() == {4}


def test_filters_without_argument_checks_still_refuse_secrets_and_check_results() -> None:
    secret = SecretText("GITHUB_TOKEN", "s3cret")
    for name in ("lower", "float", "trim", "string"):
        with pytest.raises(SecurityError, match="GITHUB_TOKEN is secret"):
            ENVIRONMENT.filters[name](secret)
    with pytest.raises(SecurityError):  # a secret as a keyword argument
        ENVIRONMENT.filters["default"]("", default_value=secret)
    with pytest.raises(TemplateLimitError):  # the result is checked after
        ENVIRONMENT.filters["reverse"]("x" * (MAX_SIZE + 1))


def test_filters_count_against_the_render_budget_only_inside_a_render() -> None:
    results: list[Any] = []
    worker = threading.Thread(target=lambda: results.append(ENVIRONMENT.filters["float"]("1.5")))
    worker.start()
    worker.join()
    assert results == [1.5]  # a thread that never rendered: nothing counted, no error
    with render_budget():
        for _ in range(MAX_OPERATIONS):
            ENVIRONMENT.filters["lower"]("A")
        with pytest.raises(TemplateLimitError, match="loop steps and calls"):
            ENVIRONMENT.filters["lower"]("A")
    assert ENVIRONMENT.filters["lower"]("A") == "a"  # the budget ended with the render


CORPUS = Path(__file__).resolve().parent.parent / "corpus" / "data"

CSV_FILES = {
    "plain.csv": "id,email\nu1,a\nu2,b\n",
    "duplicates.csv": 'id,email\nu1,a\n\nu2,b\nu1,c\n"u2",d\nu3,e\nu1,f\n',
    "quoted.csv": 'id,note\n"u\n1","two\nlines"\nu2,x\n"u\n1",y\n',
    "unicode.csv": "\ufeffid,n\nü-漢字-😀,1\n😀,2\nü-漢字-😀,3\n,4\n,5\n",
    "no_key_column.csv": "email,n\na,1\na,2\n",
    "short_row.csv": "id,email\nu1,a\nu2\nu1,c\n",
    "late_quote.csv": 'id,email\nu1,a\nu1,"b\n',
    "bad_utf8.csv": b"id,email\nu1,a\nu\xff2,b\n",
    "empty.csv": "",
    "header_only.csv": "id,email\n",
}


def _key_by_column(row: Any) -> str | None:
    """What a `{{ row.id }}` key gives when the cell is there (the test's stand-in for
    PreparedRun's key); None when the column is missing."""
    return row.data.get("id")


def _checked(source: DataSource, on_duplicate: str, column: str | None) -> Any:
    try:
        checked = source.check_keys(_key_by_column, on_duplicate, key_column=column)
    except DataFileError as exc:
        return ("error", str(exc), exc.row)
    return ("ok", checked.count, checked.dropped)


@pytest.mark.parametrize("on_duplicate", ["fail", "first", "last"])
def test_csv_keys_read_from_the_column_check_as_the_rows_do(
    tmp_path: Path, on_duplicate: str
) -> None:
    paths = [p for p in sorted(CORPUS.glob("*.csv"))]
    for name, text in CSV_FILES.items():
        path = tmp_path / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        paths.append(path)
    for path in paths:
        source = DataSource(path)
        by_rows = _checked(source, on_duplicate, None)
        assert _checked(source, on_duplicate, "id") == by_rows, path.name


def test_a_csv_pre_pass_by_column_builds_no_row(tmp_path: Path, monkeypatch: Any) -> None:
    path = tmp_path / "users.csv"
    path.write_text("id,n\n" + "".join(f"u{i},{i}\n" for i in range(50)), encoding="utf-8")
    built: list[int] = []
    real_row = rows_module.Row

    def counting_row(number: int, line: int, data: dict[str, Any]) -> Any:
        built.append(number)
        return real_row(number, line, data)

    monkeypatch.setattr(rows_module, "Row", counting_row)
    assert DataSource(path).check_keys(_key_by_column, "fail", key_column="id").count == 50
    assert built == []
    assert DataSource(path).check_keys(_key_by_column, "fail").count == 50
    assert len(built) == 50


ITEMS: list[Any] = [
    {"type": "identify", "userId": "u1", "messageId": "6ae5ec84-ddb7-518d-ab93-07721f6910fa"},
    {"amount": 1.99, "tiny": [1e-05, 7e-05, 1e-07, 0.00001, 5e-324], "big": [1e16, 1.5e300]},
    {"odd": [float("nan"), float("inf"), -float("inf"), -0.0, 0.0], "none": None},
    {"text": "e-5, 0.0000 null", "keys": {"e-7}": "x"}, "ü": '漢字😀\u2028\x00\x1f"\\/'},
    {"int": 2**70, "neg": -(2**64), "bool": [True, False], "nested": [[{"a": [1, 2.5]}]]},
    {1: "an int key", 2.5: "a float key", None: "a null key", False: "a bool key"},
    {"x": 100000000000000000000.0, "y": 1e21, "z": 123456789.123456789},
]


@pytest.mark.parametrize("item", ITEMS)
def test_batch_items_encode_as_json_dumps_does(item: Any) -> None:
    expected = json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    assert encode_item(item) == expected


def test_step_finished_takes_its_fields_as_a_dataclass_would() -> None:
    parameters = list(inspect.signature(StepFinished.__init__).parameters.values())[1:]
    assert [(p.name, p.default) for p in parameters] == [
        (f.name, inspect.Parameter.empty if f.default is MISSING else f.default)
        for f in fields(StepFinished)
    ]
    values = {f.name: object() for f in fields(StepFinished)}
    event = StepFinished(**values)
    assert all(getattr(event, name) is value for name, value in values.items())
    assert event == StepFinished(*values.values())
    assert replace(event, status="x").status == "x"
    with pytest.raises(FrozenInstanceError):
        event.status = "x"  # type: ignore[misc]


CONDITION_ROWS: list[Any] = [
    {"vip": "yes", "a": {"b": 0}, "items": "i", "n": "5"},
    {"vip": "", "a": {"b": [1]}, "items": "", "n": "x"},
    {"vip": 0, "a": {}, "n": None},
    {"vip": None, "a": "not a mapping", "n": 2.5},
    {"vip": ["x"], "a": {"b": {"c": 1}}, "n": []},
    {},
]


@pytest.mark.parametrize(
    "condition",
    [
        "row.vip",
        "{{ row.vip }}",
        " row.vip ",
        "row.a.b",
        "row.items",  # a dict attribute: Jinja's to resolve
        "row.n | int",
        "row.vip | lower | trim",
        "row.vip | omit_if_empty",
        "env.HOME",
        "steps.saved.id",
        "run.id",
    ],
)
def test_conditions_looked_up_hold_as_jinja_evaluates_them(condition: str) -> None:
    # In parentheses the same expression is no lookup: Jinja evaluates it.
    inner = condition.strip().removeprefix("{{").removesuffix("}}")
    by_jinja = f"({inner})"
    for row in [*CONDITION_ROWS, _Text("not a mapping")]:
        context = {
            "row": row,
            "env": TemplateEnv({"HOME": "/home"}),
            "steps": {"saved": {"id": row.get("vip")} if isinstance(row, dict) else None},
            "run": {"id": "r1"},
        }
        got = _outcome(lambda c: evaluate_condition(condition, c, None), context)
        expected = _outcome(lambda c: evaluate_condition(by_jinja, c, None), context)
        assert _same(got[1], expected[1]) and got[0] == expected[0], (row, got, expected)


def test_templates_see_the_environment_globals_and_nothing_removed() -> None:
    template = ENVIRONMENT.from_string("{{ x }}")
    assert dict(template.globals) == dict(ENVIRONMENT.globals)
    assert {"now", "unix_now", "uuid", "range", "dict"} <= set(template.globals)
    for name in ("lipsum", "cycler", "joiner", "namespace"):
        with pytest.raises(TemplateError, match=f"undefined name '{name}'"):
            render_string("{{ " + name + "() }}", {}, None)
    assert render_string("{{ range(3) | list }}", {}, None) == [0, 1, 2]
    assert render_string("{% for i in range(2) %}{{ i }}{% endfor %}", {}, None) == "01"
    assert len(render_string("{{ uuid() }}", {}, None)) == 36
    # A template's own globals stay its own.
    own = ENVIRONMENT.from_string("{{ extra }}", globals={"extra": 1})
    assert own.render() == "1" and "extra" not in ENVIRONMENT.globals
