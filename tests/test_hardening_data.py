"""Bad data files are refused whole before the first request: exit 2, file:line, nothing sent.

The corpus (tests/corpus/data/) holds one small bad file per case; CASES says what each must
produce. Every case goes through the command line against a recording server on 127.0.0.1.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import env_for

from cio_flows.cli import main

CORPUS = Path(__file__).resolve().parent / "corpus" / "data"

FLOW = """\
version: 1
name: data-corpus
for_each: {key: "{{ row.id }}"}
steps:
  - identify: {userId: "{{ row.id }}", traits: {email: "{{ row.email }}"}}
  - track: {userId: "{{ row.id }}", event: synced}
"""

# file: (message fragment, line reported, the other line a duplicate names or None)
CASES = {
    "invalid_utf8.csv": ("not valid UTF-8 (expected UTF-8 text, found byte 0xe9)", "3:7", None),
    "invalid_utf8.jsonl": ("not valid UTF-8 (expected UTF-8 text, found byte 0xff)", "2:24", None),
    "invalid_utf8.json": ("not valid UTF-8 (expected UTF-8 text, found byte 0xc3)", "3:26", None),
    "fewer_cells.csv": ("row has fewer cells than the header has columns", "3:1", None),
    "more_cells.csv": ("row has more cells than the header has columns", "4:1", None),
    "duplicate_column.csv": ("the header names column 'id' twice", "1:1", None),
    "unclosed_quote.csv": ("CSV syntax error in the row starting here", "3:1", None),
    "bad_line.jsonl": ("row 3: invalid JSON: Expecting value", "3:", None),
    "not_an_object.jsonl": (
        "each row must be a JSON object (expected object, found list)",
        "2:1",
        None,
    ),
    "bad_syntax.json": ("invalid JSON: parse error", "4:1", None),
    "not_an_array.json": ("must be an array of row objects (expected '[', found '{')", "2:1", None),
    "empty.json": (
        "must be an array of row objects (expected '[', found an empty file)",
        "1:1",
        None,
    ),
    "item_not_an_object.json": (
        "each row must be a JSON object (expected object, found str)",
        "4:1",
        None,
    ),
    "truncated.json": ("invalid JSON: parse error: premature EOF", "3:1", None),
    "trailing_garbage.json": ("invalid JSON: parse error: trailing garbage", "4:1", None),
    "duplicate_key.csv": ("duplicate for_each key: line 4 has the same key as line 2", "4:1", 2),
    "duplicate_key.jsonl": ("duplicate for_each key: line 5 has the same key as line 2", "5:1", 2),
    "duplicate_key_number_and_string.jsonl": ("duplicate for_each key", "2:1", 1),
    "duplicate_key.json": ("duplicate for_each key: line 10 has the same key as line 2", "10:1", 2),
}


def cli(args: list[str], env: dict[str, str] | None = None):
    # catch_exceptions=False: an exception would fail the test with its traceback
    return CliRunner().invoke(main, args, env=env or {}, catch_exceptions=False)


def assert_refused(result, path: Path, fragment: str, line: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert f"error: {path}:{line}" in result.output, result.output
    assert fragment in result.output, result.output


def test_every_corpus_file_has_an_expectation():
    assert sorted(p.name for p in CORPUS.iterdir()) == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_data_file_is_refused_before_sending(name, write_flow, recording_server):
    fragment, line, other = CASES[name]
    path = CORPUS / name
    result = cli(["run", str(write_flow(FLOW)), "--data", str(path)], env_for(recording_server.url))
    assert_refused(result, path, fragment, line)
    if other is not None:  # both lines of a duplicate are named
        assert f"lines {other} and {line.split(':')[0]}" in result.output
    assert "run id" not in result.output
    assert recording_server.requests == []


@pytest.mark.parametrize("command", ["validate", "plan"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_validate_and_plan_refuse_the_same_files(name, command, write_flow):
    fragment, line, _ = CASES[name]
    path = CORPUS / name
    result = cli([command, str(write_flow(FLOW)), "--data", str(path)])
    assert_refused(result, path, fragment, line)


@pytest.mark.parametrize("name", ["missing.json", "missing.jsonl", "missing.csv"])
def test_a_missing_data_file_names_its_path(name, tmp_path, write_flow, recording_server):
    path = tmp_path / name
    result = cli(["run", str(write_flow(FLOW)), "--data", str(path)], env_for(recording_server.url))
    assert_refused(result, path, "data file not found", "1:1")
    assert recording_server.requests == []


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_a_for_each_file_that_is_a_directory(suffix, tmp_path, write_flow, recording_server):
    (tmp_path / f"rows{suffix}").mkdir()
    flow = write_flow(FLOW.replace("for_each: {", f"for_each: {{file: rows{suffix}, "))
    result = cli(["run", str(flow)], env_for(recording_server.url))
    assert_refused(result, tmp_path / f"rows{suffix}", "the data file is a directory", "1:1")
    assert recording_server.requests == []


def good_rows(count: int) -> str:
    return "".join(
        json.dumps({"id": f"u{i}", "email": f"u{i}@example.com"}) + "\n"
        for i in range(1, count + 1)
    )


@pytest.mark.parametrize("batch", ["--batch", "--no-batch"])
def test_a_bad_last_line_after_thousands_of_good_rows_sends_nothing(
    batch, tmp_path, write_flow, recording_server
):
    path = tmp_path / "users.jsonl"
    path.write_text(good_rows(4000) + '{"id": "u4001", "email": \n')
    args = ["run", str(write_flow(FLOW)), "--data", str(path), batch]
    result = cli(args, env_for(recording_server.url))
    assert_refused(result, path, "row 4001: invalid JSON", "4001:")
    assert recording_server.requests == []


def test_a_duplicate_key_at_the_end_of_a_long_file(tmp_path, write_flow, recording_server):
    path = tmp_path / "users.jsonl"
    path.write_text(good_rows(3000) + json.dumps({"id": "u17", "email": "x@example.com"}) + "\n")
    result = cli(["run", str(write_flow(FLOW)), "--data", str(path)], env_for(recording_server.url))
    assert_refused(result, path, "on lines 17 and 3001", "3001:1")
    assert recording_server.requests == []


def test_keys_made_by_a_var_from_the_row_are_checked(tmp_path, write_flow, recording_server):
    flow = FLOW.replace(
        'for_each: {key: "{{ row.id }}"}',
        'vars: {uid: "{{ row.id | lower }}"}\nfor_each: {key: "user-{{ uid }}"}',
    )
    path = tmp_path / "users.csv"
    path.write_text("id,email\nU1,a@example.com\nu2,b@example.com\nu1,c@example.com\n")
    result = cli(["run", str(write_flow(flow)), "--data", str(path)], env_for(recording_server.url))
    assert_refused(result, path, "key 'user-u1' on lines 2 and 4", "4:1")
    assert recording_server.requests == []


def test_without_a_key_repeated_ids_are_distinct_rows(tmp_path, write_flow, recording_server):
    flow = FLOW.replace('for_each: {key: "{{ row.id }}"}\n', "")
    path = tmp_path / "users.csv"
    path.write_text("id,email\nu1,a@example.com\nu1,b@example.com\n")
    result = cli(["run", str(write_flow(flow)), "--data", str(path)], env_for(recording_server.url))
    assert result.exit_code == 0, result.output
    ids = {item["messageId"] for r in recording_server.requests for item in r.body["batch"]}
    assert len(ids) == 4  # two rows x two steps, no messageId shared
