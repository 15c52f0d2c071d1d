"""Render the README's pictures from the emulator's demo data:

- docs/segment-analysis.png: the charts of notebooks/segment_analysis.ipynb, on one figure;
- docs/deliveries.png: the funnels, failure reasons and time to open of
  notebooks/deliveries.ipynb over a generated demo of 3,000 people.

    .venv/bin/python notebooks/render_readme_image.py [SEGMENTS.png [DELIVERIES.png]]
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # a file, not a window

from cio_flows.analysis import Workspace, deliveries_report, segment_report

OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "segment-analysis.png"
DELIVERIES = OUTPUT.with_name("deliveries.png")
COLUMNS = ("plan", "country", "churn_risk")


def render(output: Path = OUTPUT) -> Path:
    with Workspace.emulator(environ={}, progress=False) as ws:
        segments = ws.segments()
        overlap = ws.overlap()
        largest = segments.sort_values("count").iloc[-1]
        members = ws.people({"segment": {"id": int(largest["id"])}})
    figure = segment_report(segments, overlap, members, COLUMNS, segment_name=largest["name"])
    figure.suptitle("Segment analysis of the emulator's demo workspace", fontsize=14)
    output.parent.mkdir(parents=True, exist_ok=True)
    # Fixed metadata so re-rendering the same data gives the same file.
    figure.savefig(output, dpi=80, metadata={"Software": None})
    return output


def render_deliveries(output: Path = DELIVERIES, people: int = 3000) -> Path:
    with Workspace.emulator({"demo": {"people": people}}, environ={}, progress=False) as ws:
        messages = ws.messages()
    title = f"Deliveries in the emulator's generated demo ({people:,} people, {len(messages):,} messages)"
    figure = deliveries_report(messages, title)
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=70, metadata={"Software": None})
    return output


if __name__ == "__main__":
    print(render(Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT))
    print(render_deliveries(Path(sys.argv[2]) if len(sys.argv) > 2 else DELIVERIES))
