"""``tierflow local up|down|status``: manage the llama.cpp servers behind local tiers."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tierflow.config import load_config
from tierflow.errors import TierflowError
from tierflow.local.servers import LocalServers

__all__ = ["local_app"]

local_app = typer.Typer(
    help="Run the small local models (llama.cpp on loopback) behind the tiers of a profile.",
    no_args_is_help=True,
)
_console = Console()

Profile = Annotated[str, typer.Option("--profile", "-p", help="Profile whose local tiers to use.")]
Tiers = Annotated[
    list[str] | None, typer.Option("--tier", "-t", help="Only this tier (repeatable).")
]


def _servers(profile: str) -> LocalServers:
    try:
        return LocalServers(load_config(profile, require_keys=False))
    except TierflowError as exc:
        _console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc


@local_app.command()
def up(
    profile: Profile = "local",
    tier: Tiers = None,
    wait_s: Annotated[float, typer.Option(help="Seconds to wait for each server.")] = 180.0,
) -> None:
    """Assemble the weights and start a server for each local tier that has none."""
    servers = _servers(profile)
    try:
        started = servers.up(tier or None, wait_s=wait_s)
    except TierflowError as exc:
        _console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    for rec in started:
        _console.print(f"started [bold]{rec.tier}[/bold] on port {rec.port} (pid {rec.pid})")
    if not started:
        _console.print("nothing to start: every selected tier is already served")
    status(profile)


@local_app.command()
def down(profile: Profile = "local", tier: Tiers = None) -> None:
    """Stop the servers that `tierflow local up` started."""
    servers = _servers(profile)
    try:
        stopped = servers.down(tier or None)
    except TierflowError as exc:
        _console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    _console.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@local_app.command()
def status(profile: Profile = "local") -> None:
    """Show each local tier: state, pid, port, model, resident memory."""
    table = Table(title=f"local servers ({profile})")
    for col in ("tier", "state", "pid", "port", "model", "RSS MB"):
        table.add_column(col, justify="right" if col in ("pid", "port", "RSS MB") else "left")
    colors = {"healthy": "green", "running": "yellow", "dead": "red", "external": "cyan"}
    for s in _servers(profile).status():
        color = colors.get(s.state, "dim")
        table.add_row(
            s.tier,
            f"[{color}]{s.state}[/{color}]",
            str(s.pid or "-"),
            str(s.port),
            s.model,
            f"{s.rss_mb:.0f}" if s.rss_mb is not None else "-",
        )
    _console.print(table)
