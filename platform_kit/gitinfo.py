"""Which code a run used: the working repo's Git SHA, and the GitHub Actions run around it."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from platform_kit import env


def git_sha(root: Path) -> str | None:
    """The full commit SHA of the working repo: $GITHUB_SHA in Actions, else the repo holding
    ``root`` (the project), else the one holding the current directory, else the checkout the
    kit and its trainers run from (a project copied out of its repo, as in the demo).

    None when none is in a Git repo (or git is missing).
    """
    sha = env.get(env.GITHUB_SHA)
    if sha:
        return sha
    return _head(root) or _head(Path.cwd()) or _head(Path(__file__).resolve().parent)


def _head(root: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    out = done.stdout.strip()
    return out if done.returncode == 0 and out else None


@dataclass(frozen=True)
class GithubRun:
    """The GitHub Actions run around this process; both None outside Actions."""

    run_id: str | None
    workflow: str | None


def github_run() -> GithubRun:
    return GithubRun(env.get(env.GITHUB_RUN_ID) or None, env.get(env.GITHUB_WORKFLOW) or None)
