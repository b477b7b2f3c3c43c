"""`r1ranker`: the command line. Each command is a thin call into one component.

One module per group of commands (`data`, `inspection`, `models`, `serve`,
`pipeline`); `core` holds the Typer app, the shared options and error handling
and the start every command makes (`command`); `views` does the printing.
Importing a group registers its commands on the app, so the import order below
is the order `r1ranker --help` lists them in.
"""

# isort: skip_file
from cli.core import app
from cli import data, inspection, models, serve, pipeline  # noqa: F401  (registers the commands, in this order)

__all__ = ["app"]
