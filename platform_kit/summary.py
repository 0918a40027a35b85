"""Markdown job summaries: what a command did, for people reading a GitHub Actions run.

Each builder takes the JSON shape a command already prints with ``--json`` (the kit's stable
contract), so this module imports no backend. :func:`write` appends the text to every target:
``--summary FILE`` anywhere, ``$GITHUB_STEP_SUMMARY`` inside GitHub Actions, and a new file in
``$PLATFORM_KIT_SUMMARY_DIR`` when set (act sets ``$GITHUB_STEP_SUMMARY`` too, but empties it at
each step and deletes it with the job). Links to MLflow are added only when the tracking server
is http(s), where a browser can follow them.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from platform_kit import env

SAMPLE_ROWS = 5  # changed rows shown per sheet and kind
SAMPLE_COLUMNS = 8  # columns shown in a sample table


# ---------------------------------------------------------------------------- writing


def targets(explicit: str | None) -> list[Path]:
    """Where a summary goes: ``explicit`` (--summary FILE) and, inside GitHub Actions,
    $GITHUB_STEP_SUMMARY."""
    out = [Path(explicit)] if explicit else []
    step = env.get(env.GITHUB_STEP_SUMMARY)
    if step and env.in_github_actions() and Path(step) not in out:
        out.append(Path(step))
    keep = env.get(env.PLATFORM_KIT_SUMMARY_DIR)
    if keep:  # a file per summary: matrix jobs write at once
        job = re.sub(r"[^A-Za-z0-9_.-]", "_", env.get(env.GITHUB_JOB) or "local")
        out.append(Path(keep) / f"{job}-{time.time_ns()}-{os.getpid()}.md")
    return out


def write(markdown: str, explicit: str | None) -> list[Path]:
    """Append ``markdown`` to every target (GitHub concatenates a step's appends); the paths."""
    paths = targets(explicit)  # computed once: the copy's file name is unique per call
    text = env.redact(markdown).rstrip("\n") + "\n\n"
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            fh.write(text)
    return paths


# ---------------------------------------------------------------------------- links


class Links:
    """Browser links into the MLflow UI; empty strings where the server is not http(s)."""

    def __init__(self, tracking_uri: str | None) -> None:
        uri = (tracking_uri or "").rstrip("/")
        self.base = uri if uri.startswith(("http://", "https://")) else ""

    def run(self, run_id: str | None) -> str:
        return f"{self.base}/#/runs/{run_id}" if self.base and run_id else ""

    def version(self, name: str, version: int | str | None) -> str:
        if not self.base or version in (None, ""):
            return ""
        return f"{self.base}/#/models/{quote(name, safe='')}/versions/{version}"


def link(text: str, url: str) -> str:
    return f"[{text}]({url})" if url else text


# ---------------------------------------------------------------------------- Markdown


def cell(value: Any) -> str:
    """One table cell: pipes escaped, one line, short."""
    text = "" if value is None else str(value)
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= 200 else text[:197] + "..."


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = [
        "| " + " | ".join(cell(c) for c in columns) + " |",
        "|" + "|".join(" --- " for _ in columns) + "|",
    ]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _short(commit: str | None) -> str:
    return f"`{commit[:12]}`" if commit else "-"


def _metrics(metrics: Mapping[str, float], limit: int = 3) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items())[:limit])


# ---------------------------------------------------------------------------- per command


def sync(
    report: Mapping[str, Any],
    main: str = "main",
    review: Mapping[str, Mapping[str, Any]] | None = None,
) -> str:
    """``sync --json``: per sheet the rows added, changed and deleted, the Dolt commit, and a
    table of sample changed rows (the data review's diff)."""
    sheets = report.get("sheets", [])
    title = "## sync" + (" (dry run: nothing written)" if report.get("dry_run") else "")
    rows = []
    for s in sheets:
        changed = s["added"] or s["changed"] or s["deleted"] or s["new_columns"]
        if not changed:
            result = "no changes: no commit"
        elif s.get("commit"):
            result = f"commit {_short(s['commit'])}"
        else:
            result = "not written"
        rows.append(
            [
                s["sheet"],
                f"`{s['branch']}`",
                s["added"],
                s["changed"],
                s["deleted"],
                ", ".join(s["new_columns"]),
                f"{s['source']}@{s['revision']}",
                result,
            ]
        )
    parts = [
        title,
        table(
            ["sheet", "branch", "added", "changed", "deleted", "new columns", "source", "result"],
            rows,
        ),
    ]
    branches = sorted({s["branch"] for s in sheets if s.get("commit") and s["branch"] != main})
    if branches:
        parts.append(
            "To merge after review: run the **merge data** workflow with the branch "
            + ", ".join(f"`{b}`" for b in branches)
            + " (or `platform-kit data merge BRANCH --notify`)."
        )
    for sheet, diff in sorted((review or {}).items()):
        if diff.get("error"):
            parts.append(f"### review {sheet}: not available ({cell(diff['error'])})")
            continue
        head = (
            f"### review {sheet}: `{diff['branch']}` against `{diff['base']}`: "
            f"+{diff['added']} ~{diff['modified']} -{diff['deleted']} rows"
        )
        cells = diff.get("cells") or []
        parts.append(
            head
            + (
                "\n\nChanged cells of the first modified rows:\n\n"
                + table(["row key", "column", "before", "after"], cells)
                if cells
                else ""
            )
        )
    for s in sheets:
        for kind in ("added", "changed", "deleted"):
            sample = s.get("samples", {}).get(kind) or []
            if not sample:
                continue
            columns = list(sample[0])[:SAMPLE_COLUMNS]
            shown = sample[:SAMPLE_ROWS]
            more = s[kind] - len(shown)
            parts.append(
                f"### {s['sheet']}: {kind} rows ({len(shown)} of {s[kind]})\n\n"
                + table(columns, [[r.get(c) for c in columns] for r in shown])
                + (f"\n\n…and {more} more" if more > 0 else "")
            )
    return "\n\n".join(parts)


def merge(result: Mapping[str, Any]) -> str:
    """``data merge --json``: the branch, the target, the commit, and whether training starts."""
    if not result.get("changed"):
        return f"## data merge\n\nNothing to merge: `{result['into']}` already has `{result['branch']}`."
    how = "fast-forward" if result.get("fast_forward") else "merge commit"
    started = (
        "the dolt-main-updated dispatch was sent: the pipeline trains it"
        if result.get("notified")
        else "no dispatch sent"
    )
    return (
        f"## data merge\n\n`{result['branch']}` → `{result['into']}` at "
        f"{_short(result.get('commit'))} ({how}); {started}."
    )


def plan(report: Mapping[str, Any], shards: Sequence[Mapping[str, Any]]) -> str:
    """``plan --json``: every model, whether it trains and why, and the shards."""
    models = sorted(report.get("models", []), key=lambda d: (not d["train"], d["name"]))
    training = [d for d in models if d["train"]]
    head = (
        f"## plan: {len(training)} of {len(models)} models to train at "
        f"{_short(report.get('to_commit'))} in {len(shards)} job(s)"
    )
    decisions = table(
        ["model", "trains", "why", "detail", "latest version"],
        [
            [
                d["name"],
                "yes" if d["train"] else "no",
                d["reason"],
                d.get("detail", ""),
                d.get("latest_version") or "",
            ]
            for d in models
        ],
    )
    jobs = table(
        ["job", "models"],
        [[f"{s['index'] + 1}/{s['total']}", ", ".join(s["models"])] for s in shards],
    )
    return f"{head}\n\n{decisions}\n\n### jobs\n\n{jobs}"


def train(report: Mapping[str, Any], links: Links, *, title: str = "train") -> str:
    """``train --json``: each model with its version, metrics, promotion and time."""
    models = report.get("models", [])
    head = (
        f"## {title}: {report.get('trained', 0)} trained, {report.get('skipped', 0)} skipped, "
        f"{report.get('failed', 0)} failed at {_short(report.get('dolt_commit'))}"
        f" ({report.get('dolt_branch', '')}) in {report.get('seconds', 0):.1f}s"
    )
    return f"{head}\n\n{results_table(models, links)}"


def results_table(models: Sequence[Mapping[str, Any]], links: Links) -> str:
    """One row per model result (``train --json``'s ``models``), failures first."""
    order = {"failed": 0, "trained": 1, "skipped": 2}
    rows = []
    for m in sorted(models, key=lambda m: (order.get(m["status"], 3), m["name"])):
        status = m["status"]
        version = m.get("version")
        rows.append(
            [
                m["name"],
                ("❌ " if status == "failed" else "") + status,
                link(f"v{version}", links.version(m["name"], version)) if version else "",
                _metrics(m.get("metrics") or {}),
                "yes" if m.get("promoted") else ("no" if version else ""),
                m.get("promotion") or m.get("reason", ""),
                f"{m['seconds']:.1f}s" if m.get("seconds") is not None else "",
                link("run", links.run(m.get("run_id"))) if m.get("run_id") else "",
            ]
        )
    return table(
        ["model", "status", "version", "metrics", "promoted", "why", "time", "MLflow"], rows
    )


def release(
    result: Mapping[str, Any],
    previous: Mapping[str, str] | None,
    *,
    previous_tag: str | None = None,
    mermaid: str | None = None,
    links: Links | None = None,
) -> str:
    """``release build --json``: the tag, the image, the manifest's diff against the previous
    release, and the lineage graph (rendered by GitHub from a ``mermaid`` code block)."""
    links = links or Links(None)
    manifest: Mapping[str, str] = result.get("manifest", {})
    reference = result.get("reference") or f"{result.get('image')}:{result.get('tag')}"
    state = (
        "pushed and recorded"
        if result.get("pushed")
        else ("already in the registry" if not result.get("built", True) else "built locally")
    )
    parts = [f"## release `{result.get('tag')}`", f"Image `{reference}`: {state}."]
    before = dict(previous or {})
    rows = []
    for name in sorted(set(manifest) | set(before)):
        old, new = before.get(name), manifest.get(name)
        if old == new:
            continue
        change = "added" if old is None else ("removed" if new is None else "changed")
        rows.append(
            [
                name,
                f"v{old}" if old else "-",
                link(f"v{new}", links.version(name, new)) if new else "-",
                change,
            ]
        )
    against = f"`{previous_tag}`" if previous_tag else "no earlier release"
    if rows:
        parts.append(
            f"### models changed since {against}\n\n"
            + table(["model", "before", "now", "change"], rows)
        )
    else:
        parts.append(f"No model changed since {against}.")
    parts.append(f"{len(manifest)} model(s) in the image.")
    if mermaid:
        parts.append(f"### lineage\n\n```mermaid\n{mermaid.rstrip()}\n```")
    elif result.get("lineage_error"):
        parts.append(f"### lineage\n\nnot available: {cell(result['lineage_error'])}")
    return "\n\n".join(parts)


def rollback(result: Mapping[str, Any]) -> str:
    """``release rollback --json``: production from and to."""
    return deploy(
        result.get("previous_digest") or "(unknown)",
        result.get("reference") or f"{result.get('image')}:{result.get('tag')}",
        target=result.get("production"),
        action="rollback",
    )


def deploy(
    from_ref: str | None,
    to_ref: str,
    *,
    target: str | None = None,
    action: str = "deploy",
    detail: str = "",
) -> str:
    """A deploy or rollback: what ``target`` (production) ran before and runs now."""
    head = f"## {action}" + (f" of `{target}`" if target else "")
    rows = [["from", f"`{from_ref}`" if from_ref else "(nothing)"], ["to", f"`{to_ref}`"]]
    text = f"{head}\n\n{table(['', 'image'], rows)}"
    return f"{text}\n\n{detail}" if detail else text


def run(report: Mapping[str, Any], links: Links) -> str:
    """``run --json``: the sheets synced and merged, the plan, the training, the release."""
    sheets = table(
        ["sheet", "branch", "added", "changed", "deleted", "commit", "merged into main"],
        [
            [
                s["sheet"],
                f"`{s['branch']}`",
                s["added"],
                s["changed"],
                s["deleted"],
                _short(s.get("commit")) if s.get("commit") else "no changes",
                _short(s.get("merged")) if s.get("merged") else "",
            ]
            for s in report.get("sheets", [])
        ],
    )
    parts = [f"## run: main at {_short(report.get('main_commit'))}", sheets]
    if report.get("plan"):
        parts.append(
            plan(report["plan"], []).replace("## plan", "### plan", 1).split("\n\n### jobs")[0]
        )
    if report.get("training"):
        parts.append(train(report["training"], links).replace("## train", "### train", 1))
    release_info = report.get("release")
    if release_info:
        parts.append(f"### release\n\n`{release_info.get('image')}:{release_info.get('tag')}`")
    else:
        parts.append(f"### release\n\nskipped: {report.get('release_skipped') or 'not asked for'}")
    return "\n\n".join(parts)


def gathered(
    results: Sequence[Mapping[str, Any]],
    missing: Sequence[str],
    links: Links,
    *,
    run_id: str | None = None,
) -> str:
    """Every shard's results in one table (the final job of ``pipeline.yml``); ``missing``
    are planned models with no recorded result (their job failed before recording)."""
    failed = sum(1 for r in results if r["status"] == "failed") + len(missing)
    trained = sum(1 for r in results if r["status"] == "trained")
    head = (
        f"## training results{f' of run {run_id}' if run_id else ''}: {trained} trained, "
        f"{failed} failed, {len(results) + len(missing)} planned"
    )
    rows = list(results) + [
        {
            "name": name,
            "status": "failed",
            "reason": "no result recorded: its job failed before reaching MLflow (see its log)",
        }
        for name in missing
    ]
    return f"{head}\n\n{results_table(rows, links)}"
