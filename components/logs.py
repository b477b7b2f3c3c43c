"""What the process reports, and to whom: logging setup for entry points (never called at import time), how
user text appears in messages, and third-party telemetry.

`redact` hides credentials (a tracking URI's `user:secret@`, a `token=` query parameter) in everything the
command line prints for an error and in every log record; `shown` cuts an echoed value to a bounded length,
so a huge or deeply nested value in a config or a record never floods an error message; `telemetry_off`
keeps MLflow and Prefect from reporting usage unless the user's environment turns it on.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import reprlib
from typing import Any

# scheme://user:secret@host -> scheme://***@host; ?token=...&api_key=... -> ?token=***
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@'\"]+@")
_SECRET_PARAM = re.compile(r"(?P<key>[?&;](?:access_)?(?:token|api[_-]?key|key|secret|password|passwd|pwd|sig|signature)=)"
                           r"[^&\s'\"#]+", re.IGNORECASE)


def redact(text: str) -> str:
    """`text` with the credentials in any URL it holds replaced by `***`.

    >>> redact("could not reach http://user:secret@mlflow:5000/api?token=abc&x=1")
    'could not reach http://***@mlflow:5000/api?token=***&x=1'
    """
    text = _USERINFO.sub(r"\g<scheme>***@", text)
    return _SECRET_PARAM.sub(r"\g<key>***", text)


# usage reporting of MLflow 3 and Prefect 3 (DO_NOT_TRACK: both); a value the user set is kept (README)
TELEMETRY_OFF = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def telemetry_off() -> None:
    """Default MLflow's and Prefect's telemetry to off; call it before either is imported (both decide then)."""
    for key, value in TELEMETRY_OFF.items():
        os.environ.setdefault(key, value)


class RedactingFilter(logging.Filter):
    """Redacts each record's final message (its arguments merged in), so no handler ever sees a credential."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


class _ShortRepr(reprlib.Repr):
    """`reprlib` bounds the work (levels, items, characters); strings are cut at the end and dictionaries keep
    their own order, as `repr` shows them."""

    def repr_str(self, x: str, level: int) -> str:
        return repr(x[: self.maxstring])

    def repr_dict(self, x: dict, level: int) -> str:
        if not x:
            return "{}"
        if level <= 0:
            return "{...}"
        pieces = [f"{self.repr1(k, level - 1)}: {self.repr1(v, level - 1)}" for k, v in itertools.islice(x.items(), self.maxdict)]
        return "{" + ", ".join(pieces + (["..."] if len(x) > self.maxdict else [])) + "}"



def shown(value: Any, width: int = 80) -> str:
    """`repr(value)` as an error message echoes it: at most `width` characters, never built in full.

    >>> shown("fast"), shown([1, 2]), shown("x" * 200, 12)
    ("'fast'", '[1, 2]', "'xxxxxxxx...")
    """
    short = _ShortRepr()
    short.maxlevel, short.maxdict, short.maxlist, short.maxtuple, short.maxset = 3, 8, 8, 8, 8
    short.maxstring = short.maxother = short.maxlong = width + 2
    text = short.repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def setup_logging(verbose: bool = False) -> None:
    from rich.logging import RichHandler

    handler = RichHandler(show_path=False, rich_tracebacks=False)
    handler.addFilter(RedactingFilter())  # a handler's filter sees every record it emits, from any logger
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(message)s",
        datefmt="[%X]",
        handlers=[handler],
        force=True,
    )
    # our own progress at INFO; third-party chatter (GX, MLflow, ...) only from WARNING up
    for noisy in ("great_expectations", "bm25s"):  # both set DEBUG/INFO levels of their own
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for name in ("components", "flows"):
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.INFO)
