"""Things that must stay quick, timed here instead of in tests/ (a busy machine made those flaky).

    .venv/bin/python benchmarks/quick_answers.py [--repeat 5]

- the demo workspace: `Emulator()` loading it, against `Emulator(workspace={})` (an empty one);
  goal: under 0.5 s on a quiet machine;
- template bombs: each over-the-limit template of tests/test_templating.py refused, against
  rendering a plain `{{ row.id }}`; goal: each refused in well under a second.

Best of --repeat; ratios are against the reference measured in the same run.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from cio_flows.emulator import Emulator
from cio_flows.emulator import workspace as emulator_workspace
from cio_flows.errors import Location, TemplateError
from cio_flows.flow.templating import render_value

HERE = Location("benchmark", 1, 1)

BOMBS = [
    "{{ 'x' * 10**9 }}",
    "{{ [1] | batch(10**9, 0) | list }}",
    "{{ [1] | slice(10**9) | list }}",
    "{% for i in range(100000) %}{{ 'x' * 1000000 }}{% endfor %}",
    "{% macro f(s, n) %}{{ f(s ~ s, n - 1) if n else s }}{% endmacro %}{{ f('x', 60) }}",
]


def best(action: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def start_and_close(workspace: dict[str, object] | None) -> None:
    emulator_workspace._cache.clear()  # a cold load each time, as a fresh process has
    Emulator(workspace=workspace).close()


def refused(template: str) -> None:
    try:
        render_value(template, {"row": {"id": "u1"}}, lambda _path: HERE)
    except TemplateError:
        return
    raise SystemExit(f"not refused: {template}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    empty = best(lambda: start_and_close({}), args.repeat)
    demo = best(lambda: start_and_close(None), args.repeat)
    verdict = "ok" if demo < 0.5 else "over the 0.5 s goal"
    print(f"emulator, demo workspace: {demo:.3f} s ({demo / empty:.1f}x an empty one); {verdict}")

    reference = best(
        lambda: render_value("{{ row.id }}", {"row": {"id": "u1"}}, lambda _path: HERE),
        args.repeat,
    )
    for template in BOMBS:
        took = best(lambda t=template: refused(t), args.repeat)
        print(
            f"refused in {took * 1000:.1f} ms ({took / reference:,.0f}x a plain render): {template}"
        )


if __name__ == "__main__":
    main()
