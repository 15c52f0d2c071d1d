"""`%%cio_plan` sends nothing, so like `cio-flows plan` it needs no keys: without --emulator
and with no CUSTOMERIO_* set it listed nothing and said "missing credentials" (outside probe)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from IPython.core.interactiveshell import InteractiveShell

CELL = """\
version: 1
name: cell_plan
steps:
  - identify: {userId: cell_user, traits: {plan: pro, token: "{{ env.PROBE_API_TOKEN }}"}}
"""


@pytest.fixture
def shell(monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    for name in ("SITE_ID", "TRACK_TOKEN", "PIPELINES_KEY", "APP_TOKEN", "REGION"):
        monkeypatch.delenv(f"CUSTOMERIO_{name}", raising=False)
    monkeypatch.setenv("PROBE_API_TOKEN", "probe-secret-token-123")
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "cio_flows")
    yield ip
    InteractiveShell.clear_instance()


def test_cio_plan_needs_no_keys_and_masks_secrets(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    table = shell.run_cell_magic("cio_plan", "", CELL)
    assert list(table["method"]) == ["PUT"]
    assert table["url"][0] == "https://track.customer.io/api/v1/customers/cell_user"
    assert "probe-secret-token-123" not in table.to_string()
    assert "1 request(s), nothing sent" in capsys.readouterr().out
