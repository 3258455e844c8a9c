"""Command-line commands as data: `Command` and `arg`, and the registry plugins add theirs to.

cli.py declares the core's commands with these and turns every registered one into an
argparse subparser; plugins add theirs through the `register_commands` hook.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Arg:
    """One `add_argument` call: its name or flags and its keywords."""

    names: tuple[str, ...]
    options: Mapping[str, Any]


def arg(*names: str, **options: Any) -> Arg:
    """An argument of a command, written as for `ArgumentParser.add_argument`."""
    return Arg(names, options)


@dataclass(frozen=True)
class Command:
    """A command (`run` takes the parsed arguments and returns the exit status), or a group
    of `actions` (`python -m copr_lite NAME ACTION`).

    A command with `settings` takes `--config PATH` (the settings file); one that needs none
    (it works on no data directory) sets it False.
    """

    name: str
    help: str
    description: str
    run: Callable[[argparse.Namespace], int] | None = None
    args: tuple[Arg, ...] = ()
    actions: tuple[Command, ...] = ()
    settings: bool = True


@dataclass
class CommandRegistry:
    """The commands of `python -m copr_lite`, in the order `--help` lists them."""

    commands: list[Command] = field(default_factory=list)

    def add(self, command: Command, *, after: str | None = None) -> None:
        """Add `command` at the end of the list, or right after the command named `after`."""
        names = [known.name for known in self.commands]
        if command.name in names:
            raise ValueError(f"command {command.name!r} is already registered")
        if after is not None and after not in names:
            raise ValueError(f"no command {after!r} to add {command.name!r} after")
        position = len(names) if after is None else names.index(after) + 1
        self.commands.insert(position, command)


def add_parsers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    commands: list[Command],
    common: argparse.ArgumentParser,
) -> None:
    """Add each command (and its actions) as a subparser; `common` holds `--config`."""
    for command in commands:
        parents = [common] if command.settings and not command.actions else []
        parser = sub.add_parser(
            command.name, parents=parents, help=command.help, description=command.description
        )
        for argument in command.args:
            parser.add_argument(*argument.names, **argument.options)
        if command.actions:
            actions = parser.add_subparsers(
                dest=f"{command.name.replace('-', '_')}_command", required=True, metavar="ACTION"
            )
            add_parsers(actions, list(command.actions), common)
        else:
            parser.set_defaults(func=command.run)
