"""The cells of journeys.ipynb (written by build_notebooks.py, which passes its helpers)."""

from __future__ import annotations

PARAMETERS = """\
# Parameters (papermill style). With the defaults the notebook starts the emulator with its demo
# workspace, whose "Trial journey" campaign (id 30) welcomes people who start a trial and nudges the
# free ones a day later; people start trials there and some open their messages. Set
# CUSTOMERIO_APP_TOKEN (and CUSTOMERIO_REGION) before starting JupyterLab to read a real campaign.
target = "auto"  # "auto": CUSTOMERIO_APP_TOKEN set -> that workspace, else the emulator; or "env", "emulator"
region = None  # "us" or "eu" for a real workspace (default: CUSTOMERIO_REGION, else us)
campaign_id = 30  # the campaign whose funnel to draw
trial_people = 60  # on the emulator: how many people start a trial
open_share = 0.6  # on the emulator: the share of delivered messages their readers open
"""

CONNECT = """\
import matplotlib.pyplot as plt
import pandas as pd

from cio_flows.analysis import Workspace, freshness, funnel, plot_funnel

pd.set_option("display.max_columns", 30)
pd.set_option("display.width", 160)

ws = Workspace.connect(target, region=region)
ws  # where the data comes from; keys are never shown
"""

START_TRIALS = '''\
import tempfile
import time
from pathlib import Path

import requests

TRIALS_FLOW = """
version: 1
name: start_trials
for_each: {file: trials.csv, key: "{{ row.id }}"}
steps:
  - identify:
      userId: "{{ row.id }}"
      traits: {email: "{{ row.email }}", first_name: "{{ row.first_name }}", plan: "{{ row.plan }}"}
  - track: {userId: "{{ row.id }}", event: trial_started}
"""

triggered = None
if ws.is_emulator:
    folder = Path(tempfile.mkdtemp(prefix="journeys-"))
    plans = ["free", "free", "pro"]  # two in three stay free: the nudge goes to them only
    trials = pd.DataFrame(
        {
            "id": [f"trial_{n:03d}" for n in range(trial_people)],
            "email": [f"trial{n}@example.com" for n in range(trial_people)],
            "first_name": [f"Person{n}" for n in range(trial_people)],
            "plan": [plans[n % 3] for n in range(trial_people)],
        }
    )
    trials.to_csv(folder / "trials.csv", index=False)
    (folder / "start_trials.yaml").write_text(TRIALS_FLOW, encoding="utf-8")
    started = ws.run(folder / "start_trials.yaml")
    triggered = trial_people
    print(f"{trial_people} people started a trial: {started['status'].value_counts().to_dict()}")

    # The campaign waits 2 s (on the emulator's clock, at wall speed), then welcomes each of them.
    deadline = time.monotonic() + 60
    while len(ws.messages(campaign_id=campaign_id, refresh=True)) < trial_people:
        if time.monotonic() > deadline:
            raise TimeoutError("the campaign's welcome messages did not all arrive")
        time.sleep(0.5)
    # A day passes: the win-back nudge goes to those still on the free plan.
    print("clock:", ws.emulator.advance_clock("1d")["iso"])

    # Readers open some messages and click a few, as their mail clients report it.
    sent = ws.messages(campaign_id=campaign_id, refresh=True)
    reader = sent.sample(frac=open_share, random_state=7)
    for delivery_id in reader["id"]:
        body = {"delivery_id": delivery_id, "metric": "opened"}
        requests.post(f"{ws.emulator.url}/api/v1/metrics", json=body, timeout=30)
    for delivery_id in reader["id"].head(len(reader) // 3):
        body = {"delivery_id": delivery_id, "metric": "clicked"}
        requests.post(f"{ws.emulator.url}/api/v1/metrics", json=body, timeout=30)
else:
    print("a real workspace: reading the campaign as it is (nothing is sent)")
'''

FUNNEL = """\
messages = ws.messages(campaign_id=campaign_id, refresh=True)
print(f"{len(messages)} messages of campaign {campaign_id}, {freshness(messages)}")
steps = funnel(messages, ["action_id", "template"]).sort_index()
if triggered is not None:
    steps.insert(0, "triggered", triggered)
steps
"""

CHART = """\
if len(steps):
    fig, ax = plt.subplots(figsize=(9, 4), layout="constrained")
    plot_funnel(steps, ax, f"Campaign {campaign_id}: each step from sent to clicked")
    if triggered is not None:
        ax.axhline(triggered, color="black", linestyle="--", linewidth=1)
        ax.text(-0.4, triggered, f" triggered: {triggered}", va="bottom")
    plt.show()
"""


def cells(code, markdown, close: str) -> list:
    return [
        markdown(
            """
            # Journeys

            A campaign's funnel from its trigger to the open: how many people entered, and for
            each of its messages how many were sent, delivered, opened and clicked. On the
            emulator, people start a trial, the "Trial journey" campaign welcomes them, a day
            passes on the emulator's clock and the free ones get a nudge; then some open.
            """
        ),
        code(PARAMETERS, "parameters"),
        code(CONNECT),
        markdown("## People enter the journey (emulator only)"),
        code(START_TRIALS),
        markdown(
            """
            ## The funnel per step of the campaign

            One row per campaign message (its action and template): messages reaching each stage
            and the rates between them. `triggered` is how many people entered the campaign.
            """
        ),
        code(FUNNEL),
        code(CHART),
        code(close),
    ]
