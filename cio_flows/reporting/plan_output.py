"""`cio-flows plan` output: one line of JSON per request (jsonl), or text with a summary.

Written as the plan streams, without rich or a per-row table: a plan of a million rows must
cost little more than rendering them. Batch bodies are written as the run encodes them.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

import orjson

from ..printable import printable
from ..run.events import StepFinished
from ..run.plan import PlannedFailure, PlannedRequest
from ..run.prepare import PreparedRun
from ..wire.sessions import auth_description
from ..wire.types import Request

TERMINAL_LIMIT = 20  # requests a terminal shows before the summary, unless --all
_STATIC_SEGMENT = re.compile(r"[a-z_]+|v\d+")


def endpoint(path: str) -> str:
    """A path with its ids folded: /api/v1/customers/u1/events -> /api/v1/customers/{id}/events."""
    return "/".join(s if not s or _STATIC_SEGMENT.fullmatch(s) else "{id}" for s in path.split("/"))


@dataclass
class PlanSummary:
    """What the summary says: requests and bytes per endpoint, skipped steps, failing rows."""

    # (step, method, endpoint) -> requests
    requests: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    sizes: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # ... -> bytes
    pending: Counter[str] = field(default_factory=Counter)  # step -> requests rendered at run time
    skipped: int = 0
    failures: list[PlannedFailure] = field(default_factory=list)

    def add(self, item: Any) -> None:
        if isinstance(item, PlannedRequest):
            if item.request is None:
                self.pending[item.step.name] += 1
                return
            key = (item.step.name, item.request.method, endpoint(item.request.path))
            self.requests[key] += 1
            self.sizes[key] += item.size or 0
        elif isinstance(item, PlannedFailure):
            self.failures.append(item)
        elif isinstance(item, StepFinished):
            self.skipped += 1

    def lines(self, rows: int) -> list[str]:
        total = sum(self.requests.values()) + sum(self.pending.values())
        size = sum(self.sizes.values())
        lines = [f"plan: {total:,} request(s) over {rows:,} row(s), {size:,} bytes of bodies"]
        for (step, method, path), count in sorted(self.requests.items()):
            bytes_ = self.sizes[(step, method, path)]
            lines.append(f"  {step}: {count:,} x {method} {path}  ({bytes_:,} bytes)")
        for step, count in sorted(self.pending.items()):
            lines.append(f"  {step}: {count:,} rendered when the flow runs (reads a response)")
        lines.append(f"  skipped: {self.skipped:,} step(s) of rows (`when` false, or row failed)")
        if self.failures:
            first = self.failures[0]
            lines.append(f"  failing rows: {len(self.failures):,}; first: {first.failure.message}")
        return lines


class PlanOutput:
    """Writes planned requests as they come; `finish` writes the summary (text only)."""

    def __init__(
        self,
        run: PreparedRun,
        out: TextIO,
        redact: Callable[[str], str],
        fmt: str = "text",
        limit: int | None = None,
    ) -> None:
        self.run = run
        self.out = out
        self.redact = redact
        self.fmt = fmt
        self.limit = limit
        self.summary = PlanSummary()
        self.shown = 0
        self._roots: dict[str, str] = {}  # family -> endpoint root, looked up once

    def write(self, item: Any) -> None:
        self.summary.add(item)
        if isinstance(item, StepFinished):
            return  # a skipped step sends nothing: counted, not listed
        if self.limit is not None and self.shown >= self.limit:
            return
        self.shown += 1
        if self.fmt == "text":  # data in the lines: its control characters escaped
            self.out.write(printable(self.redact(self._text(item)), lines=True) + "\n")
        else:
            self.out.write(self.redact(self._json(item)) + "\n")

    def sources(self) -> None:
        """The pages an HTTP source (for_each.http) was read from: reads the run makes too,
        before its first send. Listed first; headers (keys) are never shown."""
        for page in self.run.source_pages:
            if self.fmt == "text":
                text = f"for_each.http: {page.method} {page.url}  ({page.status})\n"
            else:
                record = {"source": "for_each.http", "method": page.method, "url": page.url}
                text = json.dumps({**record, "status": page.status}, ensure_ascii=False)
            self.out.write(self.redact(text) + "\n")

    def finish(self, rows: int) -> None:
        if self.fmt != "text":
            return
        listed = sum(self.summary.requests.values()) + sum(self.summary.pending.values())
        hidden = listed + len(self.summary.failures) - self.shown
        if hidden > 0:
            self.out.write(f"... {hidden:,} more (--all lists every request)\n")
        self.out.write("\n".join(self.summary.lines(rows)) + "\n")

    def _url(self, request: Request) -> str:
        root = self._roots.get(request.family)
        if root is None:
            root = self._roots[request.family] = self.run.endpoints.root(request.family)
        return request.url(root)

    def _json(self, item: PlannedRequest | PlannedFailure) -> str:
        step = item.step
        record: dict[str, Any] = {
            "step": step.name if step else None,
            "kind": step.kind if step else None,
        }
        if isinstance(item, PlannedFailure):
            record.update(row=item.row, error=item.failure.message)
            return orjson.dumps(record).decode()
        if item.request is None:
            record.update(row=item.first_row, depends_on=list(item.depends_on))
            return orjson.dumps(record).decode()
        request = item.request
        if item.batched:
            record.update(rows=[item.first_row, item.last_row], items=item.items)
        else:
            record["row"] = item.first_row
        record.update(
            bytes=item.size,
            method=request.method,
            url=self._url(request),
            auth=auth_description(request.family),
        )
        head = orjson.dumps(record)
        if item.body is None:
            return head.decode()
        return (head[:-1] + b',"body":' + item.body + b"}").decode()

    def _text(self, item: PlannedRequest | PlannedFailure) -> str:
        if isinstance(item, PlannedFailure):
            where = f"row {item.row}: " if item.row is not None else ""
            return f"{where}error: {item.failure.message}\n"
        step = item.step
        if item.first_row is None:
            rows = ""
        elif item.first_row == item.last_row:
            rows = f"row {item.first_row}: "
        else:
            rows = f"rows {item.first_row}-{item.last_row}: "
        header = f"{rows}{step.name} ({step.kind})  {step.location}"
        if item.request is None:
            uses = ", ".join(item.depends_on)
            return f"{header}\n  rendered when the flow runs: uses {uses}\n"
        request = item.request
        lines = [header, f"  {request.method} {self._url(request)}"]
        if item.batched:
            lines[-1] += f"  ({item.items:,} items, {item.size:,} bytes)"
            lines.append(f"  auth: {auth_description(request.family)}")
            first = (request.body.get("batch") or [None])[0]
            lines.append("  first item: " + json.dumps(first, ensure_ascii=False, sort_keys=True))
        else:
            lines.append(f"  auth: {auth_description(request.family)}")
            if request.body is not None:
                lines.append("  " + json.dumps(request.body, ensure_ascii=False, sort_keys=True))
        return "\n".join(lines) + "\n"
