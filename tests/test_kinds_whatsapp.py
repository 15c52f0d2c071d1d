"""Issue 23 (8): the send_whatsapp kind, on the wire and against the emulator."""

from __future__ import annotations

import os
import subprocess

import pytest
from conftest import env_for
from support import cli

from cio_flows.api import options_for_emulator, run_flow
from cio_flows.emulator import Emulator
from cio_flows.run.events import StepFinished
from cio_flows.run.prepare import RunOptions

FLOW = """\
version: 1
name: whatsapp
vars:
  who: "wa_{{ run.id }}"
steps:
  - identify: {userId: "{{ who }}", traits: {phone: "+15551230000"}}
  - send_whatsapp:
      transactional_message_id: 7
      identifiers: {id: "{{ who }}"}
      to: "+15551230000"
      message_data: {order: "42"}
    save: sent
  - get_message: {id: "{{ steps.sent.delivery_id }}"}
    expect: response.type == "whatsapp"
"""


@pytest.mark.slow
def test_send_whatsapp_posts_the_sms_shaped_body(recording_server, write_flow):
    flow = write_flow(FLOW)
    env = {**os.environ, **env_for(recording_server.url)}
    done = subprocess.run(
        cli("run", str(flow), "--no-batch"), env=env, capture_output=True, text=True, timeout=300
    )
    sends = [r for r in recording_server.requests if r.path == "/v1/send/whatsapp"]
    assert len(sends) == 1, done.stdout + done.stderr
    (send,) = sends
    assert send.method == "POST"
    assert send.headers["Authorization"] == "Bearer app-secret-abcdef"
    assert send.body["transactional_message_id"] == 7
    assert send.body["to"] == "+15551230000"
    assert send.body["message_data"] == {"order": "42"}


@pytest.mark.slow
@pytest.mark.parametrize("payload", ["{identifiers: {id: u}}", "{transactional_message_id: 5}"])
def test_an_incomplete_send_whatsapp_is_refused(payload, write_flow):
    flow = write_flow(f"version: 1\nname: bad\nsteps:\n  - send_whatsapp: {payload}\n")
    done = subprocess.run(cli("validate", str(flow)), capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert "send_whatsapp" in done.stderr or "flow.yaml:4" in done.stderr


def test_the_emulator_records_the_whatsapp_message(write_flow):
    events: list[StepFinished] = []
    with Emulator() as emulator:
        summary = run_flow(
            write_flow(FLOW),
            options_for_emulator(emulator, RunOptions(environ={})),
            [lambda e: isinstance(e, StepFinished) and events.append(e)],
        )
        messages = emulator.inspect.messages()
    assert summary.ok, [e.error for e in events if e.error]
    assert [m["type"] for m in messages] == ["whatsapp"]
