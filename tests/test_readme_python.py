"""The README's Python blocks run as written, against the emulator a session without
credentials gets (`Workspace.connect()`): a call the README shows must not 404 on its demo."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def test_the_readme_has_its_python_blocks() -> None:
    assert len(BLOCKS) >= 2
    assert "Workspace.connect()" in BLOCKS[0]


def test_the_readme_python_blocks_run_on_the_emulator(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("SITE_ID", "TRACK_TOKEN", "PIPELINES_KEY", "APP_TOKEN", "REGION"):
        monkeypatch.delenv(f"CUSTOMERIO_{name}", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(ROOT)  # the README's paths (flows/onboarding.yaml) are from the top
    first, *rest = BLOCKS
    # The later blocks use the `ws` of the first: run them inside its `with`.
    body = "\n".join("    " + line for block in rest for line in block.splitlines())
    namespace: dict[str, object] = {}
    exec(compile(first + body + "\n", "README.md", "exec"), namespace)
    assert len(namespace["weekly"]) > 0  # type: ignore[arg-type]
    assert list(namespace["by_plan"].columns) == ["plan", "n"]  # type: ignore[attr-defined]
