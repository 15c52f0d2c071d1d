"""`cio-flows test --replay DIR` needs no CUSTOMERIO_* keys: the cassettes answer, and the suite's
check builds each flow's requests as its replay will (negative checks with `validate: false`)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cio_flows.cli import main

NEGATIVE = """\
version: 1
name: negative
steps:
  - name: traits must be a mapping
    identify: {userId: u1, traits: "not a mapping"}
    validate: false
    expect_status: 400
"""
FINE = """\
version: 1
name: fine
steps:
  - identify: {userId: u2, traits: {plan: pro}}
"""
KEYS = ("SITE_ID", "TRACK_TOKEN", "PIPELINES_KEY", "APP_TOKEN", "REGION")


@pytest.fixture
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in KEYS:
        monkeypatch.delenv(f"CUSTOMERIO_{name}", raising=False)


def test_a_negative_check_recorded_on_the_emulator_replays_with_no_keys(
    tmp_path, monkeypatch, no_keys
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "suite").mkdir()
    (tmp_path / "suite" / "negative.yaml").write_text(NEGATIVE, encoding="utf-8")
    (tmp_path / "suite" / "fine.yaml").write_text(FINE, encoding="utf-8")
    recorded = CliRunner().invoke(main, ["test", "suite", "--emulator", "--record", "cassettes"])
    assert recorded.exit_code == 0, recorded.output + recorded.stderr
    assert (tmp_path / "cassettes" / "suite" / "negative.yaml").is_file()

    replayed = CliRunner().invoke(main, ["test", "suite", "--replay", "cassettes"])
    output = replayed.output + replayed.stderr
    assert replayed.exit_code == 0, output
    assert "2 passed, 0 failed" in output
    assert "INVALID" not in output and "Traceback" not in output


def test_a_missing_cassette_is_still_invalid(tmp_path, monkeypatch, no_keys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "suite").mkdir()
    (tmp_path / "suite" / "fine.yaml").write_text(FINE, encoding="utf-8")
    replayed = CliRunner().invoke(main, ["test", "suite", "--replay", "cassettes"])
    assert replayed.exit_code == 2
    assert "INVALID" in replayed.output + replayed.stderr
