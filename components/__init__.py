"""r1-ranker domain library: importable, Prefect-free, tested on its own."""
