"""One flow run per webhook delivery, exactly once per delivery id.

Each delivery gets a run id derived from the flow and the delivery id, so the journal knows it:
a redelivery of a delivery whose run passed answers at once and sends nothing; one whose run
failed is resumed (only what did not succeed runs again, under the same messageIds). The body is
the run's one row, kept beside the journal only until its run passes.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .. import api
from ..errors import FlowInputError, JournalError
from ..run.events import DATA, EXIT_FAILED, EXIT_INVALID, INPUT, PAYLOAD, TEMPLATE, Event
from ..run.journal import Journal
from ..run.prepare import RunOptions
from ..run.session import journal_path

# Headers a flow may read as request.headers (never credentials or cookies).
HIDDEN_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
# Failures of the delivery's own data (a field missing, a payload the schema refuses): a retry
# of the same body fails the same way, so the answer is 422, not a 5xx the sender retries.
INPUT_FAILURES = frozenset({PAYLOAD, TEMPLATE, DATA, INPUT})


class _FailureKinds:
    """A run listener: the kinds of every failure the run reported."""

    def __init__(self) -> None:
        self.kinds: set[str] = set()

    def __call__(self, event: Event) -> None:
        failure = getattr(event, "failure", None)
        if failure is not None:
            self.kinds.add(failure.kind)


@dataclass(frozen=True)
class Outcome:
    status: int  # the HTTP answer: 200 done, 4xx invalid input, 5xx for the sender to retry
    body: dict[str, Any]
    line: str  # what the server logs for it (no secret, no personal data)


class DeliveryRunner:
    def __init__(self, flow: Path, options: RunOptions) -> None:
        path = journal_path(options.journal)
        if path is None:
            raise FlowInputError(
                "serve needs a journal: it is how a redelivered webhook is known",
                expected="a journal (the default, or CIO_FLOWS_JOURNAL)",
                found="no journal",
            )
        self.flow = flow
        self.options = replace(options, journal=path)
        self.journal = path
        self.bodies = path.parent / "webhook-rows"
        self.redact = api.redactor(self.options)
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def run_id(self, delivery_id: str) -> str:
        digest = hashlib.sha256(f"{self.flow.resolve()}\0{delivery_id}".encode()).hexdigest()
        return "wh" + digest[:24]

    def handle(self, row: dict[str, Any], headers: dict[str, str], delivery_id: str) -> Outcome:
        run_id = self.run_id(delivery_id)
        with self._lock(run_id):  # the same delivery twice at once: one after the other
            return self._handle(run_id, row, headers, delivery_id)

    def _handle(
        self, run_id: str, row: dict[str, Any], headers: dict[str, str], delivery_id: str
    ) -> Outcome:
        shown = f"delivery {delivery_id[:64]!r}"
        with Journal(self.journal) as journal:
            earlier = journal.run(run_id)
        if earlier is not None and earlier.status == "passed":
            body: dict[str, Any] = {"status": "duplicate", "run_id": run_id}
            return Outcome(200, body, f"{shown}: 200 already done (run {run_id}), nothing sent")
        self.bodies.mkdir(parents=True, exist_ok=True)
        row_file = self.bodies / f"{run_id}.jsonl"
        row_file.write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
        visible = {k: v for k, v in headers.items() if k.lower() not in HIDDEN_HEADERS}
        options = replace(
            self.options,
            data=row_file,
            run_id=None if earlier else run_id,
            resume=run_id if earlier else None,
            context={**self.options.context, "request": {"headers": visible}},
        )
        failures = _FailureKinds()
        try:
            summary = api.run_flow(self.flow, options, listeners=[failures])
        except FlowInputError as exc:
            row_file.unlink(missing_ok=True)
            reason = self.redact(exc.describe())
            return Outcome(422, {"status": "invalid", "error": reason}, f"{shown}: 422 {reason}")
        except JournalError as exc:  # another process holds this run: the sender retries
            return Outcome(503, {"status": "busy"}, self.redact(f"{shown}: 503 {exc}"))
        counts = ", ".join(f"{n} {s}" for s, n in summary.counts.items() if n) or "nothing ran"
        if summary.exit_code == 0:
            row_file.unlink(missing_ok=True)
            body = {"status": "ok", "run_id": summary.run_id, "counts": summary.counts}
            return Outcome(200, body, f"{shown}: 200 {counts} (run {summary.run_id})")
        invalid_row = failures.kinds and failures.kinds <= INPUT_FAILURES
        if summary.exit_code == EXIT_INVALID or (summary.exit_code == EXIT_FAILED and invalid_row):
            body = {"status": "invalid", "run_id": summary.run_id, "counts": summary.counts}
            return Outcome(422, body, f"{shown}: 422 {counts} (run {summary.run_id})")
        body = {"status": "failed", "run_id": summary.run_id, "counts": summary.counts}
        return Outcome(
            500, body, f"{shown}: 500 {counts}, the sender retries (run {summary.run_id})"
        )

    def _lock(self, run_id: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(run_id, threading.Lock())
