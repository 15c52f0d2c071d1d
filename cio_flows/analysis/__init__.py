"""The notebook face of cio-flows: a workspace's people and segments as pandas DataFrames,
charts over them, and flows planned and run from a notebook.

    from cio_flows.analysis import Workspace
    with Workspace.connect() as ws:      # CUSTOMERIO_* credentials, else the emulator's demo data
        people = ws.people({"segment": {"id": 1}})
        sizes = ws.segments()
        both = ws.overlap()
        results = ws.run("flows/onboarding.yaml")  # relative paths: see find_path

Needs the `notebooks` extra (pandas, matplotlib): `pip install 'cio-flows[notebooks]'`.
"""

from __future__ import annotations

from .charts import plot_distribution, plot_overlap, plot_segment_sizes, segment_report
from .flows import describe_summary
from .frames import coerce_columns, timestamps
from .paths import find_path
from .reads import EVERYONE
from .workspace import Workspace

__all__ = [
    "EVERYONE",
    "Workspace",
    "coerce_columns",
    "describe_summary",
    "find_path",
    "plot_distribution",
    "plot_overlap",
    "plot_segment_sizes",
    "segment_report",
    "timestamps",
]
