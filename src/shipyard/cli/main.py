"""Entry point of the ``shipyard`` command: registers the groups, turns errors into one line."""

from __future__ import annotations

import sys

import typer

from shipyard.cli import datasets, db, experiments, features, flows, lineage, models, run, runs
from shipyard.cli import serve as serve_command
from shipyard.errors import ShipyardError

app = typer.Typer(
    name="shipyard",
    help="shipyard: tracking, datasets, models, flows, serving and monitoring in one tool.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(experiments.app, name="experiments")
app.add_typer(runs.app, name="runs")
app.add_typer(models.app, name="models")
app.add_typer(datasets.app, name="datasets")
app.add_typer(flows.app, name="flows")
app.add_typer(db.app, name="db")
app.add_typer(features.app, name="features")
app.command("run")(run.run)
app.command("scheduler")(run.scheduler)
app.command("lineage")(lineage.lineage)
app.command("serve")(serve_command.serve)
app.command("gc")(db.gc)


def main() -> None:
    """Run the CLI; a ShipyardError prints one readable line and exits with status 2."""
    try:
        app(standalone_mode=False)
    except ShipyardError as exc:
        typer.echo(f"error: {exc.message.splitlines()[0] if exc.code != 'invalid_filter' else exc.message}", err=True)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("aborted", err=True)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # click usage errors and the like
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(2)
        raise


if __name__ == "__main__":
    main()
