"""Exactly-once welcome emails through crashes and reruns (issue 19), with real processes.

    .venv/bin/python benchmarks/exactly_once.py [--trials 5] [--rows 240] [--latency 0.05]
                                                [--seed 19] [--skip-once] [--no-batch]

Kill trials: per trial a fresh `cio-flows emulator --latency app=LATENCY` process, a flow of
ROWS rows of identify + welcome email, `cio-flows run FLOW` killed with SIGKILL at a random
moment between 1 and 3 s after it started, then a plain `cio-flows run FLOW --resume RUN_ID`.
Counts each person's welcome emails in the emulator: the target is 0 duplicates and 0 missing in
every trial. Prints how many sends had gone out at the kill and how the resume settled the
unknown ones (found in Customer.io / absent and sent again / left unknown).

`once` runs (unless --skip-once): the welcome step with `once: "welcome:{{ row.user_id }}"`
run twice with one journal (target: ROWS emails, then 0), then with one new row (target: 1).

--no-batch runs the killed run row by row, so a send per worker (8) is in flight at the kill,
not one (batched, the sends of a chunk go one after another).

Exit 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "cio_flows.cli"]
KEYS = {
    "CUSTOMERIO_SITE_ID": "emulator-site",
    "CUSTOMERIO_TRACK_TOKEN": "emulator-track-key",
    "CUSTOMERIO_PIPELINES_KEY": "emulator-pipelines-key",
    "CUSTOMERIO_APP_TOKEN": "emulator-app-key",
}
FLOW = """\
version: 1
name: welcome
for_each: {{file: people.csv, key: "{{{{ row.user_id }}}}"}}
steps:
  - name: identify
    identify:
      userId: "{{{{ row.user_id }}}}"
      traits: {{email: "{{{{ row.email }}}}"}}
  - name: welcome
{once}    send_email:
      transactional_message_id: welcome
      to: "{{{{ row.email }}}}"
      identifiers: {{id: "{{{{ row.user_id }}}}"}}
"""


def write_flow(folder: Path, rows: int, *, once: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_people(folder, rows)
    line = '    once: "welcome:{{ row.user_id }}"\n' if once else ""
    path = folder / "welcome.yaml"
    path.write_text(FLOW.format(once=line))
    return path


def write_people(folder: Path, rows: int) -> None:
    lines = ["user_id,email"] + [f"u{i:04d},u{i:04d}@example.com" for i in range(rows)]
    (folder / "people.csv").write_text("\n".join(lines) + "\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmulatorProcess:
    """`cio-flows emulator` in its own process, on a free port."""

    def __init__(self, latency: float) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = ["emulator", "--port", str(self.port), "--latency", f"app={latency}"]
        self.process = subprocess.Popen(
            [*CLI, *args], env=environ(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 60
        while not self._healthy():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the emulator did not start: {self.process.stderr.read()!r}")
            time.sleep(0.1)

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/_emulator/health", timeout=2) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def welcome_emails(self) -> Counter[str]:
        """Recipient -> welcome emails the emulator accepted."""
        with urllib.request.urlopen(f"{self.url}/_emulator/deliveries", timeout=30) as answer:
            deliveries = json.loads(answer.read())
        return Counter(
            str(d["recipient"])
            for d in deliveries
            if d.get("channel") == "email" and d.get("template") == "welcome"
        )

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def environ(url: str | None = None, journal: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTOMERIO_")}
    env.update(KEYS)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if url is not None:
        for family in ("PIPELINES", "TRACK", "APP"):
            env[f"CUSTOMERIO_{family}_URL"] = url
    if journal is not None:
        env["CIO_FLOWS_JOURNAL"] = str(journal)
    return env


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "run", *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def settled_line(output: str) -> str:
    match = re.search(r"^unknown sends settled: .*$", output, re.M)
    return match[0] if match else "unknown sends settled: none"


def kill_trial(trial: int, args: argparse.Namespace, chooser: random.Random) -> dict[str, Any]:
    emulator = EmulatorProcess(args.latency)
    try:
        with tempfile.TemporaryDirectory() as folder:
            flow = write_flow(Path(folder), args.rows)
            env = environ(emulator.url, Path(folder) / "journal.db")
            started = time.monotonic()
            first = subprocess.Popen(
                [*CLI, "run", str(flow), *(["--no-batch"] if args.no_batch else [])],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            line = first.stdout.readline() if first.stdout else ""
            if not line.startswith("run id: "):
                raise RuntimeError(f"no run id: {line!r}")
            run_id = line.strip().removeprefix("run id: ")
            kill_at = chooser.uniform(1.0, 3.0)
            time.sleep(max(0.0, kill_at - (time.monotonic() - started)))
            finished_first = first.poll() is not None
            first.send_signal(signal.SIGKILL)
            first.communicate(timeout=30)
            sent_at_kill = sum(emulator.welcome_emails().values())
            resumed = run(env, str(flow), "--resume", run_id)
            emails = emulator.welcome_emails()
    finally:
        emulator.stop()
    expected = {f"u{i:04d}@example.com" for i in range(args.rows)}
    return {
        "trial": trial,
        "kill_at": kill_at,
        "finished_before_kill": finished_first,
        "sent_at_kill": sent_at_kill,
        "resume_exit": resumed.returncode,
        "settled": settled_line(resumed.stdout),
        "duplicates": sum(n - 1 for n in emails.values() if n > 1),
        "missing": len(expected - set(emails)),
        "total": sum(emails.values()),
        "output": "" if resumed.returncode == 0 else resumed.stdout[-2000:] + resumed.stderr,
    }


def once_runs(args: argparse.Namespace) -> list[int]:
    """Welcome emails sent by each of three runs sharing one journal (the third: one new row)."""
    emulator = EmulatorProcess(args.latency)
    sent = []
    try:
        with tempfile.TemporaryDirectory() as folder:
            flow = write_flow(Path(folder), args.rows, once=True)
            env = environ(emulator.url, Path(folder) / "journal.db")
            before = 0
            for attempt in range(3):
                if attempt == 2:
                    write_people(Path(folder), args.rows + 1)
                done = run(env, str(flow))
                if done.returncode != 0:
                    raise RuntimeError(f"once run {attempt + 1}: {done.stdout}{done.stderr}")
                total = sum(emulator.welcome_emails().values())
                sent.append(total - before)
                before = total
    finally:
        emulator.stop()
    return sent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--rows", type=int, default=240)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--skip-once", action="store_true")
    parser.add_argument("--no-batch", action="store_true")
    args = parser.parse_args()
    chooser = random.Random(args.seed)
    ok = True
    print(f"kill trials: {args.rows} rows, App latency {args.latency:g} s, SIGKILL at 1-3 s")
    for trial in range(1, args.trials + 1):
        r = kill_trial(trial, args, chooser)
        passed = r["duplicates"] == 0 and r["missing"] == 0 and r["resume_exit"] == 0
        ok &= passed
        print(
            f"trial {trial}: killed at {r['kill_at']:.2f} s"
            f"{' (after it finished)' if r['finished_before_kill'] else ''},"
            f" {r['sent_at_kill']} sent by then; resume exit {r['resume_exit']};"
            f" {r['settled']}; {r['total']} welcome emails,"
            f" {r['duplicates']} duplicates, {r['missing']} missing"
            f" -> {'PASS' if passed else 'FAIL'}"
        )
        if r["output"]:
            print(r["output"])
    if not args.skip_once:
        first, second, third = once_runs(args)
        passed = (first, second, third) == (args.rows, 0, 1)
        ok &= passed
        print(
            f"once: first run sent {first}, second {second}, third (one new row) {third}"
            f" -> {'PASS' if passed else 'FAIL'}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
