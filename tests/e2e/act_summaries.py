"""What an act run of pipeline.yml should leave as job summaries, for the act end-to-end test.

act sets $GITHUB_STEP_SUMMARY per step to a file it empties at the next step and deletes with
the job, so pass ``--env PLATFORM_KIT_SUMMARY_DIR=DIR`` (writable by the user act runs the jobs
as) and ``--env GITHUB_RUN_ID=<unique>`` (act's default run id is 1 for every run) to
infra/act-pipeline.sh; the kit then also writes every summary to its own file
``DIR/<GITHUB_JOB>-<ns>-<pid>.md``. Then call :func:`assert_pipeline_summaries`.
"""

from __future__ import annotations

import re
from pathlib import Path


def summaries(directory: Path) -> dict[str, list[str]]:
    """The summaries in ``directory`` by job (``plan``, ``train``, ``results``, ``release``...)."""
    out: dict[str, list[str]] = {}
    for path in sorted(directory.glob("*.md")):
        job = path.name.rsplit("-", 2)[0]
        out.setdefault(job, []).append(path.read_text())
    return out


def assert_pipeline_summaries(
    directory: Path,
    models: list[str],
    shards: int,
    *,
    failed: list[str] | None = None,
    released: bool = True,
) -> None:
    """A dispatch run that trained ``models`` in ``shards`` jobs (``failed`` failed)."""
    failed = failed or []
    found = summaries(directory)
    (plan,) = found["plan"]
    assert all(f"| {m} | yes |" in plan for m in models), plan
    trains = found["train"]
    assert len(trains) == shards
    assert sorted(int(re.findall(r"^## train \(job (\d+)/", t)[0]) for t in trains) == list(
        range(1, shards + 1)
    )
    (results,) = found["results"]
    head = re.search(r"^## training results of run \S+: (\d+) trained, (\d+) failed", results, re.M)
    assert head and head.groups() == (str(len(models)), str(len(failed))), results[:300]
    assert all(f"| {m} | trained | " in results for m in models)
    assert all(f"| {m} | ❌ failed | " in results for m in failed)
    if released:
        (release,) = found["release"]
        assert release.startswith("## release `") and "```mermaid\nflowchart LR\n" in release
