"""`python -m cio_flows.cli`: the same command line as `cio-flows`."""

from . import main

if __name__ == "__main__":
    main()
