"""Wire tests that replay recorded HTTP cassettes (pytest-recording, record_mode none in CI).

Re-record: `pytest tests/test_cassettes.py --record-mode=rewrite` (against a local emulator, or
against a real workspace with CIO_FLOWS_RECORD_LIVE=1; see tests/README.md).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from conftest import SECRETS

from cio_flows import RunOptions, run_flow
from cio_flows.api import options_for_emulator
from cio_flows.emulator import DEMO_CREDENTIALS, Emulator
from cio_flows.run.events import StepFinished

HERE = Path(__file__).parent
CASSETTES = HERE / "cassettes"
FLOW = HERE / "flows" / "cassette_onboarding.yaml"
REPLAY_ROOT = "http://127.0.0.1:8710"  # never contacted on replay: VCR answers


def _scrub_response(response):
    response["headers"] = {
        k: v for k, v in response["headers"].items() if k.lower() not in ("set-cookie", "date")
    }
    return response


@pytest.fixture(scope="module")
def vcr_config():
    return {
        "filter_headers": ["authorization", "cookie", "user-agent"],
        "before_record_response": _scrub_response,
        # Host and port differ between a recording (emulator, real workspace) and a replay.
        "match_on": ["method", "path", "query", "body"],
        "decode_compressed_response": True,
    }


@pytest.fixture
def target(request) -> RunOptions:
    """Options for the run: the emulator while recording, a dead root URL on replay."""
    recording = request.config.getoption("--record-mode") not in (None, "none")
    if recording and os.environ.get("CIO_FLOWS_RECORD_LIVE"):
        yield RunOptions(run_id="cassette")
        return
    if recording:
        with Emulator() as emulator:
            yield options_for_emulator(emulator, RunOptions(environ={}, run_id="cassette"))
        return
    env = {name: value for name, value in SECRETS.items()}
    for var in ("CUSTOMERIO_TRACK_URL", "CUSTOMERIO_PIPELINES_URL", "CUSTOMERIO_APP_URL"):
        env[var] = REPLAY_ROOT
    yield RunOptions(environ=env, run_id="cassette")


def _run(options: RunOptions) -> list[StepFinished]:
    events: list[StepFinished] = []
    summary = run_flow(FLOW, options, [lambda e: isinstance(e, StepFinished) and events.append(e)])
    assert summary.ok, [e.error for e in events if e.error]
    return events


@pytest.mark.vcr
def test_onboarding_via_pipelines_replays(target):
    events = _run(target)
    assert [e.step.kind for e in events] == [
        "identify",
        "track",
        "send_email",
        "search",
        "get_person",
        "list_segments",
        "delete",
    ]
    assert events[2].detail.startswith("delivery ")


@pytest.mark.vcr
def test_onboarding_via_track_replays(target):
    from dataclasses import replace

    env = dict(target.environ or os.environ)
    env["CUSTOMERIO_PIPELINES_KEY"] = ""
    events = _run(replace(target, environ=env))
    assert all(e.status == "ok" for e in events)


def test_cassettes_exist_and_hold_no_keys():
    files = sorted(CASSETTES.rglob("*.yaml"))
    assert len(files) >= 2
    forbidden = [
        *SECRETS.values(),
        DEMO_CREDENTIALS.track_key,
        DEMO_CREDENTIALS.pipelines_key,
        DEMO_CREDENTIALS.app_key,
    ]
    forbidden += [
        os.environ[v]
        for v in ("CUSTOMERIO_TRACK_TOKEN", "CUSTOMERIO_PIPELINES_KEY", "CUSTOMERIO_APP_TOKEN")
        if os.environ.get(v)
    ]
    for path in files:
        text = path.read_text()
        assert not re.search(r"(?i)authorization|\bbasic [a-z0-9+/=]{8,}|\bbearer ", text), path
        for secret in forbidden:
            if secret != SECRETS["CUSTOMERIO_SITE_ID"]:
                assert secret not in text, f"{path} holds a key"
