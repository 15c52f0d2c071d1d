"""Helpers several test modules share: a real `cio-flows` process, and what reached the emulator."""

from __future__ import annotations

import sys
from collections import defaultdict


def cli(*args: str) -> list[str]:
    """The command line of a real `cio-flows` process (for tests that signal or kill it)."""
    return [sys.executable, "-m", "cio_flows.cli", *args]


def message_ids(emulator) -> dict[tuple[str, str], set[str]]:
    """(userId, identify|track) -> every messageId the emulator received for it, batched or not."""
    seen: dict[tuple[str, str], set[str]] = defaultdict(set)
    for request in emulator.inspect.requests("pipelines"):
        body = request.get("body") or {}
        for item in body.get("batch", [body]):
            if isinstance(item, dict) and "messageId" in item:
                kind = "identify" if "traits" in item else "track"
                seen[(item["userId"], kind)].add(item["messageId"])
    return seen


# A team's own workspace (one template) and a flow that needs it: for --emulator-workspace.
TEAM_WORKSPACE = """\
version: 1
name: team
templates:
  - {id: 77, trigger: team_hello, name: Team hello, channel: email}
"""

TEAM_HELLO = """\
version: 1
name: team_hello
steps:
  - send_email:
      transactional_message_id: team_hello
      to: jane@example.com
      identifiers: {id: jane}
    expect: response.delivery_id
"""
