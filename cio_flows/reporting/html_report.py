"""`--report-html FILE`: one self-contained page (no script, no network) for a run: summary,
per-step counts and wall times, and every failed row with its key, the request (method, URL,
body) and the answer (status, body). Every text is redacted: no key reaches the page.

The request of a failure is the last exchange its thread sent before the failure was reported
(a row's steps run on one thread; a batched step's failures show the batch call).
"""

from __future__ import annotations

import html
import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..redact import Redactor
from ..run.events import (
    FAILED,
    UNKNOWN,
    Event,
    RowFailed,
    RunError,
    RunFinished,
    RunStarted,
    StepFinished,
)
from ..wire.exchange import Exchange
from .json_report import RunCollector

MAX_FAILURES = 1000  # failures kept with their exchange; the rest are counted
BODY_LIMIT = 20_000  # characters of a body shown


class HtmlReport:
    """Listener (the run's events) and transport hook (`exchange`, its HTTP attempts)."""

    def __init__(self, path: str | Path, *, redactor: Redactor | None = None) -> None:
        self.path = Path(path)
        self._redact = redactor or Redactor()
        self.collector = RunCollector(max_failures=0, redactor=self._redact)
        self._local = threading.local()
        self._lock = threading.Lock()
        self.failures: list[dict[str, Any]] = []
        self.omitted = 0
        self._started: RunStarted | None = None

    def exchange(self, exchange: Exchange) -> None:
        self._local.last = exchange

    def __call__(self, event: Event) -> None:
        self.collector.add(event)
        if isinstance(event, RunStarted):
            self._started = event
        elif isinstance(event, StepFinished):
            self._step(event)
        elif isinstance(event, RowFailed | RunError):  # a row that could not start, a broken run
            row = event.row_number if isinstance(event, RowFailed) else None
            step = "(row)" if isinstance(event, RowFailed) else "(run)"
            self._keep(row, None, step, "-", str(FAILED), event.error, None)
        elif isinstance(event, RunFinished):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(self.page(event), encoding="utf-8")

    def _step(self, event: StepFinished) -> None:
        last: Exchange | None = getattr(self._local, "last", None)
        if event.status not in (FAILED, UNKNOWN):
            self._local.last = None  # the next step's failure shows its own request
            return
        step = event.step
        status, error = str(event.status), event.error or ""
        self._keep(event.row_number, event.row_key, step.name, step.kind, status, error, last)

    def _keep(
        self,
        row: int | None,
        key: str | None,
        step: str,
        kind: str,
        status: str,
        error: str,
        exchange: Exchange | None,
    ) -> None:
        with self._lock:
            if len(self.failures) >= MAX_FAILURES:
                self.omitted += 1
                return
            self.failures.append(
                {
                    "row": row,
                    "key": key,
                    "step": step,
                    "kind": kind,
                    "status": status,
                    "error": error,
                    "exchange": exchange,
                }
            )

    # --- the page ---------------------------------------------------------------------------

    def _text(self, value: Any) -> str:
        return html.escape(self._redact(str(value)))

    def _body(self, body: str | None) -> str:
        if body is None:
            return "<i>(no body)</i>"
        try:
            shown = json.dumps(json.loads(body), indent=2, ensure_ascii=False)
        except ValueError:
            shown = body
        shown = self._redact(shown)  # before cutting: a key cut in half could not be found
        if len(shown) > BODY_LIMIT:
            shown = f"{shown[:BODY_LIMIT]}... ({len(shown) - BODY_LIMIT} more characters)"
        return f"<pre>{html.escape(shown)}</pre>"

    def page(self, finished: RunFinished) -> str:
        s = finished.summary
        started = self._started
        title = f"cio-flows run {s.run_id}: {s.flow_name}"
        counts = ", ".join(f"{n:,} {status}" for status, n in s.counts.items() if n)
        parts = [
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{self._text(title)}</title>",
            f"<style>{_STYLE}</style></head><body>",
            f"<h1>{self._text(title)}</h1>",
            '<table class="summary">',
            self._row("result", "passed" if s.ok else "failed"),
            self._row("flow", f"{s.flow_name} ({started.flow_path if started else ''})"),
            self._row("region", started.region if started else ""),
            self._row("rows", f"{s.rows:,}"),
            self._row("steps", counts or "nothing ran"),
            self._row("duration", f"{s.elapsed:.2f} s"),
            self._row("requests", f"{s.requests:,} ({s.retries:,} retried)"),
            self._row("written", datetime.now(UTC).isoformat(timespec="seconds")),
            "</table>",
            "<h2>Steps</h2>",
            "<table><tr><th>step</th><th>kind</th><th>ok</th><th>failed</th><th>unknown</th>"
            "<th>skipped</th><th>wall time</th><th>average</th></tr>",
        ]
        for stats in self.collector.steps.values():
            data = stats.as_dict(s.elapsed)
            cells = [
                data["name"],
                data["kind"],
                *(f"{data[k]:,}" for k in ("ok", "failed", "unknown", "skipped")),
                f"{data['elapsed_ms'] / 1000:.2f} s",
                f"{data['avg_ms']:.0f} ms",
            ]
            parts.append("<tr>" + "".join(f"<td>{self._text(c)}</td>" for c in cells) + "</tr>")
        parts.append("</table>")
        total = len(self.failures) + self.omitted
        parts.append(f"<h2>Failures ({total:,})</h2>")
        for failure in self.failures:
            parts.append(self._failure(failure))
        if self.omitted:
            parts.append(f"<p>and {self.omitted:,} more (not kept)</p>")
        parts.append("</body></html>")
        return "\n".join(parts) + "\n"

    def _row(self, name: str, value: str) -> str:
        return f"<tr><th>{self._text(name)}</th><td>{self._text(value)}</td></tr>"

    def _failure(self, failure: dict[str, Any]) -> str:
        where = "the run" if failure["row"] is None else f"row {failure['row']}"
        key = f" [{failure['key']}]" if failure["key"] else ""
        head = f"{where}{key}: {failure['step']} ({failure['kind']}) {failure['status']}"
        lines = [
            '<div class="failure">',
            f"<h3>{self._text(head)}</h3>",
            f'<p class="error">{self._text(failure["error"])}</p>',
        ]
        exchange: Exchange | None = failure["exchange"]
        if exchange is None:
            lines.append("<p><i>nothing was sent for this step</i></p>")
        else:
            answer = (
                f"no answer: {exchange.error}"
                if exchange.status is None
                else f"status {exchange.status}"
            )
            lines += [
                f"<h4>request: {self._text(exchange.method)} {self._text(exchange.url)}</h4>",
                self._body(exchange.request_body),
                f"<h4>answer: {self._text(answer)}</h4>",
                self._body(exchange.response_body),
            ]
        lines.append("</div>")
        return "\n".join(lines)


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; }
.summary th { background: #f4f4f4; }
.failure { border-left: 4px solid #c33; padding-left: 1em; margin-bottom: 1.5em; }
.error { color: #a00; }
pre { background: #f7f7f7; padding: 0.6em; overflow-x: auto; max-height: 30em; }
"""
