"""What every command shares: global flags, config loading, and rendering for people or --json."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table

from platform_kit.config import DEFAULT_CONFIG, Config, load_config
from platform_kit.project import NOTHING, Project

# stdout carries results (and only JSON with --json); progress and notes go to stderr.
# Piped or captured (CI logs, `| less`), rich would cut trees and tables at 80 columns.
_PIPED_WIDTH = 160
stdout = Console(
    highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else _PIPED_WIDTH
)
stderr = Console(
    stderr=True,
    highlight=False,
    soft_wrap=True,
    width=None if sys.stderr.isatty() else _PIPED_WIDTH,
)


GLOBAL_DEFAULTS = {"config": DEFAULT_CONFIG, "json": False, "verbose": False}


def global_flags() -> argparse.ArgumentParser:
    """The parent parser that gives every command --config, --json and --verbose.

    Defaults are suppressed so that a flag given at any level (``platform-kit --json data log``
    or ``platform-kit data log --json``) is not overwritten by a lower level's default;
    :func:`apply_global_defaults` fills in the rest after parsing.
    """
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--config",
        default=argparse.SUPPRESS,
        metavar="PATH",
        help="the project's platform.yaml (default: ./platform.yaml)",
    )
    parent.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="machine-readable output on stdout",
    )
    parent.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        default=argparse.SUPPRESS,
        help="tracebacks and debug logs",
    )
    return parent


def apply_global_defaults(args: argparse.Namespace) -> argparse.Namespace:
    for key, value in GLOBAL_DEFAULTS.items():
        if not hasattr(args, key):
            setattr(args, key, value)
    return args


def config_of(args: argparse.Namespace) -> Config:
    return load_config(args.config)


def project_of(args: argparse.Namespace) -> Project:
    """The command's one :class:`Project`, with the services its parser declared (``needs``)
    checked, and started where the command may start local ones."""
    return Project.for_command(config_of(args), getattr(args, "needs", NOTHING))


def emit(args: argparse.Namespace, data: Any, human: Callable[[], None] | None = None) -> None:
    """Print ``data`` as JSON with --json, else call ``human`` (or pretty-print ``data``)."""
    if args.json:
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    elif human is not None:
        human()
    else:
        stdout.print(data)


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> Table:
    out = Table(title=title, show_lines=False, header_style="bold")
    for column in columns:
        out.add_column(column)
    for row in rows:
        out.add_row(*["" if v is None else str(v) for v in row])
    return out


def note(message: str) -> None:
    """A line for people on stderr, never mixed into --json output."""
    stderr.print(message)
