"""The ``platform-kit`` command line: parse, call one library function, render.

``main()`` is the only place that catches errors: a :class:`PlatformKitError` prints one line
(a traceback too with ``--verbose``) and exits with the error's code.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Sequence

from platform_kit import __version__, env
from platform_kit.cli import (
    data,
    github,
    init,
    lineage,
    model,
    plan,
    release,
    run,
    services,
    sync,
    train,
)
from platform_kit.cli.common import apply_global_defaults, global_flags, stderr
from platform_kit.errors import PlatformKitError

COMMANDS = (init, services, sync, data, plan, train, run, release, model, lineage, github)


def build_parser() -> argparse.ArgumentParser:
    parent = global_flags()
    parser = argparse.ArgumentParser(
        prog="platform-kit",
        parents=[parent],
        description="A self-hosted MLOps kit: Google Sheets -> Dolt -> PyTorch -> MLflow -> "
        "Docker releases, driven by GitHub Actions or one local 'platform-kit run'.",
    )
    parser.add_argument("--version", action="version", version=f"platform-kit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.register(sub, parent)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = apply_global_defaults(parser.parse_args(argv))
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        # Library chatter (mlflow, urllib3, docker) is noise for people; --verbose shows it.
        for noisy in ("mlflow", "urllib3", "docker", "alembic", "git"):
            logging.getLogger(noisy).setLevel(logging.ERROR)
    try:
        return int(args.handler(args))
    except PlatformKitError as exc:
        if args.verbose:
            stderr.print(env.redact(traceback.format_exc()), markup=False)
        stderr.print(f"error: {env.redact(str(exc))}", markup=False)
        return exc.exit_code
    except KeyboardInterrupt:
        stderr.print("interrupted", markup=False)
        return 130


if __name__ == "__main__":
    sys.exit(main())
