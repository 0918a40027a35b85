"""What every command shares: global flags, config loading, and rendering for people or --json."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from platform_kit import env, summary
from platform_kit.config import DEFAULT_CONFIG, Config, FileSource, load_config
from platform_kit.errors import ConfigError, PlatformKitError, ValidationError
from platform_kit.project import NOTHING, Project
from platform_kit.workflow_commands import annotation, in_ci

# stdout carries results (and only JSON with --json); progress and notes go to stderr.
# Piped or captured (CI logs, `| less`), rich would cut trees and tables at 80 columns.
_PIPED_WIDTH = 160
# In CI (GitHub Actions, act: which may give a job a terminal) nothing is redrawn: no live
# progress bars, no cursor moves, plain lines a log keeps.
CI = in_ci()
if CI:
    os.environ.setdefault(env.MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR, "false")
stdout = Console(
    highlight=False,
    soft_wrap=True,
    width=None if sys.stdout.isatty() and not CI else _PIPED_WIDTH,
    force_terminal=False if CI else None,
    force_interactive=False if CI else None,
)
stderr = Console(
    stderr=True,
    highlight=False,
    soft_wrap=True,
    width=None if sys.stderr.isatty() and not CI else _PIPED_WIDTH,
    force_terminal=False if CI else None,
    force_interactive=False if CI else None,
)


GLOBAL_DEFAULTS = {"config": DEFAULT_CONFIG, "json": False, "verbose": False, "summary": None}


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
    parent.add_argument(
        "--summary",
        default=argparse.SUPPRESS,
        metavar="FILE",
        help="append a Markdown summary of what the command did to FILE (in GitHub Actions it "
        "also goes to $GITHUB_STEP_SUMMARY)",
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


def write_summary(args: argparse.Namespace, markdown: Callable[[], str]) -> None:
    """Append the command's Markdown summary to --summary FILE and, in GitHub Actions, to
    $GITHUB_STEP_SUMMARY; ``markdown`` is only called when there is somewhere to write."""
    if not summary.targets(getattr(args, "summary", None)):
        return
    try:
        text = markdown()
    except PlatformKitError as exc:  # the command did its work: a summary never fails it
        note(f"no job summary: {env.redact(str(exc))}")
        return
    summary.write(text, getattr(args, "summary", None))


class Stages:
    """Lines of a multi-stage command: in GitHub Actions each stage is a ``::group::`` (opened
    when its first line comes, closed when the next stage starts or the command ends)."""

    def __init__(self) -> None:
        self.current: str | None = None

    def say(self, stage: str, line: str) -> None:
        if env.in_github_actions() and stage != self.current:
            self.close()
            stderr.file.write(f"::group::{stage}\n")
            self.current = stage
        note(f"[bold]{stage:>8}[/]  {line}")

    def close(self) -> None:
        if self.current is not None:
            stderr.file.write("::endgroup::\n")
            stderr.file.flush()
            self.current = None

    def __enter__(self) -> Stages:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_WHERE = re.compile(
    r"^sheet '(?P<sheet>[^']+)'(?:, row (?P<row>\d+))?(?:, column (?P<column>[^:]+))?: "
    r"(?P<message>.*)$"
)


def annotate_error(args: argparse.Namespace, exc: BaseException) -> None:
    """:func:`annotate` with the command's config, when it loads (for the sheets' files)."""
    if not env.in_github_actions() or not isinstance(exc, ValidationError):
        return
    try:
        config: Config | None = config_of(args)
    except Exception:  # the error may be the config itself; annotate without files
        config = None
    annotate(exc, config)


def annotate(exc: BaseException, config: Config | None = None) -> None:
    """In GitHub Actions, an ``::error::`` annotation per validation problem, titled with the
    sheet, row and column; with the file and line where the sheet is a file in the repository."""
    if not env.in_github_actions() or not isinstance(exc, ValidationError):
        return
    problems = exc.problems or [str(exc)]
    for problem in problems:
        match = _WHERE.match(problem)
        props: dict[str, str] = {}
        if match:
            where = [f"sheet {match['sheet']}"]
            if match["row"]:
                where.append(f"row {match['row']}")
            if match["column"]:
                where.append(f"column {match['column'].strip(chr(39))}")
            props["title"] = ", ".join(where)
            path = _sheet_file(config, match["sheet"])
            if path:
                props["file"] = path
                if match["row"]:
                    props["line"] = match["row"]
        stderr.file.write(annotation("error", env.redact(problem), **props) + "\n")
    stderr.file.flush()


def _sheet_file(config: Config | None, sheet: str) -> str | None:
    """The sheet's source file relative to the repository (the working directory), if any."""
    if config is None:
        return None
    try:
        source = config.sheet(sheet).source
    except ConfigError:
        return None
    # A CSV's row N is its line N (row 1: the header); an XLSX or a Google sheet has no lines.
    if not isinstance(source, FileSource) or source.file.suffix.lower() != ".csv":
        return None
    path = source.file if source.file.is_absolute() else config.root / source.file
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return None
