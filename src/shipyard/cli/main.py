"""Entry point of the ``shipyard`` command: registers the groups, turns errors into one line.

Exit statuses: 0 on success (bare ``shipyard`` or a bare group prints its help and exits
0, as ``git`` and ``docker`` do for an explicit request for help), 1 when the work itself
failed (a flow run that failed), 2 on a usage error or bad input (one ``error:`` line,
then the usage and where to get help, as click prints them), 130 when interrupted. No
path prints a traceback: anything unexpected is one line too.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, NoReturn

import typer

from shipyard.cli import build as build_command
from shipyard.cli import datasets, db, experiments, features, flows, lineage, models, run, runs
from shipyard.cli import monitor as monitor_command
from shipyard.cli import predict as predict_command
from shipyard.cli import serve as serve_command
from shipyard.cli import server as server_command
from shipyard.cli import stream as stream_command
from shipyard.cli import tokens as tokens_command
from shipyard.cli import ui as ui_command
from shipyard.errors import ShipyardError

app = typer.Typer(
    name="shipyard",
    help="shipyard: tracking, datasets, models, flows, serving and monitoring in one tool.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)
app.add_typer(experiments.app, name="experiments")
app.add_typer(runs.app, name="runs")
app.add_typer(models.app, name="models")
app.add_typer(datasets.app, name="datasets")
app.add_typer(flows.app, name="flows")
app.add_typer(db.app, name="db")
app.add_typer(features.app, name="features")
app.add_typer(monitor_command.app, name="monitor")
app.add_typer(tokens_command.app, name="tokens")
app.command("run")(run.run)
app.command("scheduler")(run.scheduler)
app.command("lineage")(lineage.lineage)
app.command("serve")(serve_command.serve)
app.command("server")(server_command.server)
app.command("stream")(stream_command.stream)
app.command("predict")(predict_command.predict)
app.command("build")(build_command.build)
app.command("gc")(db.gc)
app.command("ui")(ui_command.ui)


def _print_version(value: bool) -> None:
    if value:
        from shipyard import __version__

        typer.echo(f"shipyard {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    del version  # handled by its eager callback


def _usage_error(exc: typer.TyperException) -> NoReturn:
    """One ``error:`` line, then the usage line and the help hint (click's layout, lower-cased lead)."""
    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
        typer.echo(ctx.get_help())  # a bare group is a request for its help
        sys.exit(0)
    typer.echo(f"error: {exc.format_message().splitlines()[0]}", err=True)
    if ctx is not None:
        typer.echo(ctx.get_usage(), err=True)
        typer.echo(f"Try '{ctx.command_path} --help' for help.", err=True)
    sys.exit(2)


def main() -> None:
    """Run the CLI; a ShipyardError or a usage error prints one readable line and exits with status 2."""
    try:
        status = app(standalone_mode=False)
    except ShipyardError as exc:
        typer.echo(f"error: {exc.message.splitlines()[0] if exc.code != 'invalid_filter' else exc.message}", err=True)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("aborted", err=True)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:  # typer's vendored click: usage errors, bad parameters
        _usage_error(exc)
    except BrokenPipeError:  # `shipyard runs list --json | head`: the reader left; not an error to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit flush cannot fail again
        sys.exit(141)
    except Exception as exc:  # a bug: still one line, with what to report
        typer.echo(f"error: unexpected {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", err=True)
        typer.echo("this is a bug in shipyard; rerun with SHIPYARD_DEBUG=1 for the traceback", err=True)
        if _debug():
            raise
        sys.exit(1)
    # standalone_mode=False hands back the status of typer.Exit instead of exiting.
    sys.exit(status if isinstance(status, int) else 0)


def _debug() -> bool:
    return os.environ.get("SHIPYARD_DEBUG", "") not in ("", "0")


if __name__ == "__main__":
    main()
