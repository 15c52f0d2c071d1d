"""The cassette file: vcrpy's YAML format (version 1: `interactions` of request and response,
and vcrpy's `metadata`), which vcrpy, pytest-recording and people read.

It is written with PyYAML rather than through vcrpy: vcrpy records by patching http.client for
the whole process, which would mix up flows that run at once (`--jobs`); the transport's
exchange hook and session factory (run/replay.py) are per run, and vcrpy stays a dev tool.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

import yaml

from ..errors import FlowInputError
from ..yaml_limits import YamlLimitError, safe_load

CASSETTE_VERSION = 1  # vcrpy's cassette format


def cassette_path(directory: str | Path, flow: str | Path, root: str | Path | None = None) -> Path:
    """The flow's cassette: its path relative to `root` (default the working directory) under
    `directory`, so a suite recorded by `cio-flows test` replays under pytest and back."""
    flow = Path(flow).resolve()
    base = Path(root or os.getcwd()).resolve()
    relative = flow.relative_to(base) if flow.is_relative_to(base) else Path(*flow.parts[1:])
    return Path(directory) / relative.with_suffix(".yaml")


@dataclass(frozen=True)
class Interaction:
    """One request and its answer, scrubbed."""

    method: str
    uri: str
    request_headers: dict[str, str]
    request_body: str | None
    status: int
    response_headers: dict[str, str]
    response_body: str | None

    def to_vcr(self) -> dict[str, Any]:
        try:
            reason = HTTPStatus(self.status).phrase
        except ValueError:
            reason = ""
        return {
            "request": {
                "method": self.method,
                "uri": self.uri,
                "body": self.request_body,
                "headers": {name: [value] for name, value in self.request_headers.items()},
            },
            "response": {
                "status": {"code": self.status, "message": reason},
                "headers": {name: [value] for name, value in self.response_headers.items()},
                "body": {"string": self.response_body or ""},
            },
        }

    @classmethod
    def from_vcr(cls, data: dict[str, Any]) -> Interaction:
        request, response = data["request"], data["response"]
        return cls(
            method=str(request["method"]).upper(),
            uri=str(request["uri"]),
            request_headers=_first_values(request.get("headers")),
            request_body=_text(request.get("body")),
            status=int(response["status"]["code"]),
            response_headers=_first_values(response.get("headers")),
            response_body=_text((response.get("body") or {}).get("string")),
        )


def _first_values(headers: dict[str, Any] | None) -> dict[str, str]:
    return {
        str(k): str(v[0] if isinstance(v, list) else v) for k, v in (headers or {}).items() if v
    }


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


@dataclass
class Cassette:
    flow: str
    run_id: str
    credentials: list[str]  # names of the credential variables set while recording
    helpers: dict[str, dict[str, list[Any]]]  # row -> helper -> values, in call order
    interactions: list[Interaction] = field(default_factory=list)

    def dump(self) -> str:
        metadata = {
            "flow": self.flow,
            "run_id": self.run_id,
            "credentials": self.credentials,
            "helpers": self.helpers,
        }
        data = {
            "version": CASSETTE_VERSION,
            "interactions": [interaction.to_vcr() for interaction in self.interactions],
            "metadata": {"cio_flows": metadata},
        }
        return yaml.safe_dump(data)

    def write(self, path: Path) -> None:
        """Written whole or not at all (a temporary file renamed over the old one)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_text(self.dump(), encoding="utf-8")
        partial.replace(path)

    @classmethod
    def read(cls, path: Path) -> Cassette:
        """The cassette at `path`; FlowInputError (exit 2) naming it when it cannot be used."""
        if not path.is_file():
            raise FlowInputError(
                f"no cassette for this flow: {path}",
                expected="a cassette written by --record (cio-flows test PATH --record DIR)",
                found="no such file",
            )
        try:
            data = safe_load(path.read_text(encoding="utf-8"))  # alias bombs refused
            if data.get("version") != CASSETTE_VERSION:
                raise ValueError(f"version {data.get('version')!r}, expected {CASSETTE_VERSION}")
            meta = data["metadata"]["cio_flows"]
            return cls(
                flow=str(meta.get("flow", "")),
                run_id=str(meta["run_id"]),
                credentials=[str(name) for name in meta.get("credentials") or ()],
                helpers={str(k): dict(v) for k, v in (meta.get("helpers") or {}).items()},
                interactions=[Interaction.from_vcr(item) for item in data["interactions"] or ()],
            )
        except (OSError, UnicodeDecodeError, yaml.YAMLError, YamlLimitError) as exc:
            raise FlowInputError(f"cassette {path}: cannot read it ({exc})") from None
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise FlowInputError(
                f"cassette {path} is not one cio-flows recorded",
                expected="vcrpy's format with metadata.cio_flows (run_id, helpers)",
                found=f"{type(exc).__name__}: {exc}",
            ) from None
