"""Every notebook in notebooks/ runs headless, top to bottom, without a cell error; twice:

- as on a fresh install: no CUSTOMERIO_* variables, so each notebook starts the emulator with
  the demo workspace in its own kernel;
- with credentials set, as against a real workspace: distinctive fake keys in the environment,
  and the App/Track/Pipelines URLs pointing at an emulator that accepts exactly those keys.

No output of either run may contain a key, in the clear or in an encoded Authorization header.
Both run with the notebook's folder as the working directory, as JupyterLab does; the README's
papermill commands run from the repository root (and the flow runner from a foreign directory).
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbclient
import nbformat
import pytest
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook

from cio_flows.emulator import DEMO_CREDENTIALS, Credentials, Emulator

pytestmark = pytest.mark.slow  # real Jupyter kernels

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
NAMES = (
    "people_explorer.ipynb",
    "segment_analysis.ipynb",
    "flow_runner.ipynb",
    "deliveries.ipynb",
    "journeys.ipynb",
)
# The deliveries notebook reads a workspace with a message history: the generated demo.
DELIVERIES_DEMO = {"demo": {"people": 1500}}
# Reads of a real workspace are cached under the user's cache directory: a scratch one here.
SCRATCH_CACHE = tempfile.mkdtemp(prefix="cio-flows-nb-cache-")
KERNEL = "python3"
CELL_TIMEOUT = 120

FAKE_KEYS = Credentials(
    site_id="nbsite-5f3a",
    track_key="nbtrack-7c1e9d-secret",
    pipelines_key="nbpipe-2b8f4a-secret",
    app_key="nbapp-9d6e3c-secret",
)


def _kernel_env(**extra: str) -> dict[str, str]:
    """This process's environment without Customer.io settings; inline plots stay on."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("CUSTOMERIO_") and k != "MPLBACKEND"
    }
    env["XDG_CACHE_HOME"] = SCRATCH_CACHE
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def kernel() -> str:
    """The venv's python3 kernel; its kernelspec is installed into sys.prefix if missing."""
    from jupyter_client.kernelspec import KernelSpecManager

    if KERNEL not in KernelSpecManager().find_kernel_specs():
        from ipykernel import kernelspec

        kernelspec.install(prefix=sys.prefix)
    return KERNEL


def _execute(name: str, kernel: str, env: dict[str, str], **parameters: Any):
    notebook = load_notebook_node(str(NOTEBOOKS / name))
    if parameters:  # the way papermill does it: a cell after the one tagged `parameters`
        notebook = parameterize_notebook(notebook, parameters)
    client = nbclient.NotebookClient(
        notebook,
        kernel_name=kernel,
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(NOTEBOOKS)}},  # the notebook's folder is its cwd
    )
    client.execute(env=env)  # raises CellExecutionError, naming the cell, on any error
    return notebook


@pytest.fixture(scope="module")
def fresh_install(kernel: str) -> dict[str, Any]:
    return {name: _execute(name, kernel, _kernel_env()) for name in NAMES}


def _credentials_env(emulator: Emulator) -> dict[str, str]:
    return _kernel_env(
        CUSTOMERIO_SITE_ID=FAKE_KEYS.site_id,
        CUSTOMERIO_TRACK_TOKEN=FAKE_KEYS.track_key,
        CUSTOMERIO_PIPELINES_KEY=FAKE_KEYS.pipelines_key,
        CUSTOMERIO_APP_TOKEN=FAKE_KEYS.app_key,
        CUSTOMERIO_APP_URL=emulator.url,
        CUSTOMERIO_TRACK_URL=emulator.url,
        CUSTOMERIO_PIPELINES_URL=emulator.url,
    )


@pytest.fixture(scope="module")
def with_credentials(kernel: str) -> Iterator[dict[str, Any]]:
    with Emulator(credentials=FAKE_KEYS) as emulator:
        env = _credentials_env(emulator)
        notebooks = {
            name: _execute(
                name,
                kernel,
                env,
                **({"run_on_real_workspace": True} if name == "flow_runner.ipynb" else {}),
            )
            for name in NAMES
            if name != "deliveries.ipynb"
        }
    with Emulator(credentials=FAKE_KEYS, workspace=DELIVERIES_DEMO) as emulator:
        env = _credentials_env(emulator)
        notebooks["deliveries.ipynb"] = _execute("deliveries.ipynb", kernel, env)
    yield notebooks


def _outputs(notebook) -> list[dict[str, Any]]:
    return [output for cell in notebook.cells for output in cell.get("outputs", [])]


def _text(notebook) -> str:
    """Every output as text: streams, tracebacks, and each non-image representation."""
    parts = []
    for output in _outputs(notebook):
        parts.append(output.get("text", ""))
        parts.extend(output.get("traceback", []))
        for mime, value in output.get("data", {}).items():
            if not mime.startswith("image/"):
                parts.append(value if isinstance(value, str) else json.dumps(value))
    return "\n".join(parts)


def _forbidden(keys: Credentials) -> list[str]:
    """The keys, and the Authorization header values built from them."""
    basic = [f"{keys.site_id}:{keys.track_key}", f"{keys.pipelines_key}:"]
    encoded = [base64.b64encode(pair.encode()).decode() for pair in basic]
    return [*keys.secrets(), *encoded]


def _demo_segments() -> list[dict[str, Any]]:
    with Emulator() as emulator:
        return emulator.inspect.segments()


# --- the committed notebooks ----------------------------------------------------------------


def test_committed_notebooks_are_built_and_have_no_outputs() -> None:
    spec = importlib.util.spec_from_file_location(
        "build_notebooks", NOTEBOOKS / "build_notebooks.py"
    )
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    assert set(builder.NOTEBOOKS) == set(NAMES)
    for name, build in builder.NOTEBOOKS.items():
        assert (NOTEBOOKS / name).read_text(encoding="utf-8") == builder.render(build), (
            f"{name} differs from notebooks/build_notebooks.py: run it"
        )
        notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
        nbformat.validate(notebook)
        code = [c for c in notebook.cells if c.cell_type == "code"]
        assert code[0].metadata.get("tags") == ["parameters"]
        assert all(not c.outputs and c.execution_count is None for c in code)


# --- fresh install: the emulator's demo workspace -------------------------------------------


def test_segment_analysis_draws_charts_with_the_demo_numbers(fresh_install) -> None:
    notebook = fresh_install["segment_analysis.ipynb"]
    images = [o for o in _outputs(notebook) if "image/png" in o.get("data", {})]
    assert len(images) >= 3  # sizes, overlap heatmap, distributions
    text = _text(notebook)
    for segment in _demo_segments():
        assert f"{segment['name']}: {segment['count']} people" in text
    assert "Newsletter subscribers: 140 people" in text  # the largest, charted member by member


def test_deliveries_notebook_charts_funnels_failures_and_a_broadcast(fresh_install) -> None:
    notebook = fresh_install["deliveries.ipynb"]
    images = [o for o in _outputs(notebook) if "image/png" in o.get("data", {})]
    assert len(images) >= 4  # funnels, failure reasons, time to open, the broadcast
    text = _text(notebook)
    assert "email:" in text and "delivered" in text
    assert "median time to open:" in text
    assert "broadcast Spring sale:" in text
    assert "mailbox unavailable" in text  # a bounce reason, the address blanked
    assert "tables: funnel_by_channel" in text


def test_deliveries_notebook_exports_its_tables(kernel: str, tmp_path: Path) -> None:
    notebook = _execute(
        "deliveries.ipynb", kernel, _kernel_env(), demo_people=400, export_dir=str(tmp_path)
    )
    assert "wrote 5 tables" in _text(notebook)
    table = (tmp_path / "funnel_by_channel.csv").read_text()
    assert table.startswith("channel,messages,sent,delivered,opened,clicked")


def test_people_explorer_shows_people_and_one_profile(fresh_install) -> None:
    notebook = fresh_install["people_explorer.ipynb"]
    text = _text(notebook)
    assert "300 people with" in text
    assert "diego.okafor1@example.org" in text  # user_0001, the profile shown
    assert "signed_up" in text  # their activities
    assert any("image/png" in o.get("data", {}) for o in _outputs(notebook))


def test_flow_runner_plans_then_runs_every_step(fresh_install) -> None:
    text = _text(fresh_install["flow_runner.ipynb"])
    assert "/v1/send/email" in text  # the plan
    assert "passed: 6 ok" in text  # the run
    assert "welcome" in text  # the delivery the emulator recorded
    # The %%cio_plan and %%cio_flow cells: the plan lists the cell's track, the run passes.
    assert "plan: 2 request(s), nothing sent; steps: identify #1, track #2" in text
    assert "passed: 2 ok" in text


def test_journeys_draws_the_trial_campaign_from_trigger_to_open(fresh_install) -> None:
    text = _text(fresh_install["journeys.ipynb"])
    assert "60 people started a trial" in text
    assert "messages of campaign 30" in text and "(just read)" in text
    # The funnel has a row per campaign message; 60 entered and all 60 got the welcome.
    welcome = next(line for line in text.splitlines() if "Welcome email (1)" in line)
    counts = welcome.split("Welcome email (1)", 1)[1].split()
    assert counts[:3] == ["60", "60", "60"]  # triggered, messages, sent
    assert "We miss you (3)" in text  # the nudge, to the free ones only


def test_no_demo_key_in_any_output(fresh_install) -> None:
    for name, notebook in fresh_install.items():
        text = _text(notebook)
        for secret in _forbidden(DEMO_CREDENTIALS):
            assert secret not in text, f"a key appears in the outputs of {name}"


# --- credentials set: the path a real workspace takes ---------------------------------------


def test_notebooks_use_the_credentials_when_set(with_credentials) -> None:
    for notebook in with_credentials.values():
        assert "Customer.io workspace, region us" in _text(notebook)
    assert "passed: 6 ok" in _text(with_credentials["flow_runner.ipynb"])
    assert "Pro plan: 87 people" in _text(with_credentials["segment_analysis.ipynb"])


def test_no_key_from_the_environment_in_any_output(with_credentials) -> None:
    for name, notebook in with_credentials.items():
        text = _text(notebook)
        for secret in _forbidden(FAKE_KEYS):
            assert secret not in text, f"a key appears in the outputs of {name}"


def test_flow_runner_does_not_write_to_a_real_workspace_unless_asked(kernel: str) -> None:
    with Emulator(credentials=FAKE_KEYS) as emulator:
        env = _kernel_env(CUSTOMERIO_APP_TOKEN=FAKE_KEYS.app_key, CUSTOMERIO_APP_URL=emulator.url)
        notebook = _execute("flow_runner.ipynb", kernel, env)
        writes = [r for r in emulator.inspect.requests() if r["family"] != "app"]
        deliveries = emulator.inspect.deliveries()
    assert "Not run" in _text(notebook)
    assert writes == [] and deliveries == []


# --- papermill from the repository root, as the README shows ----------------------------------


def _readme_papermill_block() -> list[list[str]]:
    """The commands of the README's shell block that runs papermill, split into words."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"```sh\n(.*?)```", readme, re.S) if "papermill" in b)
    return [shlex.split(line) for line in block.splitlines() if line.strip()]


def _local(word: str, out: Path) -> str:
    """The README's words, except that `.venv/bin/` is this interpreter's and `out/` is `out`."""
    if word.startswith(".venv/bin/"):
        return str(Path(sys.executable).parent / word.removeprefix(".venv/bin/"))
    if word == "out" or word.startswith("out/"):
        return str(out / word)
    return word


def _run(command: list[str], cwd: Path) -> None:
    done = subprocess.run(
        command, cwd=cwd, env=_kernel_env(), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{shlex.join(command)} in {cwd}:\n{done.stderr[-3000:]}"


def _papermill_output(path: Path):
    notebook = nbformat.read(path, as_version=4)
    assert not [o for o in _outputs(notebook) if o.get("output_type") == "error"]
    text = _text(notebook)
    for secret in _forbidden(DEMO_CREDENTIALS):
        assert secret not in text, f"a key appears in the outputs of {path.name}"
    return text


@pytest.fixture(scope="module")
def readme_papermill(kernel: str, tmp_path_factory) -> dict[str, str]:
    """Every notebook through the README's papermill command, run from the repository root:
    the README's block as written, then the same command for each other notebook."""
    out = tmp_path_factory.mktemp("papermill")
    commands = [[_local(w, out) for w in words] for words in _readme_papermill_block()]
    for command in commands:
        _run(command, ROOT)
    papermill, source, target = next(c for c in commands if "papermill" in c[0])[:3]
    assert Path(source).parent == Path("notebooks"), "the README runs a notebook from the root"
    texts = {Path(source).name: _papermill_output(Path(target))}
    for name in NAMES:
        if name not in texts:
            _run([papermill, f"notebooks/{name}", str(out / name)], ROOT)
            texts[name] = _papermill_output(out / name)
    return texts


def test_readme_papermill_command_runs_every_notebook_from_the_root(readme_papermill) -> None:
    assert set(readme_papermill) == set(NAMES)
    assert "passed: 6 ok" in readme_papermill["flow_runner.ipynb"]
    assert "300 people with" in readme_papermill["people_explorer.ipynb"]
    focus = next(s for s in _demo_segments() if s["id"] == 6)  # `-p focus_segment 6`
    assert (
        f"{focus['name']}: {focus['count']} people\n" in readme_papermill["segment_analysis.ipynb"]
    )


def test_flow_runner_runs_from_a_directory_outside_the_repository(kernel: str, tmp_path) -> None:
    papermill = str(Path(sys.executable).parent / "papermill")
    _run([papermill, str(NOTEBOOKS / "flow_runner.ipynb"), "out.ipynb"], tmp_path)
    assert "passed: 6 ok" in _papermill_output(tmp_path / "out.ipynb")


def test_readme_picture_renders_from_the_demo_data(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "render_readme_image", NOTEBOOKS / "render_readme_image.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    output = script.render(tmp_path / "segment-analysis.png")
    assert output.read_bytes().startswith(b"\x89PNG")
    committed = NOTEBOOKS.parent / "docs" / "segment-analysis.png"
    assert committed.read_bytes().startswith(b"\x89PNG")
    deliveries = script.render_deliveries(tmp_path / "deliveries.png", people=500)
    assert deliveries.read_bytes().startswith(b"\x89PNG")
    assert (NOTEBOOKS.parent / "docs" / "deliveries.png").read_bytes().startswith(b"\x89PNG")
