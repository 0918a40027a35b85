"""A placeholder handler for commands whose issue has not landed yet."""

from __future__ import annotations

import argparse

from platform_kit.errors import NotImplementedYetError


def not_implemented(args: argparse.Namespace) -> int:
    name = " ".join(str(p) for p in (args.command, getattr(args, "action", None)) if p)
    raise NotImplementedYetError(name)
