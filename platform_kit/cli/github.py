"""platform-kit github dispatch WORKFLOW [--ref R] [--input K=V]... | github watch [--once]
| github webhook [--host H] [--port P] (DoltHub's hooks -> dolt-main-updated)"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from platform_kit.cli.common import emit, note, project_of, stdout
from platform_kit.config import Config, load_config
from platform_kit.endpoints import Service
from platform_kit.errors import ConfigError, UsageError
from platform_kit.project import NOTHING, Needs

if TYPE_CHECKING:  # PyGithub and requests load when a github command runs, not for --help
    from platform_kit.github import DispatchResult, WatchEvent

# The watcher and the webhook only read Dolt's head: they never start a local server.
READ_DOLT = Needs({Service.DOLT})


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("github", parents=[parent], help="trigger workflows, watch Dolt main")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    dispatch = actions.add_parser("dispatch", parents=[parent], help="workflow_dispatch a workflow")
    dispatch.add_argument("workflow", metavar="WORKFLOW", help="file name, e.g. pipeline.yml")
    dispatch.add_argument("--ref", default="main", help="git ref to run on (default: main)")
    dispatch.add_argument("--input", action="append", default=[], metavar="K=V")
    dispatch.set_defaults(needs=NOTHING)
    watch_parser = actions.add_parser(
        "watch", parents=[parent], help="dispatch dolt-main-updated on new heads"
    )
    watch_parser.add_argument("--once", action="store_true", help="check once and exit")
    watch_parser.add_argument(
        "--interval", type=float, default=60.0, metavar="S", help="seconds between polls"
    )
    watch_parser.set_defaults(needs=READ_DOLT)
    hook = actions.add_parser(
        "webhook",
        parents=[parent],
        help="receive DoltHub's push/pull request hooks; send dolt-main-updated when main moved",
    )
    hook.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    hook.add_argument("--port", type=int, default=8787, help="port (default: %(default)s)")
    hook.add_argument("--path", default="/", help="URL path DoltHub posts to (default: /)")
    hook.set_defaults(needs=READ_DOLT)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.action == "dispatch":
        return _dispatch(args)
    if args.action == "webhook":
        return _webhook(args)
    return _watch(args)


def _dispatch(args: argparse.Namespace) -> int:
    inputs = parse_inputs(args.input)
    from platform_kit.github import dispatch_workflow

    result = dispatch_workflow(_optional_config(args), args.workflow, args.ref, inputs)
    emit(args, result.to_json(), lambda: _render_dispatch(result))
    return 0


def _render_dispatch(result: DispatchResult) -> None:
    if result.run_url:
        stdout.print(result.run_url)
    else:
        note(
            f"dispatched {result.workflow} on {result.ref} in {result.repository}; "
            "GitHub did not report the run yet (see the Actions tab)"
        )


def _reporter(args: argparse.Namespace, config: Config) -> Callable[[WatchEvent], None]:
    """How watch and webhook report each event: a JSON line or a line for people."""

    def report(event: WatchEvent) -> None:
        if args.json:
            emit(args, event.to_json())
        else:
            _render_event(config, event)

    return report


def _watch(args: argparse.Namespace) -> int:
    project = project_of(args)
    config = project.config
    from platform_kit.github import watch

    watch(
        config,
        project.store,
        once=args.once,
        interval=args.interval,
        report=_reporter(args, config),
    )
    return 0


def _webhook(args: argparse.Namespace) -> int:
    from platform_kit.dolthub_webhook import make_server, receiver_for

    project = project_of(args)
    config = project.config
    receiver = receiver_for(config, project.store, report=_reporter(args, config))
    server = make_server(receiver, args.host, args.port, args.path)
    host, port = server.server_address[:2]
    note(f"receiving DoltHub hooks at http://{host!s}:{port}{args.path} (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _render_event(config: Config, event: WatchEvent) -> None:
    where = f"{config.dolt.database}/{config.dolt.main_branch}"
    if event.action == "dispatched":
        stdout.print(f"{where} at {event.head}: sent dolt-main-updated")
    elif event.action == "unchanged":
        note(f"{where} at {event.head}: unchanged since the last poll")
    elif event.action == "announced-elsewhere":
        note(f"{where} at {event.head}: already announced (another watcher or data merge --notify)")
    else:
        note(f"poll failed, trying again at the next one: {event.error}")


def parse_inputs(pairs: list[str]) -> dict[str, str]:
    """``["models=a b", "force=true"]`` -> ``{"models": "a b", "force": "true"}``."""
    inputs: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--input {pair!r} is not K=V")
        inputs[key.strip()] = value
    if len(inputs) > 25:
        raise UsageError(f"{len(inputs)} inputs given; workflow_dispatch takes 25 at most")
    return inputs


def _optional_config(args: argparse.Namespace) -> Config | None:
    """Dispatching needs only the repository, which GITHUB_REPOSITORY can give without a file."""
    try:
        return load_config(args.config)
    except ConfigError:
        if Path(args.config).exists():
            raise
        return None
