"""`once:` in the flow model and the claims of once keys (run/once.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cio_flows import FlowSchemaError, TemplateError, load_flow
from cio_flows.run.once import THIS_RUN, OnceBook

FLOW = """\
version: 1
name: once
steps:
  - name: welcome
    once: {once}
    send_email: {{transactional_message_id: 1, to: a@example.com, identifiers: {{id: a}}}}
"""


def flow_with(tmp_path: Path, once: str) -> Path:
    path = tmp_path / "flow.yaml"
    path.write_text(FLOW.format(once=once))
    return path


def test_once_is_a_step_option_with_its_location(tmp_path: Path) -> None:
    [step] = load_flow(flow_with(tmp_path, '"welcome:{{ run.flow }}"')).steps
    assert step.once == "welcome:{{ run.flow }}"
    assert step.once_location is not None and step.once_location.line == 5


def test_a_once_key_that_is_not_text_is_refused_where_it_is(tmp_path: Path) -> None:
    with pytest.raises(FlowSchemaError) as refused:
        load_flow(flow_with(tmp_path, "[a, b]"))
    assert ":5:" in refused.value.describe()


def test_a_once_key_may_not_hold_a_secret(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match=r"env\.API_TOKEN is secret") as refused:
        load_flow(flow_with(tmp_path, '"{{ env.API_TOKEN }}"'))
    assert ":5:11" in refused.value.describe()


def test_claims_refuse_done_keys_and_keys_held_in_this_run() -> None:
    book = OnceBook({"done": "run-1"}.get)
    assert book.claim("done") == "run-1"
    assert book.claim("new") is None
    assert book.claim("new") == THIS_RUN  # a second row with the same key
    book.release("new")  # the first did not succeed: another may try
    assert book.claim("new") is None


def test_ignore_once_claims_every_key() -> None:
    book = OnceBook({"done": "run-1"}.get, ignore=True)
    assert book.claim("done") is None and book.claim("done") is None
