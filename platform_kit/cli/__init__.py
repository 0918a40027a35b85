"""The ``platform-kit`` command line: parse, call one library function, render.

``main()`` is the only place that catches errors, and nothing it prints skips secret redaction:

- a :class:`PlatformKitError` prints one line (a traceback too with ``--verbose``) and exits with
  the error's code (1, 2 or 3; see :mod:`platform_kit.errors`);
- any other exception is a bug: one line naming it, the traceback with ``--verbose``, exit 70
  (``EX_SOFTWARE`` of sysexits.h);
- Ctrl-C exits 130; a reader that went away (``platform-kit data log | head``) ends the command
  quietly with 141, as a program killed by SIGPIPE would.
"""

from __future__ import annotations

import argparse
import logging
import os
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
    reproduce,
    run,
    services,
    summary,
    sync,
    train,
)
from platform_kit.cli.common import annotate_error, apply_global_defaults, global_flags, stderr
from platform_kit.errors import PlatformKitError

COMMANDS = (
    init,
    services,
    sync,
    data,
    plan,
    train,
    run,
    release,
    model,
    lineage,
    github,
    reproduce,
    summary,
)
EXIT_INTERNAL_ERROR = 70  # sysexits.h EX_SOFTWARE: a bug in the kit, not in the user's input
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE


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
        code = int(args.handler(args))
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return code
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except PlatformKitError as exc:
        if args.verbose:
            stderr.print(env.redact(traceback.format_exc()), markup=False)
        stderr.print(f"error: {env.redact(str(exc))}", markup=False)
        annotate_error(args, exc)
        return exc.exit_code
    except KeyboardInterrupt:
        stderr.print("interrupted", markup=False)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if args.verbose:
            stderr.print(env.redact(traceback.format_exc()), markup=False)
        stderr.print(f"error: {internal_error_line(exc)}", markup=False)
        return EXIT_INTERNAL_ERROR


def internal_error_line(exc: BaseException) -> str:
    """One redacted line for an error the kit did not expect (a bug)."""
    text = " ".join(env.redact(str(exc)).split())  # one line, whatever the library wrote
    if len(text) > 300:  # cut after redacting: half a secret is still a leak
        text = text[:297] + "..."
    what = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return (
        f"internal error: {what} (a bug in platform-kit; rerun with --verbose for the traceback "
        "and report it)"
    )


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit does not fail on the closed pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout replaced by something without a descriptor
        pass
    finally:
        os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
