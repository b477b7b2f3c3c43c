"""The `r1ranker` Typer app and what every command shares.

The options several commands take, the known errors turned into a message and
exit code 1 (`user_errors`, credentials in it redacted), and the start every
command makes (`command`): logging when it has `--verbose`, the error handling,
SIGTERM unwinding like an error (temp files removed, MLflow runs ended FAILED),
and its configuration (params.yaml, a profile, `--set` overrides). Before any
command, MLflow's and Prefect's telemetry default to off (`_before_any_command`).
The configuration is loaded on first use, inside the error handling, so a
command checks its own flags (an unknown ranker or stage) before it reads the
file, as it always has.

Components are imported inside functions: `r1ranker --help` stays fast.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.markup import escape

from cli.views import err_console

if TYPE_CHECKING:
    from components.params import Params
    from components.prompts import PromptConfig

app = typer.Typer(
    help="R1-Ranker: LLM rankers (DRanker, IRanker) trained with RL, as an MLOps workflow.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ParamsOpt = Annotated[Path, typer.Option("--params", help="The configuration file (DVC params).")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")]
ProfileOpt = Annotated[Optional[str], typer.Option("--profile", help="A profile in params.yaml (demo, tiny) merged over it.")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="Override a key: --set train.max_steps=2 (repeatable).")]


@app.callback()
def _before_any_command() -> None:
    from components.logs import telemetry_off

    telemetry_off()  # before a command imports MLflow or Prefect: both read the setting on import


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn the project's known errors into a one-paragraph message and exit code 1."""
    from components.config import ConfigError
    from components.datasets import UnknownTaskError
    from components.io import DataError
    from components.logs import redact
    from components.promotion import PromotionRefused
    from components.pypi import DownloadError
    from components.tracking import TrackingError
    from components.validation import ValidationFailed

    try:
        yield
    except ValidationFailed as err:
        err_console.print(f"[bold red]validation failed[/]: {len(err.failures)} expectation(s) (report: {escape(redact(str(err.report)))})")
        for line in err.failures:
            err_console.print(f"  {redact(line)}", markup=False, highlight=False)
        raise typer.Exit(1) from err
    except (ConfigError, DataError, DownloadError, UnknownTaskError, PromotionRefused, TrackingError, ValueError,
            FileNotFoundError) as err:
        err_console.print(f"[bold red]error[/]: {escape(redact(str(err)))}", highlight=False)  # user text is not markup
        raise typer.Exit(1) from err


@dataclass
class CommandConfig:
    """A command's configuration from `--params`, `--profile` and `--set`, parsed and loaded on first use."""

    path: Path | None = None
    profile: str | None = None
    sets: list[str] | None = None
    flags: dict[str, Any] = field(default_factory=dict)  # a command's flags as the keys they stand for

    @functools.cached_property
    def overrides(self) -> dict[str, Any]:
        """`--set a.b=1 --set c=[x]` -> {"a.b": 1, "c": ["x"]} (values read as YAML), then the flags given.

        A flag is a shorthand for `--set` (`r1ranker train --max-steps 2` = `--set train.max_steps=2`);
        flags left at None are not given.
        """
        from components.config import parse_override

        given = {key: value for key, value in self.flags.items() if value is not None}
        return {**dict(parse_override(o) for o in self.sets or []), **given}

    @functools.cached_property
    def params(self) -> Params:
        """params.yaml with the profile and the overrides merged in, type-checked."""
        from components.params import load_params

        return load_params(self.path, self.profile, self.overrides)

    @property
    def prompts(self) -> PromptConfig:
        """The `prompts` section as the prompt builders take it."""
        return self.params.prompts


@contextlib.contextmanager
def command(params: Path | None = None, *, profile: str | None = None, sets: list[str] | None = None,
            verbose: bool | None = None, flags: dict[str, Any] | None = None) -> Iterator[CommandConfig]:
    """The start of every command: logging (commands with `--verbose`), then its body under `user_errors`.

    It yields the command's configuration, read from `params` (with `flags`, dotted keys, as overrides)
    when the body first asks for it.
    """
    from components.io import sigterm_unwinds

    if verbose is not None:
        from components.logs import setup_logging

        setup_logging(verbose)
    with sigterm_unwinds(), user_errors():
        yield CommandConfig(params, profile, sets, dict(flags or {}))


def one_ranker_name(value: str | None) -> str | None:
    """`--ranker`'s callback: a former name (iterative, direct) still works, with a note giving the one name."""
    from components.prompts import FORMER_NAMES

    if value in FORMER_NAMES:
        err_console.print(f"note: --ranker {value} is now --ranker {FORMER_NAMES[value]} (the former name still works)",
                          highlight=False)
        return FORMER_NAMES[value]
    return value


def split_csv(values: list[str] | None) -> list[str] | None:
    """Accept both `-t a -t b` and `-t a,b`.

    >>> split_csv(["a", "b, c"])
    ['a', 'b', 'c']
    >>> split_csv(None) is None
    True
    """
    if not values:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def scorer_flags(values: list[str] | None) -> dict[str, str]:
    """`--scorer rec=pointer --scorer passage-5=query-likelihood` -> {key: scorer}; names are checked later.

    >>> scorer_flags(["rec=pointer", "passage-5 = query-likelihood"])
    {'rec': 'pointer', 'passage-5': 'query-likelihood'}
    """
    out = {}
    for item in split_csv(values) or []:
        key, sep, name = item.partition("=")
        if not sep or not key.strip() or not name.strip():
            raise ValueError(f"--scorer {item!r}: expected SCENARIO=NAME or TASK=NAME, e.g. rec=pointer")
        out[key.strip()] = name.strip()
    return out
