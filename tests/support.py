"""Helpers several test modules share: a real `cio-flows` process, and what reached the emulator."""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from pathlib import Path


def cli(*args: str) -> list[str]:
    """The command line of a real `cio-flows` process (for tests that signal or kill it)."""
    return [sys.executable, "-m", "cio_flows.cli", *args]


def started(
    command: list[str], env: dict[str, str], *, own_group: bool = False
) -> subprocess.Popen[str]:
    """A real `cio-flows` process with its output captured as text; `own_group`: in a process
    group of its own, as a terminal's foreground job or a service is."""
    return subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=own_group,
    )


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


# `cio-flows` in a process that writes its own peak memory (VmHWM, in kB) to the file named by
# $CIO_TEST_PEAK_FILE as it exits. A child's ru_maxrss (wait4) would carry the size of the
# pytest process it was forked from, hundreds of MB late in a run.
_PEAK_CLI = (
    "import atexit, os, re, runpy, sys\n"
    "def peak():\n"
    "    status = open('/proc/self/status').read()\n"
    "    kb = re.search(r'VmHWM:\\s+(\\d+)', status).group(1)\n"
    "    open(os.environ['CIO_TEST_PEAK_FILE'], 'w').write(kb)\n"
    "atexit.register(peak)\n"
    "sys.argv[0] = 'cio-flows'\n"
    "runpy.run_module('cio_flows.cli', run_name='__main__')\n"
)


def cli_measured(*args: str) -> list[str]:
    """The command line of a `cio-flows` process that reports its peak memory (peak_mb)."""
    return [sys.executable, "-c", _PEAK_CLI, *args]


def peak_mb(peak_file: Path) -> float:
    """What a cli_measured process wrote to its $CIO_TEST_PEAK_FILE."""
    return int(peak_file.read_text()) / 1024


# A test runner started in the background has SIGINT ignored, and children inherit that (Python
# then installs no KeyboardInterrupt handler); a terminal's Ctrl-C reaches a process whose SIGINT
# is at Python's default, as this command line's is.
_CTRL_C_CLI = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv[0] = 'cio-flows'; from cio_flows.cli import main; main()"
)


def cli_ctrl_c(*args: str) -> list[str]:
    """The command line of a `cio-flows` process that Ctrl-C (SIGINT) stops as on a terminal."""
    return [sys.executable, "-c", _CTRL_C_CLI, *args]
