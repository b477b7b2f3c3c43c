"""Logging setup for entry points (never called at import time)."""

from __future__ import annotations

import logging

from rich.logging import RichHandler


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(show_path=False, rich_tracebacks=False)],
        force=True,
    )
    # our own progress at INFO; third-party chatter (GX, MLflow, ...) only from WARNING up
    for noisy in ("great_expectations", "bm25s"):  # both set DEBUG/INFO levels of their own
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for name in ("components", "flows"):
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.INFO)
