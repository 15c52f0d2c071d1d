"""Matplotlib charts over the Workspace DataFrames. Each draws on `ax` (or a new figure) and
returns the Axes, so a notebook can combine them; numbers are written on the charts so a reader
sees the data, not only the shapes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

BAR_COLOR = "#4C72B0"
MAX_CATEGORIES = 15  # beyond this a categorical chart shows the top values only


def _axes(ax: Axes | None, size: tuple[float, float]) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=size, layout="constrained")
    return ax


def plot_segment_sizes(segments: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Horizontal bars of `count` per segment `name`, largest on top, counts at the bar ends."""
    ax = _axes(ax, (7, 0.45 * len(segments) + 1))
    ordered = segments.dropna(subset=["count"]).sort_values("count")
    counts = ordered["count"].astype(int)
    bars = ax.barh(ordered["name"].astype(str), counts, color=BAR_COLOR)
    ax.bar_label(bars, padding=3)
    ax.set_xlabel("people")
    ax.set_title("Segment sizes")
    ax.margins(x=0.12)
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def plot_overlap(overlap: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Heatmap of an overlap table: counts, or shares when the table is normalized (<= 1)."""
    ax = _axes(ax, (0.8 * len(overlap) + 3, 0.7 * len(overlap) + 2))
    values = overlap.to_numpy(dtype=float)
    shares = values.size > 0 and values.max() <= 1.0 and overlap.dtypes.eq(float).all()
    image = ax.imshow(values, cmap="Blues", vmin=0)
    ax.set_xticks(range(len(overlap.columns)), overlap.columns, rotation=40, ha="right")
    ax.set_yticks(range(len(overlap.index)), overlap.index)
    peak = values.max() if values.size else 0
    for (row, col), value in pd.DataFrame(values).stack().items():
        text = f"{value:.0%}" if shares else f"{value:.0f}"
        color = "white" if peak and value > peak * 0.6 else "black"
        ax.text(col, row, text, ha="center", va="center", fontsize=8, color=color)
    ax.set_title("Share of row segment also in column" if shares else "People in both segments")
    ax.figure.colorbar(image, ax=ax, shrink=0.8)
    return ax


def plot_distribution(
    people: pd.DataFrame, column: str, ax: Axes | None = None, title: str | None = None
) -> Axes:
    """A histogram for a numeric column, bars of value counts for anything else."""
    ax = _axes(ax, (6, 3.5))
    values = people[column].dropna()
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if numeric and values.nunique() > MAX_CATEGORIES:
        ax.hist(values.astype(float), bins=20, color=BAR_COLOR)
        ax.set_ylabel("people")
    else:
        counts = values.astype(str).value_counts().head(MAX_CATEGORIES)
        if numeric:  # few distinct numbers read best in numeric order
            counts = counts.sort_index(key=lambda i: i.astype(float))
        bars = ax.bar(counts.index, counts.to_numpy(), color=BAR_COLOR)
        ax.bar_label(bars, padding=2)
        ax.set_ylabel("people")
        ax.margins(y=0.15)
        if len(counts) > 6:
            ax.tick_params(axis="x", labelrotation=40)
    ax.set_xlabel(column)
    ax.set_title(title or f"{column} ({len(values)} people)")
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def segment_report(
    segments: pd.DataFrame,
    overlap: pd.DataFrame,
    people: pd.DataFrame,
    columns: tuple[str, ...] = ("plan", "country"),
    segment_name: str = "",
) -> Figure:
    """Sizes, overlap and attribute distributions in one figure (the README picture)."""
    import matplotlib.pyplot as plt

    figure = plt.figure(figsize=(15, 10.5), layout="constrained")
    top, bottom = figure.subfigures(2, 1, squeeze=False, height_ratios=[1.25, 1])[:, 0]
    sizes_ax, overlap_ax = top.subplots(1, 2, width_ratios=[1, 1.2])
    plot_segment_sizes(segments, sizes_ax)
    plot_overlap(overlap, overlap_ax)
    where = f" in {segment_name}" if segment_name else ""
    for ax, column in zip(bottom.subplots(1, len(columns), squeeze=False)[0], columns, strict=True):
        plot_distribution(people, column, ax, title=f"{column}{where} ({len(people)} people)")
    return figure
