"""Cold starts of the command line: `cio-flows --help` and `cio-flows validate
flows/onboarding.yaml`, each a fresh process, best of --repeat; against a bare interpreter
(`python -c pass`) measured in the same run.

    .venv/bin/python benchmarks/cold_start.py [--repeat 5] [--against /path/to/other/checkout]

--against times the same commands with another checkout first on PYTHONPATH (e.g. a worktree
of an older commit) and prints the ratio. Also lists the heavy modules `validate` loads (none of
these should: requests, rfc3987_syntax, the journal, the executor, rich).
The checkouts' sources are byte-compiled first (compileall), as an install leaves them.
Targets (issue 25, full dev install): validate <= 0.5 s, --help <= 0.25 s.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLOW = ROOT / "flows" / "onboarding.yaml"
TARGETS = {"--help": 0.25, "validate": 0.5}
HEAVY = (
    "requests",
    "rfc3987_syntax",
    "rich",
    "cio_flows.run.journal",
    "cio_flows.run.executor",
    "cio_flows.wire.transport",
)
LOADED = (
    "import sys; from click.testing import CliRunner; from cio_flows.cli import main;"
    f" CliRunner().invoke(main, ['validate', {str(FLOW)!r}]);"
    f" print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
)


def best(command: list[str], root: Path, repeat: int) -> tuple[float, float]:
    """(wall, CPU) seconds, each the least of `repeat` runs: on a busy machine the CPU time (user
    + system of the child) is the steadier figure."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    runs = []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(command, cwd=root, env=env, capture_output=True, check=True)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        runs.append((wall, cpu))
    return min(wall for wall, _ in runs), min(cpu for _, cpu in runs)


def timings(root: Path, repeat: int) -> dict[str, tuple[float, float]]:
    # As an install leaves it: bytecode compiled (PYTHONDONTWRITEBYTECODE would otherwise have
    # every start compile the sources again).
    compile_all = [sys.executable, "-m", "compileall", "-q", str(root / "cio_flows")]
    subprocess.run(compile_all, check=True)
    cli = [sys.executable, "-m", "cio_flows.cli"]
    return {
        "python -c pass": best([sys.executable, "-c", "pass"], root, repeat),
        "--help": best([*cli, "--help"], root, repeat),
        "validate": best([*cli, "validate", str(FLOW)], root, repeat),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--against", type=Path, help="another checkout to compare with")
    args = parser.parse_args(argv)
    ours = timings(ROOT, args.repeat)
    theirs = timings(args.against, args.repeat) if args.against else None
    print(f"cold starts, best of {args.repeat} (flow: {FLOW.relative_to(ROOT)})")
    for name, (seconds, cpu) in ours.items():
        line = f"  {name:16} {seconds:6.3f} s (CPU {cpu:.3f} s)"
        if theirs is not None:
            other, other_cpu = theirs[name]
            line += f"   {args.against}: {other:6.3f} s (CPU {other_cpu:.3f} s)"
            line += f", {other / seconds:.2f}x"
        target = TARGETS.get(name)
        if target is not None:
            line += f"   target <= {target} s: {'met' if seconds <= target else 'NOT met'}"
        print(line)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    loaded = subprocess.run(
        [sys.executable, "-c", LOADED], cwd=ROOT, env=env, capture_output=True, text=True
    )
    print(f"  heavy modules validate loads: {loaded.stdout.strip() or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
