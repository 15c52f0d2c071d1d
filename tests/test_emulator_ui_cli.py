"""`cio-flows run --emulator-ui` keeps the emulator and its web page up after the run until
Ctrl-C; `cio-flows emulator` prints the page's address. Real processes, real Ctrl-C."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading

import pytest
import requests
from conftest import SECRETS
from support import cli_ctrl_c

pytestmark = pytest.mark.slow  # real processes stopped with Ctrl-C

WAIT = 120  # generous: a loaded machine starts Python slowly; nothing here times anything
WORKSPACE = """\
templates:
  - {id: 1, trigger: welcome, name: Welcome, channel: email,
     subject: "Welcome, {{ trigger.first_name }}!", body: "<p>Hi {{ trigger.first_name }}</p>"}
"""
FLOW = """\
version: 1
name: ui
steps:
  - send_email:
      transactional_message_id: welcome
      to: ada@example.com
      identifiers: {id: ada}
      message_data: {first_name: Ada}
"""


class Child:
    """A CLI process whose output lines arrive on a queue."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            cli_ctrl_c(*args),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def line_with(self, text: str) -> str:
        while True:
            try:
                line = self.lines.get(timeout=WAIT)
            except queue.Empty:
                raise AssertionError(f"{text!r} never printed; got {self.seen}") from None
            self.seen.append(line)
            if text in line:
                return line

    def ctrl_c(self) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=WAIT)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()


def test_run_with_emulator_ui_keeps_the_page_up_until_ctrl_c(tmp_path):
    (tmp_path / "workspace.yaml").write_text(WORKSPACE)
    (tmp_path / "flow.yaml").write_text(FLOW)
    env = {**os.environ, **SECRETS}  # keys of its own: the page must show none of them
    child = Child(
        "run",
        str(tmp_path / "flow.yaml"),
        "--emulator-ui",
        "--emulator-workspace",
        str(tmp_path / "workspace.yaml"),
        env=env,
    )
    try:
        line = child.line_with("emulator web page: ")
        url = line.split("emulator web page: ", 1)[1].split()[0]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/")
        page = requests.get(url, timeout=WAIT).text
        assert "Welcome, Ada!" in page
        requests_page = requests.get(url + "requests", timeout=WAIT).text
        assert "/v1/send/email" in requests_page
        for html in (page, requests_page):
            assert not [v for k, v in SECRETS.items() if k != "CUSTOMERIO_SITE_ID" and v in html]
        assert child.ctrl_c() == 0  # the run's own exit code: every step succeeded
        child.line_with("emulator stopped")
    finally:
        child.kill()
    assert not [line for line in child.seen if "Traceback" in line]


def test_the_emulator_command_prints_the_page_address(tmp_path):
    child = Child("emulator", "--port", "0", "--empty", env=dict(os.environ))
    try:
        line = child.line_with("Web page:")
        url = line.split("Web page:", 1)[1].split()[0]
        answer = requests.get(url, timeout=WAIT)
        assert answer.status_code == 200 and "Inbox" in answer.text
        child.ctrl_c()
    finally:
        child.kill()
