"""The batched path sends exactly what it sent before it was made faster: same bytes, same paths,
same ids, same journal.

tests/golden/batched_run.json was recorded from the code before the batched path's fast paths
(issue 13). Regenerate it only on purpose: CIO_FLOWS_WRITE_GOLDEN=1 pytest this file.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from cio_flows import RunOptions, run_flow

GOLDEN = Path(__file__).parent / "golden" / "batched_run.json"
RUN_ID = "20260101000000abcdef"

FLOW = """\
version: 1
name: golden
vars:
  source: "import {{ run.id }}"
for_each: {file: people.csv, key: "{{ row.id }}"}
steps:
  - name: identify
    identify:
      userId: "{{ row.id }}"
      traits:
        email: "{{ row.email }}"
        name: "Dr. {{ row.name }}"
        plan: "{{ row.plan }}"
        seats: "{{ row.seats | int }}"
        score: "{{ row.score | float }}"
        vip: "{{ row.plan == 'pro' }}"
        tags: ["csv", "{{ row.country }}"]
        source: "{{ source }}"
        fixed: {nested: [1, 2.5, true, null, "é ☃"]}
  - name: track
    when: row.plan != 'skip'
    track:
      userId: "{{ row.id }}"
      event: purchase
      properties:
        amount: "{{ row.score | float }}"
        label: "{{ row.name }} ({{ row.country }})"
        items: "{{ [row.plan, row.country] }}"
  - name: page
    page:
      userId: "{{ row.id }}"
      name: pricing
"""

COUNTRIES = ["US", "DE", "FR", "JP", "BR"]
PLANS = ["free", "pro", "skip", "team"]
NAMES = ["Ada", "Zoë", "Łukasz", 'Quote "Q"', "Tab\tName", "Émile ☃"]


def write_data(directory: Path, rows: int = 1203) -> None:
    lines = ["id,email,name,plan,seats,score,country"]
    for i in range(rows):
        name = NAMES[i % len(NAMES)].replace('"', '""')
        lines.append(
            f'u{i},u{i}@example.com,"{name}",{PLANS[i % 4]},{i % 7},{i * 1.25 % 97},'
            f"{COUNTRIES[i % 5]}"
        )
    # A row whose payload fails validation (empty userId is refused by the schema) and a row
    # too big for a batch item: the batched path reports them and sends the rest.
    lines.append(",bad@example.com,Bad,free,1,1.0,US")
    lines.append(f"big,big@example.com,{'x' * 40000},free,1,1.0,US")
    (directory / "people.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


class _Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    requests: ClassVar[list[dict]] = []
    lock = threading.Lock()

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.lock:
            self.requests.append({"method": "POST", "path": self.path, "body": raw.decode()})
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_PUT = do_POST


def record_run(tmp_path: Path, family: str, processes: int = 1) -> dict:
    flow = tmp_path / "flow.yaml"
    flow.write_text(FLOW, encoding="utf-8")
    write_data(tmp_path)
    handler = type("Recorder", (_Recorder,), {"requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    environ = {"CUSTOMERIO_PIPELINES_URL": url, "CUSTOMERIO_TRACK_URL": url}
    if family == "pipelines":
        environ["CUSTOMERIO_PIPELINES_KEY"] = "golden-key"
    else:
        environ.update(CUSTOMERIO_SITE_ID="site", CUSTOMERIO_TRACK_TOKEN="token")
    journal = tmp_path / f"journal-{family}.db"
    options = RunOptions(
        run_id=RUN_ID,
        workers=processes,  # a worker process per chunk thread (never more processes than workers)
        batch=True,
        processes=processes,
        environ=environ,
        journal=journal,
    )
    try:
        summary = run_flow(flow, options)
    finally:
        server.shutdown()
        server.server_close()
    with sqlite3.connect(journal) as db:
        outcomes = db.execute(
            "SELECT row_key, step_key, status, attempts, error, result FROM outcomes"
            " WHERE run_id = ? ORDER BY row_key, step_key",
            (RUN_ID,),
        ).fetchall()
    return {
        "exit_code": summary.exit_code,
        "processes": summary.processes,
        "requests": handler.requests,
        "journal": [list(o) for o in outcomes],
    }


def recorded(tmp_path: Path, processes: int = 1) -> dict:
    return {family: record_run(tmp_path, family, processes) for family in ("pipelines", "track")}


def digest(result: dict) -> dict:
    """What the golden file keeps: each request's method, path, size and SHA-256 (the bodies
    are ~1 MB), one body in full per path to read, and the journal's rows by status and hash."""
    out = {}
    for family, run in result.items():
        bodies = [r["body"].encode() for r in run["requests"]]
        journal = json.dumps(run["journal"], ensure_ascii=False).encode()
        out[family] = {
            "exit_code": run["exit_code"],
            "requests": [
                [r["method"], r["path"], len(body), hashlib.sha256(body).hexdigest()]
                for r, body in zip(run["requests"], bodies, strict=True)
            ],
            "first_items": [json.loads(r["body"])["batch"][:2] for r in run["requests"][:3]],
            "journal_statuses": dict(Counter(row[2] for row in run["journal"])),
            "journal_failures": [row for row in run["journal"] if row[2] == "failed"],
            "journal_sha256": hashlib.sha256(journal).hexdigest(),
        }
    return out


def test_batched_runs_send_the_golden_requests_and_journal(tmp_path):
    # Tuples as lists, as in the file; the journal's messages name the flow by its (temporary) path.
    result = digest(json.loads(json.dumps(recorded(tmp_path)).replace(str(tmp_path), "TMP")))
    if os.environ.get("CIO_FLOWS_WRITE_GOLDEN"):
        GOLDEN.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", "utf-8")
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    for family in ("pipelines", "track"):
        got, want = result[family], golden[family]
        assert got["first_items"] == want["first_items"]
        assert got["journal_failures"] == want["journal_failures"]
        assert got == want, f"{family}: the requests or the journal differ from the golden run"


def test_a_run_in_worker_processes_sends_the_golden_requests_and_journal(tmp_path):
    """Two forked workers (run/processes.py) take alternate chunks: the same batches, ids and
    journal rows as one process, only in another order."""
    result = json.loads(json.dumps(recorded(tmp_path, processes=2)).replace(str(tmp_path), "TMP"))
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert {run["processes"] for run in result.values()} == {2}
    for family in ("pipelines", "track"):
        got, want = digest(result)[family], golden[family]
        assert sorted(got.pop("requests")) == sorted(want.pop("requests"))
        assert got.pop("first_items") != []
        want.pop("first_items")
        assert got == want, f"{family}: the journal differs from the golden run"


@pytest.mark.parametrize("family", ["pipelines"])
def test_the_golden_run_covers_batches_failures_and_skips(family):
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))[family]
    assert {r[1] for r in golden["requests"]} == {"/v1/batch"}
    assert len(golden["requests"]) == 6  # 2 chunks of 1,000 rows x 3 steps
    assert {"ok", "failed", "skipped"} <= set(golden["journal_statuses"])
