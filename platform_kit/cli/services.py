"""platform-kit services up|down|status"""

from __future__ import annotations

import argparse

from platform_kit import endpoints, services
from platform_kit.cli.common import config_of, emit, note, stdout, table
from platform_kit.endpoints import Service


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "services",
        parents=[parent],
        help="start/stop the local Dolt and MLflow servers",
        description="Start, stop or inspect the local dolt sql-server and MLflow server. "
        "Servers configured in platform.yaml (dolt.server, mlflow.tracking_uri) are never started.",
    )
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = config_of(args)
    if args.action == "down":
        stopped = services.services_down(config)
        emit(
            args, {"stopped": stopped}, lambda: note(f"stopped: {', '.join(stopped) or 'nothing'}")
        )
        return 0
    if args.action == "up":
        endpoints.refuse_local_in_actions(config, list(Service))
        statuses = services.services_up(config)
    else:
        statuses = endpoints.services_status(config)
    rows = [
        [
            s.name,
            s.url,
            "healthy" if s.healthy else "DOWN",
            "local" if s.managed else "external",
            s.detail,
        ]
        for s in statuses
    ]
    emit(
        args,
        {"services": [s.to_json() for s in statuses]},
        lambda: stdout.print(table(None, ["service", "url", "health", "kind", "detail"], rows)),
    )
    return 0 if all(s.healthy for s in statuses) else 3
