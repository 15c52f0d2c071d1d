"""`python -m cio_flows.emulator`: the same command line as `cio-flows emulator` (command.py)."""

from __future__ import annotations

from .command import main

if __name__ == "__main__":
    main()
