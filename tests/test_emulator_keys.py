"""`--emulator` follows the keys in the environment, as Customer.io would: Track-only keys send
people and events to the Track API (with its 150-byte ids), a Pipelines key to Pipelines, no key
at all gets the emulator's demo keys for every family."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from support import cli

from cio_flows.api import _with_keys, options_for_emulator, run_flow
from cio_flows.emulator import Credentials, Emulator
from cio_flows.run.prepare import RunOptions

TRACK_ONLY = {"CUSTOMERIO_SITE_ID": "site-1", "CUSTOMERIO_TRACK_TOKEN": "track-secret-1"}
FLOW = """version: 1
name: people
vars: {user_id: someone}
steps:
  - name: create
    identify:
      userId: "{{ user_id }}"
      traits: {plan: free}
"""


def _flow(tmp_path: Path) -> Path:
    path = tmp_path / "people.yaml"
    path.write_text(FLOW)
    return path


def test_keys_given_are_the_only_keys_a_run_gets() -> None:
    creds = Credentials.from_env(TRACK_ONLY)
    env = _with_keys(TRACK_ONLY, creds)
    assert env["CUSTOMERIO_TRACK_TOKEN"] == "track-secret-1"
    assert "CUSTOMERIO_PIPELINES_KEY" not in env and "CUSTOMERIO_APP_TOKEN" not in env
    pipelines = {"CUSTOMERIO_PIPELINES_KEY": "pk-1"}
    env = _with_keys(pipelines, Credentials.from_env(pipelines))
    assert env["CUSTOMERIO_PIPELINES_KEY"] == "pk-1" and "CUSTOMERIO_TRACK_TOKEN" not in env


def test_no_keys_means_every_demo_key() -> None:
    env = _with_keys({}, Credentials.from_env({}))
    assert all(env[name] for name in ("CUSTOMERIO_TRACK_TOKEN", "CUSTOMERIO_PIPELINES_KEY"))


def test_track_only_keys_send_to_the_track_api(tmp_path: Path) -> None:
    with Emulator(credentials=Credentials.from_env(TRACK_ONLY)) as emu:
        options = options_for_emulator(emu, RunOptions(environ=dict(TRACK_ONLY), journal=False))
        summary = run_flow(_flow(tmp_path), options)
        assert summary.exit_code == 0
        assert [r["path"] for r in emu.inspect.requests("track")] == ["/api/v1/customers/someone"]
        assert emu.inspect.requests("pipelines") == []


def _run(tmp_path: Path, user_id: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        cli("run", str(_flow(tmp_path)), "--emulator", "--var", f"user_id={user_id}"),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
@pytest.mark.slow  # real processes
def test_a_200_byte_id_fails_its_row_with_track_only_keys(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTOMERIO_")}
    env.update(TRACK_ONLY, CIO_FLOWS_JOURNAL=str(tmp_path / "journal.db"))
    ok = _run(tmp_path, "x" * 150, env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    failed = _run(tmp_path, "x" * 200, env)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "150" in failed.stdout + failed.stderr
    assert "track-secret-1" not in failed.stdout + failed.stderr


@pytest.mark.slow
@pytest.mark.slow  # real processes
def test_with_no_keys_the_same_id_goes_to_pipelines_and_passes(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTOMERIO_")}
    env["CIO_FLOWS_JOURNAL"] = str(tmp_path / "journal.db")
    assert _run(tmp_path, "x" * 200, env).returncode == 0
