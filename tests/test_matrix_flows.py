"""Every shipped flow through every command: no traceback, the exit codes the docs promise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cio_flows.cli import main

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted(
    path
    for path in (ROOT / "flows").rglob("*.yaml")
    if "common" not in path.relative_to(ROOT / "flows").parts  # included pieces, not flows
)
KEYS = ("SITE_ID", "TRACK_TOKEN", "PIPELINES_KEY", "APP_TOKEN", "REGION")


def flow_id(path: Path) -> str:
    return str(path.relative_to(ROOT / "flows"))


@pytest.fixture
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in KEYS:
        monkeypatch.delenv(f"CUSTOMERIO_{name}", raising=False)


def invoke(*args: str):
    result = CliRunner().invoke(main, list(args), catch_exceptions=True)
    assert "Traceback" not in result.output + result.stderr, result.output + result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    return result


def test_the_matrix_covers_every_shipped_flow():
    assert len(SHIPPED) >= 14


@pytest.mark.parametrize("flow", SHIPPED, ids=flow_id)
@pytest.mark.parametrize("fmt", ["text", "json", "jsonl"])
def test_plan_exits_0_without_a_traceback(flow: Path, fmt: str, no_keys: None) -> None:
    result = invoke("plan", str(flow), "--format", fmt)
    assert result.exit_code == 0, result.output + result.stderr
    if fmt != "text":  # json and jsonl: one JSON object per request
        assert [json.loads(line) for line in result.stdout.splitlines()]
