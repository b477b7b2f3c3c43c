"""`python -m cli` (and `accelerate launch -m cli`): the `r1ranker` command line."""

from cli import app

if __name__ == "__main__":
    app()
