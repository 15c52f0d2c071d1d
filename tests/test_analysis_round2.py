"""Analysts, round 2: frames say whether they are fresh or cached, the workspace's own runs drop
stale reads, funnels per template cover transactional sends, SQL over the workspace's tables,
per-period metrics as bars."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import matplotlib
import pandas as pd
import pytest

from cio_flows.analysis import Workspace, freshness, funnel, plot_metrics
from cio_flows.analysis.deliveries import messages_frame, with_template_labels
from cio_flows.analysis.frames import people_frame

matplotlib.use("Agg")

IDENTIFY_FLOW = """\
version: 1
name: add_one_person
steps:
  - identify:
      userId: analyst_new_person
      traits: {email: analyst.new@example.com, plan: team}
"""

WELCOME_FLOW = """\
version: 1
name: welcome_three
for_each: {file: people.csv, key: "{{ row.id }}"}
steps:
  - identify: {userId: "{{ row.id }}", traits: {email: "{{ row.id }}@example.com"}}
  - send_email:
      transactional_message_id: welcome
      to: "{{ row.id }}@example.com"
      identifiers: {id: "{{ row.id }}"}
"""


@pytest.fixture()
def ws(tmp_path: Path) -> Iterator[Workspace]:
    with Workspace.emulator(environ={}, progress=False, cache=tmp_path / "cache") as workspace:
        yield workspace


def _flow(tmp_path: Path, text: str) -> Path:
    (tmp_path / "people.csv").write_text("id\nw1\nw2\nw3\n", encoding="utf-8")
    path = tmp_path / "flow.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_read_says_fresh_then_cached_with_when_it_was_fetched(ws: Workspace) -> None:
    before = pd.Timestamp(datetime.now(UTC))
    first = ws.people()
    second = ws.people()
    assert first.attrs["from_cache"] is False
    assert second.attrs["from_cache"] is True
    assert first.attrs["fetched_at"] >= before.floor("s")
    assert str(first.attrs["fetched_at"].tz) == "UTC"
    # The cached frame is the same read, stamped with the time it was fetched, not now.
    assert abs(second.attrs["fetched_at"] - first.attrs["fetched_at"]) < pd.Timedelta(seconds=1)
    assert "(just read)" in freshness(first)
    assert "(cached," in freshness(second)
    pd.testing.assert_frame_equal(first, second, check_dtype=False)


def test_max_age_per_call_reads_again(ws: Workspace) -> None:
    ws.people()
    assert ws.people(max_age=0).attrs["from_cache"] is False
    assert ws.people().attrs["from_cache"] is True


def test_every_read_stamps_its_frame(ws: Workspace) -> None:
    frames = [ws.segments(), ws.segment_members(1), ws.person_segments("user_0001")]
    frames += [ws.person("user_0001"), ws.programs("broadcasts")]
    for frame in frames:
        assert frame.attrs["from_cache"] is False
        assert isinstance(frame.attrs["fetched_at"], pd.Timestamp)


def test_the_workspace_run_drops_the_reads_it_may_have_changed(
    ws: Workspace, tmp_path: Path
) -> None:
    assert "analyst_new_person" not in set(ws.people()["id"])
    assert ws.people().attrs["from_cache"] is True
    results = ws.run(_flow(tmp_path, IDENTIFY_FLOW))
    assert list(results["status"]) == ["ok"]
    after = ws.people()
    assert after.attrs["from_cache"] is False
    assert "analyst_new_person" in set(after["id"])


def test_funnel_per_template_covers_transactional_sends(ws: Workspace, tmp_path: Path) -> None:
    results = ws.run(_flow(tmp_path, WELCOME_FLOW))
    assert set(results["status"]) == {"ok"}
    messages = ws.messages()
    welcome = messages[messages["template_id"] == 1]
    assert len(welcome) == 3
    label = "Welcome email (1)"  # the name from GET /v1/transactional, and the id
    assert set(welcome["template"]) == {label}
    table = funnel(messages, "template")
    assert table.loc[label, "messages"] == 3
    counts = table[["messages", "sent", "delivered", "opened", "clicked"]]
    assert all(str(t) == "int64" for t in counts.dtypes)


def test_template_labels_name_the_template_else_its_subject_else_its_id() -> None:
    records = [
        {"id": "a", "template_id": 1, "subject": None},
        {"id": "b", "template_id": 7, "subject": "Spring sale"},
        {"id": "c", "template_id": 9, "subject": None},
        {"id": "d", "template_id": None, "subject": "A broadcast"},
    ]
    frame = with_template_labels(messages_frame(records), {1: "Welcome email"})
    assert list(frame["template"]) == [
        "Welcome email (1)",
        "Spring sale (7)",
        "template 9",
        "A broadcast",
    ]


def test_sql_groups_people_by_plan(ws: Workspace) -> None:
    table = ws.sql("select plan, count(*) as n from people group by plan order by plan")
    expected = ws.people()["plan"].value_counts()
    assert dict(zip(table["plan"], table["n"], strict=True)) == expected.to_dict()
    assert len(table) == expected.size >= 3


def test_sql_joins_segments_and_their_members(ws: Workspace) -> None:
    table = ws.sql(
        "select s.name, count(*) as n from segment_members m join segments s"
        " on s.id = m.segment_id group by s.name"
    )
    counts = dict(zip(table["name"], table["n"], strict=True))
    segments = ws.segments()
    assert counts["Pro plan"] == int(segments.set_index("name").loc["Pro plan", "count"])


def test_sql_without_a_cache_uses_a_scratch_folder_removed_on_close() -> None:
    with Workspace.emulator(environ={}, progress=False, cache=False) as workspace:
        table = workspace.sql("select count(*) as n from people")
        scratch = Path(workspace._scratch.name)  # type: ignore[union-attr]
        assert int(table["n"].iloc[0]) == 300
        assert any(scratch.rglob("*.parquet"))
    assert not scratch.exists()


def test_sql_names_the_tables_when_the_query_uses_none(ws: Workspace) -> None:
    with pytest.raises(ValueError, match="people, messages, segments"):
        ws.sql("select 1")


def test_created_at_is_a_datetime() -> None:
    frame = people_frame([{"id": "a", "created_at": "1704487658", "mrr": "49"}])
    assert str(frame["created_at"].dtype).startswith("datetime64")
    assert frame["created_at"].iloc[0] == pd.Timestamp("2024-01-05 20:47:38", tz="UTC")
    assert str(frame["mrr"].dtype) == "int64"  # a count stays a number


def test_metrics_are_bars_with_one_tick_per_active_day() -> None:
    index = pd.DatetimeIndex(pd.date_range("2026-12-01", periods=3, freq="D", tz="UTC"))
    metrics = pd.DataFrame(
        {"sent": [5, 0, 7], "delivered": [5, 0, 6], "opened": [2, 0, 3], "clicked": [1, 0, 0]},
        index=index,
    )
    ax = plot_metrics(metrics)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2026-12-01", "2026-12-03"]
    assert len(ax.patches) == 2 * 4  # two active days x four stages, as bars
    assert not ax.get_lines()  # no line drawn between days
