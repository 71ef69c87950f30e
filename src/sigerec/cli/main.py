"""The ``sigerec`` command line (Typer): data, encode, train, evaluate, compare, models, demo,
tune, export, recommend, similar, serve."""

from __future__ import annotations

import typer

from sigerec.cli.data_commands import data_app
from sigerec.cli.encode_commands import encode_app
from sigerec.cli.export_commands import register_export_commands
from sigerec.cli.run_commands import register_run_commands
from sigerec.cli.serve_command import register_serve_command
from sigerec.cli.tune_command import register_tune_command

app = typer.Typer(
    help="sigerec: train, evaluate and compare graph-based multimodal recommenders.",
    epilog=(
        "Example: sigerec train --data baby --model lightgcn, then sigerec compare runs/*. "
        "Data: sigerec data import / data stats; content features: sigerec encode text / encode image."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(data_app, name="data")
app.add_typer(encode_app, name="encode")
register_run_commands(app)
register_export_commands(app)
register_serve_command(app)
register_tune_command(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
