"""Issue 23 (9): `--report-html FILE`: each failed row with its request and answer, no key."""

from __future__ import annotations

import base64
import os
import subprocess
from typing import Any

import pytest
from conftest import SECRETS, Recorded, default_answer, env_for
from support import cli

FLOW = """version: 1
name: html_report
for_each:
  file: rows.csv
  key: "{{ row.id }}"
steps:
  - name: upsert
    identify: {userId: "{{ row.id }}", traits: {plan: "{{ row.plan }}"}}
  - name: vip event
    track: {userId: "{{ row.id }}", event: vip, properties: {plan: "{{ row.plan }}"}}
"""
FAILING = {"u3", "u7"}


def echo_keys_and_refuse(request: Recorded) -> tuple[int, dict[str, str], Any]:
    """The VIP event of FAILING rows is refused with an answer echoing the request's headers
    (the Authorization value included), as some servers do."""
    body = request.body if isinstance(request.body, dict) else {}
    if body.get("event") == "vip" and body.get("userId") in FAILING:
        echoed = {"error": "plan not allowed", "headers": request.headers, "token": SECRETS}
        return 422, {}, echoed
    return default_answer(request)


@pytest.mark.slow  # a real cio-flows process
def test_the_html_report_shows_failed_requests_and_answers_without_keys(tmp_path, recording_server):
    recording_server.handler = echo_keys_and_refuse
    rows = ["id,plan"] + [f"u{n},plan{n}" for n in range(1, 11)]
    (tmp_path / "rows.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    flow = tmp_path / "flow.yaml"
    flow.write_text(FLOW, encoding="utf-8")
    page = tmp_path / "out" / "report.html"
    env = {**os.environ, **env_for(recording_server.url)}
    done = subprocess.run(
        cli("run", str(flow), "--no-batch", "--report-html", str(page)),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    text = page.read_text(encoding="utf-8")
    assert "<script" not in text and "http://" not in text.split("<h2>Failures")[0]
    assert "Failures (2)" in text
    for key in sorted(FAILING):
        n = key[1:]
        section = text.split(f"row {n} [{key}]: vip event (track) failed")[1].split("</div>")[0]
        assert "request: POST " in section and f"plan{n}" in section  # method, URL, body
        assert "answer: status 422" in section and "plan not allowed" in section
    assert "upsert (identify)" not in text.split("<h2>Failures")[1]  # only the failed steps
    for name, secret in SECRETS.items():
        if name != "CUSTOMERIO_SITE_ID":  # an identifier, not a key
            assert secret not in text
        assert base64.b64encode(f"{secret}:".encode()).decode() not in text
    basic = base64.b64encode(
        f"{SECRETS['CUSTOMERIO_SITE_ID']}:{SECRETS['CUSTOMERIO_TRACK_TOKEN']}".encode()
    ).decode()
    assert basic not in text


def test_rows_that_could_not_start_are_listed_too(tmp_path):
    from cio_flows.reporting.html_report import HtmlReport  # events only: no process needed
    from cio_flows.run.events import Failure, FailureKind, RowFailed, RunFinished, RunSummary

    page = tmp_path / "report.html"
    report = HtmlReport(page)
    report(RowFailed(4, Failure(FailureKind.DATA, "row 4: the key does not render")))
    summary = RunSummary("r1", "flow", rows=4)
    summary.counts["failed"] = 1
    report(RunFinished(summary))
    text = page.read_text(encoding="utf-8")
    assert "Failures (1)" in text and "row 4: (row)" in text
    assert "the key does not render" in text and "nothing was sent" in text
