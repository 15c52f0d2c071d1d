"""`python -m cio_flows.emulator [--port N] [--db FILE] [--workspace FILE] [--limits customerio]`."""

from __future__ import annotations

import argparse

from .server import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cio_flows.emulator", description=__doc__)
    parser.add_argument("--port", type=int, default=8710)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--db", dest="db_path", default=None, help="SQLite file (default: memory)")
    parser.add_argument("--workspace", default=None, help="workspace YAML (default: the demo)")
    parser.add_argument("--empty", action="store_true", help="start with an empty workspace")
    parser.add_argument("--demo-people", type=int, default=None, help="generated demo of N people")
    parser.add_argument("--limits", default=None, help="'customerio' for the documented limits")
    args = parser.parse_args(argv)
    workspace = {} if args.empty else args.workspace
    if args.demo_people:
        workspace = {"demo": {"people": args.demo_people}}
    serve(args.port, args.db_path, workspace, limits=args.limits, host=args.host)


if __name__ == "__main__":
    main()
