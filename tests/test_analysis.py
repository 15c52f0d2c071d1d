"""The notebook API (cio_flows.analysis) against the emulator's demo workspace, and the request
budget of reading a 10,000-person workspace."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from cio_flows.analysis import Workspace, coerce_columns, find_path, reads
from cio_flows.emulator import DEMO_CREDENTIALS
from cio_flows.errors import CredentialsError, FlowSyntaxError
from cio_flows.wire.kinds import Response

FLOWS = Path(__file__).resolve().parent.parent / "flows"

DEMO_KEYS = DEMO_CREDENTIALS.secrets()


@pytest.fixture(scope="module")
def ws() -> Iterator[Workspace]:
    with Workspace.emulator(environ={}, progress=False) as workspace:
        yield workspace


@pytest.fixture(scope="module")
def demo(ws: Workspace) -> dict:
    """What the emulator itself says the demo workspace holds."""
    segments = ws.emulator.inspect.segments()
    return {
        "people": ws.emulator.inspect.people(),
        "counts": {s["name"]: s["count"] for s in segments},
        "members": {s["id"]: {m["id"] for m in s["members"]} for s in segments},
    }


# --- people ---------------------------------------------------------------------------------


def test_people_frame_has_everyone_with_typed_attributes(ws: Workspace, demo: dict) -> None:
    people = ws.people()
    assert len(people) == len(demo["people"]) == 300
    assert list(people.columns[:3]) == ["id", "email", "cio_id"]
    assert people["id"].is_unique
    assert people["mrr"].dtype == "int64"  # the App API sends "49"
    assert people["newsletter"].dtype == bool
    assert people["plan"].isin(["free", "pro", "enterprise"]).all()
    phones = people["phone"].dropna()
    assert len(phones) and phones.str.startswith("+").all()  # stays text, not a number
    first = people.set_index("id").loc["user_0002"]
    assert (first["first_name"], first["mrr"], first["country"]) == ("Ana", 29, "IT")


def test_people_from_a_filter_match_the_segment(ws: Workspace, demo: dict) -> None:
    pro = ws.people({"segment": {"id": 1}})
    assert set(pro["id"]) == demo["members"][1]
    assert (pro["plan"] == "pro").all()
    ids_only = ws.people({"attribute": {"field": "plan", "operator": "eq", "value": "pro"}}, False)
    assert list(ids_only.columns) == ["id", "email", "cio_id"]
    assert set(ids_only["id"]) == demo["members"][1]


def test_one_person(ws: Workspace) -> None:
    person = ws.person("user_0002")
    assert person["email"] == "ana.evans2@example.net"
    assert person["mrr"] == 29 and person["newsletter"] is False
    same = ws.person("ana.evans2@example.net", id_type="email")
    assert same["id"] == "user_0002"
    segments = ws.person_segments("user_0002")
    assert set(segments["name"]) == {"Pro plan", "EU customers", "Paying customers"}
    activities = ws.person_activities("user_0002", limit=3)
    assert len(activities) == 3
    assert activities["timestamp"].is_monotonic_decreasing
    assert activities["name"].iloc[0] == "purchase"
    assert len(ws.person_activities("user_0002", limit=100)) == 5


# --- segments -------------------------------------------------------------------------------


def test_segments_with_counts(ws: Workspace, demo: dict) -> None:
    segments = ws.segments()
    assert list(segments.columns) == ["id", "name", "type", "description", "count"]
    assert dict(zip(segments["name"], segments["count"], strict=True)) == demo["counts"]
    assert set(segments["type"]) == {"dynamic", "manual"}


def test_segment_members(ws: Workspace, demo: dict) -> None:
    members = ws.segment_members(8)
    assert set(members["id"]) == demo["members"][8]
    with_attributes = ws.segment_members(8, attributes=True)
    assert "plan" in with_attributes.columns and len(with_attributes) == len(members)


def test_overlap_is_square_and_counts_people_in_both(ws: Workspace, demo: dict) -> None:
    table = ws.overlap()
    names = list(demo["counts"])
    assert list(table.index) == list(table.columns) == names
    assert (table.to_numpy() == table.to_numpy().T).all()
    for name in names:
        assert table.loc[name, name] == demo["counts"][name]
    members = demo["members"]
    assert table.loc["Pro plan", "Paying customers"] == len(members[1] & members[6])
    assert table.loc["Pro plan", "Enterprise"] == 0
    shares = ws.overlap([1, 6], normalize=True)
    assert list(shares.index) == ["Pro plan", "Paying customers"]
    assert shares.loc["Pro plan", "Paying customers"] == 1.0
    assert shares.loc["Paying customers", "Pro plan"] == pytest.approx(
        len(members[1]) / len(members[6])
    )


# --- flows ----------------------------------------------------------------------------------


def test_plan_table_shows_requests_without_keys(ws: Workspace) -> None:
    plan = ws.plan_table(FLOWS / "onboarding.yaml", email="plan@example.com")
    assert list(plan["kind"]) == [
        "identify",
        "track",
        "send_email",
        "search",
        "get_person",
        "delete",
    ]
    assert plan["url"].str.startswith(ws.emulator.url).all()
    assert "plan@example.com" in plan.loc[0, "body"]
    text = plan.to_string()
    assert not any(key in text for key in DEMO_KEYS)
    assert ws.emulator.inspect.person(email="plan@example.com") is None  # nothing sent


def test_run_gives_one_row_per_step(ws: Workspace) -> None:
    results = ws.run(FLOWS / "onboarding.yaml")
    assert list(results.columns[:6]) == ["step", "kind", "row", "row_key", "status", "ms"]
    assert list(results["status"]) == ["ok"] * 6
    assert results.attrs["summary"].ok
    assert results.loc[results["kind"] == "search", "detail"].item() == "1 found"


def test_relative_flow_paths_work_from_any_working_directory(ws: Workspace, monkeypatch, tmp_path):
    # JupyterLab starts the kernel in notebooks/, papermill wherever the shell is.
    for cwd in (FLOWS.parent / "notebooks", FLOWS.parent, tmp_path):
        monkeypatch.chdir(cwd)
        assert len(ws.plan_table("flows/onboarding.yaml")) == 6
    with pytest.raises(FlowSyntaxError, match=r"^flows/nope\.yaml:1:1: flow file not found"):
        ws.plan_table("flows/nope.yaml")


def test_find_path_prefers_the_working_directory_then_its_project(monkeypatch, tmp_path):
    project = tmp_path / "project"
    (project / "notebooks").mkdir(parents=True)
    (project / "flows").mkdir()
    (project / "pyproject.toml").write_text("")
    (project / "flows" / "onboarding.yaml").write_text("")
    (project / "notebooks" / "local.csv").write_text("")
    monkeypatch.chdir(project / "notebooks")
    assert find_path("local.csv") == Path("local.csv")  # as given: found where it says
    assert find_path("flows/onboarding.yaml") == project / "flows" / "onboarding.yaml"
    monkeypatch.chdir(tmp_path)  # no project here: the cio-flows checkout
    assert find_path("flows/onboarding.yaml") == FLOWS / "onboarding.yaml"
    assert find_path("flows/missing.yaml") == Path("flows/missing.yaml")
    assert find_path(tmp_path / "x.yaml") == tmp_path / "x.yaml"


# --- connecting -----------------------------------------------------------------------------


def test_from_env_needs_the_app_token() -> None:
    with pytest.raises(CredentialsError, match="CUSTOMERIO_APP_TOKEN"):
        Workspace.from_env({})


def test_auto_uses_the_environment_when_a_token_is_set(ws: Workspace) -> None:
    environ = {
        "CUSTOMERIO_APP_TOKEN": DEMO_CREDENTIALS.app_key,
        "CUSTOMERIO_APP_URL": ws.emulator.url,
        "CUSTOMERIO_REGION": "eu",
    }
    with Workspace.connect(environ=environ, progress=False) as remote:
        assert not remote.is_emulator
        assert "region eu" in repr(remote) and DEMO_CREDENTIALS.app_key not in repr(remote)
        assert remote.segments(counts=False)["name"].iloc[0] == "Pro plan"


def test_emulator_is_stopped_on_close() -> None:
    workspace = Workspace.emulator(environ={}, progress=False)
    emulator = workspace.emulator
    workspace.close()
    with pytest.raises(RuntimeError):
        emulator.url  # noqa: B018


# --- pieces ---------------------------------------------------------------------------------


def test_columns_become_numbers_only_when_every_value_is_one() -> None:
    raw = pd.DataFrame(
        {
            "id": ["1", "2", "3"],
            "mrr": ["49", "0", None],
            "score": ["1.5", "2", "3e2"],
            "zip": ["01234", "10115", "75001"],
            "phone": ["+15550001", "+15550002", None],
            "mixed": ["7", "seven", "7"],
            "flag": ["true", None, "false"],
        }
    )
    typed = coerce_columns(raw)
    assert typed["id"].tolist() == ["1", "2", "3"]  # identifiers stay text
    assert str(typed["mrr"].dtype) == "Int64" and typed["mrr"].iloc[0] == 49
    assert typed["score"].tolist() == [1.5, 2.0, 300.0]
    assert typed["zip"].tolist() == ["01234", "10115", "75001"]
    assert typed["phone"].iloc[0] == "+15550001"
    assert typed["mixed"].iloc[0] == "7"
    assert str(typed["flag"].dtype) == "boolean" and typed["flag"].iloc[0]


def test_pager_stops_on_an_empty_page_or_a_repeated_cursor() -> None:
    answers = iter([{"ids": ["a"], "next": "c1"}, {"ids": ["b"], "next": "c1"}, {"ids": ["x"]}])
    sent = []

    def send(request):
        sent.append(request)
        return Response(200, next(answers))

    bodies = list(reads.pages(send, lambda start: reads.membership_page(1, start), "ids"))
    assert [b["ids"] for b in bodies] == [["a"], ["b"]]
    assert dict(sent[1].params)["start"] == "c1"

    empty = iter([{"ids": [], "next": "c9"}])
    page = lambda start: reads.membership_page(1, start)  # noqa: E731
    assert len(list(reads.pages(lambda r: Response(200, next(empty)), page, "ids"))) == 1


def test_bulk_attribute_reads_take_at_most_100_ids() -> None:
    assert reads.bulk_attributes(["a"] * 100).body == {"ids": ["a"] * 100}
    with pytest.raises(ValueError):
        reads.bulk_attributes(["a"] * 101)


# --- the 10,000-person budget ---------------------------------------------------------------

PEOPLE = 10_000


def _large_workspace() -> dict:
    plans = ("free", "pro", "enterprise")
    return {
        "people": [
            {
                "id": f"u{i:05d}",
                "email": f"person{i}@example.com",
                "attributes": {"plan": plans[i % 3], "mrr": (i % 3) * 49, "score": i % 7},
            }
            for i in range(PEOPLE)
        ]
    }


@pytest.mark.slow
def test_reading_10000_people_respects_the_app_api_budget_and_rate() -> None:
    # The emulator enforces Customer.io's documented App API limit (10/s): a throttled request
    # would show as a 429 in its log. The Workspace uses the default rate limits.
    with Workspace.emulator(
        _large_workspace(), environ={}, progress=False, limits="customerio"
    ) as big:
        # The emulator shares this process: a full garbage collection (~100 ms with 10,000
        # people in memory) can hold one request back after its slot, so it arrives next to the
        # following one. Measure the client's pacing, not the collector.
        gc.disable()
        try:
            people = big.people(via="search")  # "auto" would export 10,000 people
        finally:
            gc.enable()
        log = big.emulator.inspect.requests(family="app")

    assert len(people) == PEOPLE and people["id"].is_unique
    assert people["mrr"].dtype == "int64" and set(people["plan"]) == {"free", "pro", "enterprise"}
    searches = [e for e in log if e["path"] == "/v1/customers"]
    attribute_calls = [e for e in log if e["path"] == "/v1/customers/attributes"]
    assert len(searches) <= PEOPLE // 1000
    assert len(attribute_calls) <= PEOPLE // 100
    assert len(log) == len(searches) + len(attribute_calls)
    assert all(e["status"] == 200 for e in log), "throttled or failed requests"
    # The emulator's own 10/s limit answers 429 to a faster client (no 429 above). Over the
    # whole read the pace holds too: arrival stamps on a loaded machine jitter one by one, so
    # the span of all requests is checked, not each window of 11.
    times = sorted(e["time"] for e in log)
    assert times[-1] - times[0] >= (len(times) - 11) / 10, "more than 10 requests a second"


def test_public_surface() -> None:
    import cio_flows.analysis as analysis

    assert sorted(analysis.__all__) == [
        "EVERYONE",
        "Workspace",
        "coerce_columns",
        "deliveries_report",
        "describe_summary",
        "failure_reasons",
        "find_path",
        "freshness",
        "funnel",
        "plot_distribution",
        "plot_funnel",
        "plot_metrics",
        "plot_overlap",
        "plot_segment_sizes",
        "plot_time_to_open",
        "segment_report",
        "time_to_open",
        "timestamps",
    ]
    assert all(hasattr(analysis, name) for name in analysis.__all__)
