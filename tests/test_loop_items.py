"""A literal `loop:` list is rendered like any payload value: its items may be templates."""

from __future__ import annotations

import textwrap

from cio_flows import RunOptions, run_flow
from cio_flows.run.events import StepFinished

FLOW = """\
version: 1
name: loop_literal
vars:
  keep: "loop_keep_{{ run.id }}"
steps:
  - identify:
      userId: "{{ item }}"
      traits: {plan: free}
    loop: ["{{ keep }}", "literal_user"]
    save: made
  - get_person:
      id: "{{ keep }}"
    expect: response.attributes.id == keep
finally:
  - delete: {userId: "{{ keep }}"}
  - delete: {userId: literal_user}
"""


def test_loop_items_are_rendered_before_the_step_runs(tmp_path):
    flow = tmp_path / "loop.yaml"
    flow.write_text(textwrap.dedent(FLOW))
    events = []
    summary = run_flow(flow, RunOptions(emulator=True, journal=False), [events.append])
    failures = [e.error for e in events if isinstance(e, StepFinished) and e.error]
    assert summary.exit_code == 0, failures
    assert summary.counts["ok"] == 4
