"""platform-kit sync [--sheet NAME]... [--branch B] [--dry-run] [--push]"""

from __future__ import annotations

import argparse

from platform_kit import data
from platform_kit.cli.common import emit, note, project_of, stdout, table
from platform_kit.endpoints import Service
from platform_kit.errors import UsageError
from platform_kit.project import Needs
from platform_kit.sync import SyncReport, sync


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "sync",
        parents=[parent],
        help="read the sheets, validate them, commit the changes to Dolt",
        description="Read each configured sheet, validate it, and write its row-level changes as "
        "one Dolt commit on the branch sheets/<sheet> (or --branch). A sheet that did not change "
        "makes no commit. Invalid sheets write nothing and list every problem.",
    )
    parser.add_argument(
        "--sheet", action="append", metavar="NAME", help="only this sheet (repeatable)"
    )
    parser.add_argument(
        "--branch", help="write to this branch instead of sheets/<sheet> (e.g. main)"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the diff and write nothing")
    parser.add_argument(
        "--push",
        action="store_true",
        help="push each sheets/<sheet> branch to dolt.remote and print where to open its pull "
        "request (main is first brought up to the remote's)",
    )
    # A dry run too: it previews against the database the real sync writes to.
    parser.set_defaults(handler=run, needs=Needs({Service.DOLT}, start_local=True))


def run(args: argparse.Namespace) -> int:
    if args.push and args.dry_run:
        raise UsageError("--push cannot be used with --dry-run")
    project = project_of(args)
    store = project.store
    if args.push:
        data.require_remote(project.config)
        data.catch_up(project.config, store)  # new data branches start at the remote's main
        data.catch_up_branches(project.config, store, args.sheet)
    store.create_database()
    report = sync(
        project.config,
        store,
        sheets=args.sheet,
        branch=args.branch,
        dry_run=args.dry_run,
        progress=lambda line: note(f"  {line}"),
    )
    pushed: list[data.Pushed] = []
    if args.push:
        branches = data.to_review(project.config, store, [s.branch for s in report.sheets])
        pushed = data.push(project.config, store, branches)
    body = report.to_json()
    if args.push:
        body = {**body, "pushed": [vars(p) for p in pushed]}

    def human() -> None:
        render(report)
        render_pushed(pushed)

    emit(args, body, human)
    return 0


def render_pushed(pushed: list[data.Pushed]) -> None:
    for p in pushed:
        stdout.print(f"pushed {p.branch} @ {p.commit[:12]} to {p.remote}", markup=False)
        if p.pull_request:
            stdout.print(f"  open the pull request: {p.pull_request}", markup=False)
        else:
            stdout.print(
                f"  review: platform-kit data diff main {p.branch}; then merge it on the "
                "remote (its pull request, or DOLT_MERGE there)",
                markup=False,
            )


def render(report: SyncReport) -> None:
    rows = []
    for s in report.sheets:
        if not s.has_changes:
            outcome = "no changes: no commit"
        elif report.dry_run:
            outcome = "dry run: nothing written"
        else:
            outcome = f"commit {s.commit[:12] if s.commit else '?'}"
        rows.append(
            [
                s.sheet,
                s.branch,
                f"+{s.added} ~{s.changed} -{s.deleted}",
                ", ".join(s.new_columns) or "",
                f"{s.source}@{s.revision}",
                outcome,
            ]
        )
    stdout.print(
        table("sync", ["sheet", "branch", "rows", "new columns", "source", "result"], rows)
    )
    if report.dry_run:
        for s in report.sheets:
            for kind, sample in s.samples.items():
                for row in sample[:5]:
                    stdout.print(f"  {s.sheet} {kind}: {row}", markup=False)
