"""`cio-flows serve FLOW`: an HTTP endpoint that runs a flow once for each webhook delivery."""
