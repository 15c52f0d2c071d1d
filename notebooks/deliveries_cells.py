"""The cells of deliveries.ipynb (written by build_notebooks.py, which passes its helpers)."""

from __future__ import annotations

PARAMETERS = """\
# Parameters (papermill style). With the defaults the notebook starts the emulator with a generated
# demo workspace of `demo_people` people and their message history; set CUSTOMERIO_APP_TOKEN (and
# CUSTOMERIO_REGION) before starting JupyterLab to read a real workspace instead.
target = "auto"  # "auto": CUSTOMERIO_APP_TOKEN set -> that workspace, else the emulator; or "env", "emulator"
region = None  # "us" or "eu" for a real workspace (default: CUSTOMERIO_REGION, else us)
demo_people = 3000  # size of the emulator's generated demo workspace
broadcast_id = None  # the broadcast to look at; None: the one with the most messages
period = "days"  # metric periods: hours, days, weeks or months
export_dir = None  # a folder to write every table to as CSV; None: do not write
"""

CONNECT = """\
import os

import matplotlib.pyplot as plt
import pandas as pd

from cio_flows.analysis import Workspace

pd.set_option("display.max_columns", 30)
pd.set_option("display.width", 160)

has_token = bool(os.environ.get("CUSTOMERIO_APP_TOKEN"))
on_emulator = target == "emulator" or (target == "auto" and not has_token)
if on_emulator:
    ws = Workspace.emulator({"demo": {"people": demo_people}})
else:
    ws = Workspace.connect("env", region=region)  # reads are cached: see Workspace.connect
ws  # where the data comes from; keys are never shown
"""


def cells(code, markdown, close: str) -> list:
    return [
        markdown(
            """
            # Deliveries

            What happened to the messages: how many were sent, delivered, opened and clicked per
            channel and per template, why some bounced or failed, how long people take to open,
            and how one broadcast performed over time. Every table is a DataFrame (set
            `export_dir` to write them all as CSV).
            """
        ),
        code(PARAMETERS, "parameters"),
        code(CONNECT),
        markdown("## Messages: one row per message, metric times as datetimes"),
        code(
            """
            from cio_flows.analysis import freshness

            messages = ws.messages()
            print(f"{len(messages)} messages, {messages['sent'].notna().sum()} sent")
            print(freshness(messages))  # "as of ... (just read)" or "(cached, ... old)"
            shown = ["id", "channel", "template", "recipient", "sent", "delivered", "opened"]
            messages[shown].head()
            """
        ),
        markdown("## Funnel: sent → delivered → opened → clicked"),
        code(
            """
            from cio_flows.analysis import funnel, plot_funnel

            by_channel = funnel(messages, "channel")
            for channel, row in by_channel.iterrows():
                delivered, opened = row["delivered_rate"], row["opened_rate"]
                print(f"{channel}: {int(row['sent'])} sent, {delivered:.0%} delivered, {opened:.0%} opened")
            by_channel
            """
        ),
        code(
            """
            by_template = funnel(messages, "template")  # transactional sends by template id and name
            fig, axes = plt.subplots(1, 2, figsize=(15, 4.5), layout="constrained")
            plot_funnel(by_channel, axes[0], "Funnel per channel")
            plot_funnel(by_template.head(6), axes[1], "Funnel per template (largest 6)")
            plt.show()
            by_template
            """
        ),
        markdown("## Bounces and failures"),
        code(
            """
            from cio_flows.analysis import failure_reasons

            reasons = failure_reasons(messages)
            if len(reasons):
                top = reasons.head(8).iloc[::-1]
                ax = top.plot.barh(x="reason", y="messages", legend=False, figsize=(8, 3.5))
                ax.set_xlabel("messages")
                ax.set_ylabel("")
                ax.set_title("Bounce and failure reasons")
                plt.show()
            reasons
            """
        ),
        markdown("## Time from send to open"),
        code(
            """
            from cio_flows.analysis import plot_time_to_open, time_to_open

            minutes = time_to_open(messages)
            by_channel_minutes = minutes.groupby(messages.loc[minutes.index, "channel"])
            to_open = by_channel_minutes.describe()[["count", "25%", "50%", "75%"]]
            to_open["count"] = to_open["count"].astype("int64")
            if len(minutes):
                print(f"median time to open: {minutes.median():.0f} minutes")
                plot_time_to_open(minutes)
                plt.show()
            to_open
            """
        ),
        markdown("## One broadcast"),
        code(
            """
            from cio_flows.analysis import plot_metrics

            broadcasts = ws.programs("broadcasts")
            counts = messages["broadcast_id"].value_counts()
            chosen = broadcast_id
            if chosen is None and len(counts):
                chosen = int(counts.index[0])  # the broadcast with the most messages
            if chosen is not None:
                name = broadcasts.set_index("id")["name"].get(chosen, chosen)
                metrics = ws.broadcast_metrics(chosen, period=period)
                sent = messages[messages["broadcast_id"] == chosen]
                sent_n, opened_n = int(metrics["sent"].sum()), int(metrics["opened"].sum())
                print(f"broadcast {name}: {sent_n} sent, {opened_n} opened")
                plot_metrics(metrics, title=f"{name}: metrics per {period[:-1]}")
                plt.show()
                display(funnel(sent, "template"))
                metrics = metrics[metrics.sum(axis=1) > 0]
            else:
                metrics = pd.DataFrame()
                print("no broadcast messages")
            metrics
            """
        ),
        markdown("## Export the tables"),
        code(
            """
            from pathlib import Path

            tables = {
                "funnel_by_channel": by_channel,
                "funnel_by_template": by_template,
                "failure_reasons": reasons,
                "time_to_open": to_open,
                "broadcast_metrics": metrics,
            }
            if export_dir is not None:
                folder = Path(export_dir)
                folder.mkdir(parents=True, exist_ok=True)
                for name, table in tables.items():
                    table.to_csv(folder / f"{name}.csv")
                print(f"wrote {len(tables)} tables to {folder}")
            else:
                print("tables:", ", ".join(tables), "(set export_dir to write them as CSV)")
            """
        ),
        code(close),
    ]
