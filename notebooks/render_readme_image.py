"""Render docs/segment-analysis.png: the segment analysis charts over the emulator's demo data.

    .venv/bin/python notebooks/render_readme_image.py [OUTPUT.png]

The same Workspace calls and chart functions as notebooks/segment_analysis.ipynb, on one figure.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # a file, not a window

from cio_flows.analysis import Workspace, segment_report

OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "segment-analysis.png"
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


if __name__ == "__main__":
    print(render(Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT))
