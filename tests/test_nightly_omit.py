"""Issue 23 (7): `| omit_if_empty` leaves a field out when its value renders empty."""

from __future__ import annotations

from click.testing import CliRunner
from conftest import env_for

from cio_flows.cli import main

FLOW = """version: 1
name: omit
for_each:
  file: rows.csv
  key: "{{ row.id }}"
steps:
  - name: upsert
    identify:
      userId: "{{ row.id }}"
      traits:
        email: "{{ row.email }}"
        phone: "{{ row.phone | omit_if_empty }}"
        tags: ["vip", "{{ row.tag | omit_if_empty }}"]
        note: "{{ row.note }}"
"""


def test_empty_values_leave_their_field_out(tmp_path, recording_server):
    (tmp_path / "rows.csv").write_text(
        "id,email,phone,tag,note\nu1,a@x.io,+15550100,beta,\nu2,b@x.io,,,\n", encoding="utf-8"
    )
    (tmp_path / "flow.yaml").write_text(FLOW, encoding="utf-8")
    result = CliRunner().invoke(
        main, ["run", str(tmp_path / "flow.yaml"), "--no-batch"], env=env_for(recording_server.url)
    )
    assert result.exit_code == 0, result.output
    traits = {
        r.body["userId"]: r.body["traits"]
        for r in recording_server.requests
        if isinstance(r.body, dict) and "traits" in r.body
    }
    assert traits["u1"] == {
        "email": "a@x.io",
        "phone": "+15550100",
        "tags": ["vip", "beta"],
        "note": "",
    }
    assert traits["u2"] == {"email": "b@x.io", "tags": ["vip"], "note": ""}  # note: no filter


def test_plan_shows_the_field_left_out(tmp_path):
    (tmp_path / "rows.csv").write_text("id,email,phone,tag,note\nu2,b@x.io,,,\n", encoding="utf-8")
    (tmp_path / "flow.yaml").write_text(FLOW, encoding="utf-8")
    result = CliRunner().invoke(main, ["plan", str(tmp_path / "flow.yaml"), "--format", "jsonl"])
    assert '"email":"b@x.io"' in result.output  # batched, as a run sends it
    assert result.exit_code == 0, result.output
    assert '"phone"' not in result.output and "omit" not in result.output
