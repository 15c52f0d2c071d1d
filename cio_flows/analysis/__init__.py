"""The notebook face of cio-flows: a workspace's people and segments as pandas DataFrames,
charts over them, and flows planned and run from a notebook.

    from cio_flows.analysis import Workspace
    with Workspace.connect() as ws:      # CUSTOMERIO_* credentials, else the emulator's demo data
        people = ws.people({"segment": {"id": 1}})
        sizes = ws.segments()
        both = ws.overlap()
        results = ws.run("flows/onboarding.yaml")  # relative paths: see find_path
        messages = ws.messages()             # one row per message; funnel(messages, "channel")
        ws.newsletter_metrics(1)             # periods x metrics

Needs the `notebooks` extra (pandas, matplotlib): `pip install 'cio-flows[notebooks]'`.
"""

from __future__ import annotations

from .charts import plot_distribution, plot_overlap, plot_segment_sizes, segment_report
from .flows import describe_summary
from .frames import coerce_columns, timestamps
from .freshness import freshness
from .funnels import (
    deliveries_report,
    failure_reasons,
    funnel,
    plot_funnel,
    plot_metrics,
    plot_time_to_open,
    time_to_open,
)
from .paths import find_path
from .reads import EVERYONE
from .workspace import Workspace

__all__ = [
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
