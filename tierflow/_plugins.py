"""Plugin commands of `tierflow`: found by entry point, listed by name, imported when they run."""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from tierflow._cli_print import fail
from tierflow.errors import TierflowError

__all__ = ["PLUGIN_GROUP", "PluginGroup"]

PLUGIN_GROUP = "tierflow.commands"
# Help lines of the commands this package mounts; a plugin's own help shows once it is loaded.
_PLUGIN_HELP = {
    "eval": "Run an eval suite for one or more tier policies.",
    "calibrate": "Calibrate a benchmark graph's start tier, cascade and router.",
    "local": "Start/stop/inspect the local llama.cpp tier servers.",
    "cache": "Export or import the response cache (benchmark responses kept as a file).",
}


def _plugins() -> dict[str, EntryPoint]:
    """Commands declared by installed packages (ours: ``eval``, ``calibrate``, ``local``), first one wins."""
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=PLUGIN_GROUP):
        found.setdefault(ep.name, ep)
    return found


_PLUGINS = _plugins()


class _LazyCommand(TyperCommand):
    """Stands in for a plugin command in listings; ``load`` imports the real one."""

    def __init__(self, entry_point: EntryPoint) -> None:
        help_text = _PLUGIN_HELP.get(entry_point.name, f"(from {entry_point.value})")
        super().__init__(entry_point.name, help=help_text)
        self.entry_point = entry_point

    def load(self) -> Any:  # a click command of typer's (its click types are private)
        """The real command, mounted as `tierflow.cli` mounted it before it was lazy."""
        name = self.entry_point.name
        try:
            target = self.entry_point.load()
        except ImportError as exc:
            fail(TierflowError(f"command '{name}' is unavailable ({exc})"))
        help_text = _PLUGIN_HELP.get(name)  # None: the command's own help (docstring)
        holder = typer.Typer(add_completion=False)
        if not isinstance(target, typer.Typer):
            holder.command(name, help=help_text)(target)
        elif help_text is None:  # add_typer takes an explicit None as "no help"
            holder.add_typer(target, name=name)
        else:
            holder.add_typer(target, name=name, help=help_text)
        return typer.main.get_group(holder).commands[name]


class PluginGroup(TyperGroup):
    """The top-level group: built-in commands, then plugins, each imported only when it runs.

    Listing a command (``--help``, completion of names) needs only its name and help line, so
    plugins are listed by stand-ins; click resolves a command only to run it (or complete its
    options), which is where the stand-in is swapped for the imported command.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for name, ep in _PLUGINS.items():
            self.commands.setdefault(name, _LazyCommand(ep))  # built-in names win

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Any, list[str]]:
        """Click's resolution, with a plugin stand-in replaced by the real command."""
        name, cmd, rest = super().resolve_command(ctx, args)
        if isinstance(cmd, _LazyCommand):
            cmd = cmd.load()
        return name, cmd, rest
