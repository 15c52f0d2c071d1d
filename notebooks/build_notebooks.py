"""Write the notebooks in this folder from the cells below, without outputs.

    .venv/bin/python notebooks/build_notebooks.py          # rewrite the .ipynb files
    .venv/bin/python notebooks/build_notebooks.py --check  # exit 1 if they differ from this script

Edit the cells here, not in JupyterLab, so the committed notebooks stay reproducible. The first
code cell of each is tagged `parameters`: papermill (`papermill -p target emulator ...`) and
tests replace its values.
"""

from __future__ import annotations

import sys
from pathlib import Path
from textwrap import dedent

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

CONNECT_PARAMETERS = """\
# Parameters (papermill style). With the defaults the notebook runs against the emulator's demo
# workspace; set CUSTOMERIO_APP_TOKEN (and CUSTOMERIO_REGION) before starting JupyterLab to read
# a real workspace instead.
target = "auto"  # "auto": CUSTOMERIO_APP_TOKEN set -> that workspace, else the emulator; or "env", "emulator"
region = None  # "us" or "eu" for a real workspace (default: CUSTOMERIO_REGION, else us)
"""

CONNECT = """\
import matplotlib.pyplot as plt
import pandas as pd

from cio_flows.analysis import Workspace

pd.set_option("display.max_columns", 30)
pd.set_option("display.width", 160)

ws = Workspace.connect(target, region=region)
ws  # where the data comes from; keys are never shown
"""

CLOSE = """\
ws.close()  # stops the emulator this notebook started, if any
"""


def _code(source: str, *tags: str) -> nbformat.NotebookNode:
    cell = new_code_cell(dedent(source).strip("\n"))
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def _markdown(source: str) -> nbformat.NotebookNode:
    return new_markdown_cell(dedent(source).strip("\n"))


def _notebook(name: str, cells: list[nbformat.NotebookNode]) -> nbformat.NotebookNode:
    notebook = new_notebook(
        cells=cells,
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        },
    )
    for index, cell in enumerate(notebook.cells):
        cell.id = f"{name}-{index:02d}"  # stable ids keep rebuilt notebooks byte-identical
    return notebook


def people_explorer() -> nbformat.NotebookNode:
    return _notebook(
        "people",
        [
            _markdown(
                """
                # People explorer

                Who is in the workspace: everyone matching an App API filter as a table with
                their attributes, which attributes are filled in, and one person's profile,
                segments and recent activity.

                Reads use one search call per 1,000 people and one bulk attribute call per 100,
                at the App API's 10 requests per second.
                """
            ),
            _code(
                CONNECT_PARAMETERS
                + """\
people_filter = None  # an App API filter, e.g. {"segment": {"id": 1}}; None reads everyone
person_id = None  # whose profile to show; None picks the first person read
chart_columns = ["plan", "country"]  # attributes to chart (skipped when absent)
activity_limit = 20
""",
                "parameters",
            ),
            _code(CONNECT),
            _markdown("## Everyone matching the filter"),
            _code(
                """
                from cio_flows.analysis import freshness

                people = ws.people(people_filter)
                print(f"{len(people)} people with {len(people.columns) - 3} attributes")
                print(freshness(people))  # "as of ... (just read)" or "(cached, ... old)"
                people.head(10)
                """
            ),
            _markdown(
                """
                Which attributes are filled in, and how varied they are. Numbers arrive from the
                App API as strings; columns where every value is a number are converted.
                """
            ),
            _code(
                """
                pd.DataFrame(
                    {
                        "type": people.dtypes.astype(str),
                        "filled %": people.notna().mean().mul(100).round(1),
                        "distinct values": people.nunique(),
                    }
                )
                """
            ),
            _code(
                """
                from cio_flows.analysis import plot_distribution, timestamps

                shown = [c for c in chart_columns if c in people.columns]
                if shown:
                    fig, axes = plt.subplots(
                        1, len(shown), figsize=(6 * len(shown), 4), layout="constrained", squeeze=False
                    )
                    for ax, column in zip(axes[0], shown, strict=False):
                        plot_distribution(people, column, ax)
                    plt.show()
                if "created_at" in people.columns:
                    months = timestamps(people["created_at"]).dt.strftime("%Y-%m")
                    ax = (
                        months.value_counts()
                        .sort_index()
                        .plot.bar(figsize=(12, 3), color="#4C72B0", title="People created per month")
                    )
                    ax.set_xlabel("")
                    plt.show()
                """
            ),
            _markdown("## One person"),
            _code(
                """
                pid = person_id or people["id"].dropna().iloc[0]
                profile = ws.person(pid)
                profile.to_frame("value")
                """
            ),
            _code(
                """
                ws.person_segments(pid)
                """
            ),
            _code(
                """
                ws.person_activities(pid, limit=activity_limit)
                """
            ),
            _code(CLOSE),
        ],
    )


def segment_analysis() -> nbformat.NotebookNode:
    return _notebook(
        "segments",
        [
            _markdown(
                """
                # Segment analysis

                How big each segment is, how segments overlap, and how attributes are distributed
                within one segment.
                """
            ),
            _code(
                CONNECT_PARAMETERS
                + """\
segment_ids = None  # segments to compare, e.g. [1, 2, 6]; None: all of them
focus_segment = None  # segment id whose members to chart; None: the largest
distribution_columns = ["plan", "country", "mrr", "churn_risk"]  # skipped when absent
normalize_overlap = False  # True: shares of the row segment instead of counts
""",
                "parameters",
            ),
            _code(CONNECT),
            _markdown("## Segments and their sizes"),
            _code(
                """
                from cio_flows.analysis import plot_distribution, plot_overlap, plot_segment_sizes

                segments = ws.segments()
                if segment_ids is not None:
                    segments = segments[segments["id"].isin(segment_ids)]
                by_size = segments.sort_values("count", ascending=False)
                for name, count, kind in by_size[["name", "count", "type"]].itertuples(index=False):
                    print(f"{name}: {count} people ({kind})")
                segments
                """
            ),
            _code(
                """
                plot_segment_sizes(segments)
                plt.show()
                """
            ),
            _markdown(
                """
                ## Overlap

                People in both segments; the diagonal is each segment's size.
                """
            ),
            _code(
                """
                overlap = ws.overlap(segment_ids, normalize=normalize_overlap)
                overlap
                """
            ),
            _code(
                """
                plot_overlap(overlap)
                plt.show()
                """
            ),
            _markdown("## Inside one segment"),
            _code(
                """
                focus = (
                    segments.set_index("id").loc[focus_segment]
                    if focus_segment is not None
                    else segments.sort_values("count").iloc[-1]
                )
                focus_id = int(focus_segment if focus_segment is not None else focus["id"])
                members = ws.people({"segment": {"id": focus_id}})
                shown = [c for c in distribution_columns if c in members.columns]
                print(f"{focus['name']}: {len(members)} people")
                members[shown].describe(include="all") if shown else members.head()
                """
            ),
            _code(
                """
                if shown:
                    fig, axes = plt.subplots(
                        1, len(shown), figsize=(5 * len(shown), 4), layout="constrained", squeeze=False
                    )
                    for ax, column in zip(axes[0], shown, strict=False):
                        plot_distribution(members, column, ax)
                    fig.suptitle(f"{focus['name']} ({len(members)} people)")
                    plt.show()
                """
            ),
            _code(CLOSE),
        ],
    )


def flow_runner() -> nbformat.NotebookNode:
    return _notebook(
        "flows",
        [
            _markdown(
                """
                # Flow runner

                What a flow will do before running it (every request, rendered and validated,
                keys never shown), then the run itself with one row per step result.
                """
            ),
            _code(
                CONNECT_PARAMETERS
                + """\
# Relative paths: to the working directory, else to the project around it, else to the cio-flows
# checkout (cio_flows.analysis.find_path), so the notebook runs from any directory.
flow_path = "flows/onboarding.yaml"
flow_vars = {}  # overrides of the flow's vars, e.g. {"email": "someone@example.com"}
data = None  # a CSV / JSON Lines file of rows, replacing the flow's for_each
run_on_real_workspace = False  # a real workspace is only written to when this is True
""",
                "parameters",
            ),
            _code(CONNECT),
            _markdown("## The plan: what a run would send"),
            _code(
                """
                plan = ws.plan_table(flow_path, data=data, **flow_vars)
                plan[["step", "kind", "row", "method", "url", "body", "depends_on"]]
                """
            ),
            _markdown("## Run"),
            _code(
                """
                from cio_flows.analysis import describe_summary

                if ws.is_emulator or run_on_real_workspace:
                    results = ws.run(flow_path, data=data, **flow_vars)
                    print(describe_summary(results.attrs["summary"]))
                else:
                    results = None
                    print("Not run: this is a real workspace. Set run_on_real_workspace = True to run.")
                results
                """
            ),
            _code(
                """
                if results is not None and len(results):
                    labels = results["step"] + results["row"].map(lambda r: f" (row {r})" if pd.notna(r) else "")
                    colors = results["status"].map({"ok": "#55A868", "skipped": "#BBBBBB"}).fillna("#C44E52")
                    ax = results.assign(label=labels).plot.barh(
                        x="label", y="ms", color=colors, legend=False, figsize=(8, 0.4 * len(results) + 1)
                    )
                    ax.invert_yaxis()
                    ax.set_xlabel("ms")
                    ax.set_ylabel("")
                    ax.set_title("Time per step (green ok, red failed or unknown)")
                    plt.show()
                """
            ),
            _markdown("On the emulator, the messages the run sent can be checked directly:"),
            _code(
                """
                from IPython.display import display

                if ws.is_emulator:
                    deliveries = pd.DataFrame(ws.emulator.inspect.deliveries())
                    columns = ["delivery_id", "channel", "template", "recipient", "subject"]
                    display(deliveries.reindex(columns=columns))
                """
            ),
            _markdown(
                """
                ## A flow in a cell

                `%load_ext cio_flows` adds two cell magics: `%%cio_flow` runs the YAML in its cell
                (no file to write first) and shows the step results, `%%cio_plan` shows what it would
                send. `--emulator` runs it on a local emulator (kept for the notebook's later cells);
                without it, on the workspace in the CUSTOMERIO_* variables. `--var NAME=VALUE` and
                `--data FILE` work as on the command line.
                """
            ),
            _code("%load_ext cio_flows"),
            _code(
                """
                %%cio_plan --emulator --var plan=pro
                version: 1
                name: cell_flow
                vars: {plan: free}
                steps:
                  - identify: {userId: cell_user, traits: {plan: "{{ plan }}"}}
                  - track: {userId: cell_user, event: cell_event_tracked}
                """
            ),
            _code(
                """
                %%cio_flow --emulator --var plan=pro
                version: 1
                name: cell_flow
                vars: {plan: free}
                steps:
                  - identify: {userId: cell_user, traits: {plan: "{{ plan }}"}}
                  - track: {userId: cell_user, event: cell_event_tracked}
                """
            ),
            _code(CLOSE),
        ],
    )


def deliveries() -> nbformat.NotebookNode:
    sys.path.insert(0, str(HERE))  # the cells live next to this script
    import deliveries_cells

    return _notebook("deliveries", deliveries_cells.cells(_code, _markdown, CLOSE))


def journeys() -> nbformat.NotebookNode:
    sys.path.insert(0, str(HERE))  # the cells live next to this script
    import journeys_cells

    return _notebook("journeys", journeys_cells.cells(_code, _markdown, CLOSE))


NOTEBOOKS = {
    "people_explorer.ipynb": people_explorer,
    "segment_analysis.ipynb": segment_analysis,
    "flow_runner.ipynb": flow_runner,
    "deliveries.ipynb": deliveries,
    "journeys.ipynb": journeys,
}


def render(build) -> str:
    return nbformat.writes(build()) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for name, build in NOTEBOOKS.items():
        path = HERE / name
        text = render(build)
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(HERE.parent)}")
    if stale:
        print("out of date (run notebooks/build_notebooks.py): " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
