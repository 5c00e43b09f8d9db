"""Running the system: the CLI, maintenance, the deploy and the benchmark harness."""
