"""`cio-flows runs show RUN_ID`: one run from the journal, as lines."""

from __future__ import annotations

import json

from ..run.journal_admin import RunDetail

_ORDER = ("ok", "failed", "unknown", "skipped")


def detail_lines(detail: RunDetail) -> list[str]:
    record, inputs = detail.record, detail.inputs
    started = record.started_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    duration = detail.duration
    took = "still running or stopped" if duration is None else f"{duration:.2f} s"
    lines = [
        f"run {record.run_id}: {record.status}",
        f"flow: {record.flow_name} ({record.flow_path})",
        f"started: {started}, took {took}, {record.rows:,} row(s)",
    ]
    if inputs is not None:
        lines.append(f"flow hash: {inputs.flow_hash[:16]}")
        if inputs.data_path is not None:
            data_hash = (inputs.data_hash or "not fingerprinted")[:16]
            lines.append(f"data: {inputs.data_path} (sha256 {data_hash})")
    if record.options:
        lines.append("options: " + json.dumps(record.options, sort_keys=True))
    lines.append("steps:")
    for step in detail.steps:
        known = [f"{step.counts[s]:,} {s}" for s in _ORDER if step.counts.get(s)]
        other = [f"{n:,} {s}" for s, n in sorted(step.counts.items()) if s not in _ORDER]
        lines.append(f"  {step.name} ({step.step_key}): {', '.join(known + other)}")
    if not detail.steps:
        lines.append("  (no step recorded)")
    if detail.failures_total:
        lines.append(f"failures: {detail.failures_total:,}")
        for row, step_name, status, error in detail.failures:
            lines.append(f"  row {row}, {step_name}: {status}: {error}")
        if detail.failures_total > len(detail.failures):
            lines.append(f"  and {detail.failures_total - len(detail.failures):,} more")
    return lines
