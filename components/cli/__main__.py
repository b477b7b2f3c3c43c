"""`python -m components.cli` (and `accelerate launch -m components.cli`): the `r1ranker` command line."""

from components.cli import app

if __name__ == "__main__":
    app()
