"""A row whose template makes an integer past 64 bits (`1e300 | int`): the run sends it (JSON
has no size limit) instead of ending in orjson's "Integer exceeds 64-bit range" traceback while
hashing the run's requests (found by an outside probe, through `cio-flows serve`)."""

from __future__ import annotations

from pathlib import Path

from cio_flows import RunOptions, run_flow

FLOW = """\
version: 1
name: big_numbers
for_each: {file: rows.jsonl, key: "{{ row.id }}"}
steps:
  - identify: {userId: "{{ row.id }}", traits: {n: "{{ row.n | int }}"}}
"""


def test_an_integer_past_64_bits_is_sent_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "rows.jsonl").write_text('{"id": "a", "n": 1e300}\n{"id": "b", "n": 1}\n')
    flow = tmp_path / "flow.yaml"
    flow.write_text(FLOW)
    journal = tmp_path / "journal.db"
    summary = run_flow(flow, RunOptions(emulator=True, journal=journal))
    assert summary.exit_code == 0
    assert summary.counts["ok"] == 2
    again = run_flow(flow, RunOptions(emulator=True, journal=journal, changed=True))
    assert again.exit_code == 0  # the hashes compare: nothing changed, nothing sent
    assert again.counts["ok"] == 0
