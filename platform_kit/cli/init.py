"""platform-kit init [DIR]"""

from __future__ import annotations

import argparse
from pathlib import Path

from platform_kit.cli.common import emit, note, stdout
from platform_kit.init import init_project, project_name


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "init",
        parents=[parent],
        help="scaffold platform.yaml and a sample project",
        description="Write a commented platform.yaml and small sample sheets (CSV) into DIR. "
        "Existing files are left alone unless --force is given.",
    )
    parser.add_argument(
        "dir", nargs="?", default=".", help="where to create the project (default: .)"
    )
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    written = init_project(args.dir, force=args.force)
    root = Path(args.dir)
    config = written[0]

    def human() -> None:
        for path in written:
            stdout.print(f"wrote {path}")
        flag = "" if root.resolve() == Path.cwd() else f" --config {config}"
        note(
            f"next: platform-kit{flag} sync --dry-run (check the sheets), "
            f"then platform-kit{flag} run (sync, train and release on this machine)"
        )

    emit(
        args,
        {
            "directory": str(root.resolve()),
            "project": project_name(root),
            "config": str(config.resolve()),
            "files": [str(p.resolve()) for p in written],
        },
        human,
    )
    return 0
