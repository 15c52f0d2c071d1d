"""Tables and charts over `Workspace.messages()`: the delivery funnel (sent -> delivered ->
opened -> clicked), failure reasons, time from send to open, and a program's metrics over time.
Tables are plain DataFrames (`.to_csv()` exports them); charts draw on `ax` and return it."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

STAGES = ("sent", "delivered", "opened", "clicked")
COLORS = ("#4C72B0", "#55A868", "#DD8452", "#C44E52")
_ADDRESS = re.compile(r"<[^>]*>|\S+@\S+|\+?\d{7,}")


def funnel(messages: pd.DataFrame, by: str | list[str] = "channel") -> pd.DataFrame:
    """Per group: messages reaching each stage, bounced and failed counts, and the rates
    delivered/sent, opened/delivered, clicked/opened (0..1)."""
    reached = messages[[*STAGES, "bounced", "failed", "undeliverable"]].notna()
    groups = reached.groupby([messages[c] for c in ([by] if isinstance(by, str) else by)])
    table = groups.sum().astype("int64")
    table.insert(0, "messages", groups.size())
    for numerator, denominator in zip(STAGES[1:], STAGES[:-1], strict=True):
        rate = table[numerator] / table[denominator].where(table[denominator] > 0)
        table[f"{numerator}_rate"] = rate.astype(float).round(3)
    return table.sort_values("messages", ascending=False)


def failure_reasons(messages: pd.DataFrame) -> pd.DataFrame:
    """Bounce and failure messages with addresses and numbers blanked, most frequent first."""
    failed = messages[messages["failure_message"].notna()]
    reason = failed["failure_message"].str.replace(_ADDRESS, "…", regex=True).str.strip()
    outcome = pd.Series("failed", index=failed.index)
    outcome[failed["bounced"].notna()] = "bounced"
    outcome[failed["undeliverable"].notna()] = "undeliverable"
    table = (
        pd.DataFrame({"outcome": outcome, "channel": failed["channel"], "reason": reason})
        .value_counts()
        .rename("messages")
        .reset_index()
    )
    table["share_of_sent"] = (
        table["messages"] / max(int(messages["sent"].notna().sum()), 1)
    ).round(4)
    return table


def time_to_open(messages: pd.DataFrame) -> pd.Series:
    """Minutes from sent to first open, for the messages that were opened."""
    opened = messages.dropna(subset=["sent", "opened"])
    minutes = (opened["opened"] - opened["sent"]).dt.total_seconds() / 60
    return minutes.rename("minutes_to_open")


def _axes(ax: Axes | None, size: tuple[float, float]) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=size, layout="constrained")
    return ax


def plot_funnel(table: pd.DataFrame, ax: Axes | None = None, title: str = "") -> Axes:
    """Grouped bars: for each row of a funnel table, the messages reaching each stage."""
    ax = _axes(ax, (8, 4))
    labels = [" / ".join(map(str, i)) if isinstance(i, tuple) else str(i) for i in table.index]
    width = 0.8 / len(STAGES)
    for k, (stage, color) in enumerate(zip(STAGES, COLORS, strict=True)):
        positions = [i + (k - 1.5) * width for i in range(len(table))]
        bars = ax.bar(positions, table[stage], width, label=stage, color=color)
        ax.bar_label(bars, padding=2, fontsize=7, fmt="%d")
    ax.set_xticks(range(len(table)), labels, rotation=20 if len(table) > 4 else 0, ha="right")
    ax.set_ylabel("messages")
    ax.set_title(title or "Sent → delivered → opened → clicked")
    ax.legend(frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def plot_time_to_open(minutes: pd.Series, ax: Axes | None = None) -> Axes:
    """Histogram of minutes to open (log-spaced bins: most opens come early, some days later)."""
    import numpy as np

    ax = _axes(ax, (7, 3.5))
    values = minutes[minutes > 0]
    if len(values):
        bins = np.logspace(np.log10(max(values.min(), 0.5)), np.log10(values.max() + 1), 30)
        ax.hist(values, bins=bins.tolist(), color=COLORS[2])
        ax.set_xscale("log")
        ax.axvline(values.median(), color="black", linestyle="--", linewidth=1)
        ax.text(values.median(), ax.get_ylim()[1] * 0.9, f" median {values.median():.0f} min")
    ax.set_xlabel("minutes from sent to opened (log scale)")
    ax.set_ylabel("messages")
    ax.set_title(f"Time to open ({len(values)} opened messages)")
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def plot_metrics(metrics: pd.DataFrame, ax: Axes | None = None, title: str = "") -> Axes:
    """A program's metrics per period as grouped bars, one tick per period with activity
    (counts are per period, not a trend between points: bars, not lines)."""
    ax = _axes(ax, (8, 3.5))
    stages = [s for s in STAGES if s in metrics.columns]
    active = metrics[metrics[stages].sum(axis=1) > 0] if stages else metrics.iloc[:0]
    width = 0.8 / max(len(stages), 1)
    for k, stage in enumerate(stages):
        positions = [i + (k - (len(stages) - 1) / 2) * width for i in range(len(active))]
        ax.bar(positions, active[stage], width, label=stage, color=COLORS[STAGES.index(stage)])
    ax.set_xticks(range(len(active)), [_period_label(t, active.index) for t in active.index])
    ax.set_ylabel("messages")
    ax.set_title(title or "Metrics per period")
    if stages:
        ax.legend(frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    ax.tick_params(axis="x", labelrotation=30)
    return ax


def _period_label(start: object, index: pd.Index) -> str:
    """A period's tick: the day ("2026-12-04"), with the hour only for hourly periods."""
    if not isinstance(start, pd.Timestamp):
        return str(start)
    hourly = len(index) > 1 and (index[1] - index[0]) < pd.Timedelta(days=1)
    return start.strftime("%Y-%m-%d %H:00" if hourly else "%Y-%m-%d")


def deliveries_report(messages: pd.DataFrame, title: str = "") -> Figure:
    """Funnel per channel, per template, failure reasons and time to open in one figure."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 2, figsize=(15, 9), layout="constrained")
    plot_funnel(funnel(messages, "channel"), axes[0][0], "Funnel per channel")
    by_template = funnel(messages, "template").head(6)
    plot_funnel(by_template, axes[0][1], "Funnel per template (largest 6)")
    reasons = failure_reasons(messages).head(6)
    labels = [r if len(r) < 45 else r[:42] + "…" for r in reasons["reason"]]
    bars = axes[1][0].barh(labels[::-1], reasons["messages"][::-1], color=COLORS[3])
    axes[1][0].bar_label(bars, padding=3)
    axes[1][0].set_title("Bounce and failure reasons")
    axes[1][0].spines[["top", "right"]].set_visible(False)
    plot_time_to_open(time_to_open(messages), axes[1][1])
    if title:
        figure.suptitle(title, fontsize=14)
    return figure
