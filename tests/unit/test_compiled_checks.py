"""fastjsonschema validators whose compiled code is kept on disk (flow/compiled_checks.py)."""

from __future__ import annotations

import copy
from pathlib import Path

import fastjsonschema
import pytest

from cio_flows.flow import compiled_checks
from cio_flows.flow.compiled_checks import CACHE_ENV, compiled_check

SCHEMA = {
    "$id": "https://example.test/person.json",
    "type": "object",
    "required": ["id"],
    "properties": {
        "id": {"type": "string", "minLength": 1},
        "email": {"$ref": "#/$defs/email"},
    },
    "$defs": {"email": {"type": "string", "pattern": "^[^@]+@[^@]+$"}},
}
CASES = [{"id": "u1"}, {"id": "u1", "email": "a@b.c"}, {}, {"id": ""}, {"id": "u", "email": "x"}]


def outcome(check, instance) -> str:
    try:
        check(instance)
    except fastjsonschema.JsonSchemaException as exc:
        return f"invalid: {exc.message}"
    return "valid"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    return tmp_path / "validators"


def test_a_kept_check_judges_as_the_compiled_one(cache: Path, monkeypatch) -> None:
    expected = [outcome(fastjsonschema.compile(copy.deepcopy(SCHEMA)), case) for case in CASES]
    assert expected.count("valid") == 2
    given = copy.deepcopy(SCHEMA)
    first = compiled_check(given)
    assert [outcome(first, case) for case in CASES] == expected
    assert len(list(cache.glob("*.pyc"))) == 1

    def not_again(*args, **kwargs):
        raise AssertionError("compiled again: the kept code was not used")

    monkeypatch.setattr(fastjsonschema, "compile_to_code", not_again)
    second = compiled_check(given)
    assert [outcome(second, case) for case in CASES] == expected
    assert given == SCHEMA  # the compiler resolves references in a copy, not in the caller's


def test_another_schema_is_kept_apart(cache: Path) -> None:
    compiled_check(SCHEMA)
    stricter = {**SCHEMA, "required": ["id", "email"]}
    check = compiled_check(stricter)
    assert outcome(check, {"id": "u1"}).startswith("invalid")
    assert len(list(cache.glob("*.pyc"))) == 2


@pytest.mark.parametrize("damage", [b"", b"not marshal", b"\xe3" * 40, b"N"])
def test_a_damaged_file_is_compiled_again_and_replaced(cache: Path, damage: bytes) -> None:
    compiled_check(SCHEMA)
    (kept,) = cache.glob("*.pyc")
    kept.write_bytes(damage)
    check = compiled_check(SCHEMA)
    assert outcome(check, {}).startswith("invalid")
    assert kept.read_bytes() != damage


def test_a_cache_that_cannot_be_written_only_compiles_each_time(
    tmp_path: Path, monkeypatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("in the way", encoding="utf-8")
    monkeypatch.setenv(CACHE_ENV, str(blocker))
    assert outcome(compiled_check(SCHEMA), {"id": "u1"}) == "valid"
    assert blocker.read_text(encoding="utf-8") == "in the way"


def test_a_schema_beyond_json_is_compiled_here(cache: Path) -> None:
    odd = {"type": "integer", "enum": [1, 2**70]}  # past 64 bits: no key for the cache
    check = compiled_check(odd)
    assert outcome(check, 2**70) == "valid"
    assert outcome(check, 3).startswith("invalid")
    assert not cache.exists()


def test_the_default_folder_is_the_users_cache(monkeypatch) -> None:
    monkeypatch.delenv(CACHE_ENV, raising=False)
    folder = compiled_checks._cache_folder()
    assert folder.name == "validators" and folder.parent.name == "cio-flows"
