"""Reproduce a model version: rebuild it from what was recorded, and say what differs.

:func:`reproduce` checks out the version's Git SHA in a scratch worktree, reads its rows at the
recorded Dolt commit and checks their fingerprint, retrains in a worker process (as ``train``
does) with the params and seed of the config at that SHA, then compares:

- **code**: the SHA can be checked out; the trainer's code and params hash as recorded;
- **data**: the rows can be read at the commit, and their fingerprint is the recorded one;
- **environment**: the ``env.*`` tags (Python, torch, CUDA, cuDNN, lockfile, OS, device);
- **weights**: the artifact digest, bit for bit, where the trainer declared itself deterministic
  (``trainer.deterministic``); the metrics, exactly, or within the tolerance it declared.

Nothing is written to the registry or the store.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from platform_kit.catalog import Model, expand_models
from platform_kit.config import Config, load_config
from platform_kit.errors import PlatformKitError, UsageError
from platform_kit.fingerprints import fingerprint, params_hash, trainer_code_hash
from platform_kit.rows import read_rows
from platform_kit.store.base import Store
from platform_kit.tracking import tags
from platform_kit.tracking.registry import ModelRegistry, VersionInfo
from platform_kit.workers import Outcome, Task, WorkerPool

EXACTLY = "reproduced exactly"


class Aspect(StrEnum):
    """What a difference is in."""

    CODE = "code"
    DATA = "data"
    ENVIRONMENT = "environment"
    WEIGHTS = "weights"


@dataclass(frozen=True)
class Difference:
    aspect: Aspect
    what: str  # one line for people

    def to_json(self) -> dict[str, str]:
        return {"aspect": self.aspect.value, "what": self.what}


@dataclass
class Reproduction:
    """What reproducing ``name@version`` found."""

    name: str
    version: int
    git_sha: str
    dolt_commit: str
    deterministic: bool = False
    tolerance: float = 0.0
    retrained: bool = False
    recorded_metrics: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    recorded_digest: str | None = None
    digest: str | None = None
    differences: list[Difference] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return self.retrained and not self.differences

    @property
    def aspects(self) -> list[str]:
        """The aspects that differ, in the order code, data, environment, weights."""
        found = {d.aspect for d in self.differences}
        return [a.value for a in Aspect if a in found]

    def summary(self) -> str:
        if self.exact:
            return EXACTLY
        if not self.differences:
            return "not reproduced: it could not be retrained"
        return f"differs in {', '.join(self.aspects)}"

    def differ(self, aspect: Aspect, what: str) -> None:
        self.differences.append(Difference(aspect, what))

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "reproduced": self.exact,
            "summary": self.summary(),
            "differs": self.aspects,
            "differences": [d.to_json() for d in self.differences],
            "git_sha": self.git_sha,
            "dolt_commit": self.dolt_commit,
            "deterministic": self.deterministic,
            "tolerance": self.tolerance,
            "retrained": self.retrained,
            "recorded_metrics": self.recorded_metrics,
            "metrics": self.metrics,
            "recorded_digest": self.recorded_digest,
            "digest": self.digest,
        }


def parse_ref(ref: str) -> tuple[str, int]:
    """``NAME@VERSION`` as a name and a version number.

    Raises:
        UsageError: REF is not NAME@VERSION.
    """
    name, _, version = ref.rpartition("@")
    if not name or not version.isdigit():
        raise UsageError(f"{ref!r}: expected NAME@VERSION, e.g. intent-acme@3")
    return name, int(version)


def reproduce(config: Config, store: Store, registry: ModelRegistry, ref: str) -> Reproduction:
    """Retrain ``NAME@VERSION`` as it was recorded and compare (see the module's docstring).

    Raises:
        UsageError: REF is not NAME@VERSION, or names no version.
    A difference (even "cannot be retrained") is reported in the result, not raised.
    """
    name, number = parse_ref(ref)
    info = registry.version(name, number)
    recorded = dict(info.tags)
    result = Reproduction(
        name=name,
        version=number,
        git_sha=recorded.get(tags.GIT_SHA, ""),
        dolt_commit=recorded.get(tags.DOLT_COMMIT, ""),
        recorded_metrics=info.metrics,
        recorded_digest=recorded.get(tags.ARTIFACT_DIGEST),
    )
    with tempfile.TemporaryDirectory(prefix="platform-kit-reproduce-") as scratch:
        with _checkout(config, result, Path(scratch) / "code") as code_config:
            model = _model(code_config, store, result)
            if model is None:
                return result
            outcome = _retrain(code_config, store, model, info, result, Path(scratch) / "work")
        if outcome is not None:
            _compare(result, recorded, outcome)
    return result


# ---------------------------------------------------------------------------- steps


@contextmanager
def _checkout(config: Config, result: Reproduction, where: Path) -> Iterator[Config]:
    """The project's config as of the recorded SHA, in a scratch worktree removed afterwards;
    the current config (and a code difference) when that SHA cannot be checked out."""
    sha = result.git_sha
    top = _git(config.root, "rev-parse", "--show-toplevel")
    if not sha or sha == "unknown":
        result.differ(Aspect.CODE, "no Git SHA was recorded: retrained with the current code")
        yield config
        return
    if top.returncode != 0:
        result.differ(
            Aspect.CODE,
            f"{config.root} is not in a Git repository, so git SHA {sha[:12]} cannot be checked"
            " out: retrained with the current code",
        )
        yield config
        return
    repo = Path(top.stdout.strip())
    added = _git(repo, "worktree", "add", "--detach", "--quiet", str(where), sha)
    if added.returncode != 0:
        result.differ(
            Aspect.CODE,
            f"git SHA {sha[:12]} is not in {repo} ({_last_line(added.stderr)}): retrained with"
            " the current code",
        )
        yield config
        return
    try:
        relative = config.path.resolve().relative_to(repo.resolve())
        try:
            then = load_config(where / relative)
        except PlatformKitError as exc:
            result.differ(Aspect.CODE, f"{relative} at git SHA {sha[:12]} does not load: {exc}")
            then = config
        yield then
    finally:
        _git(repo, "worktree", "remove", "--force", str(where))
        shutil.rmtree(where, ignore_errors=True)
        _git(repo, "worktree", "prune")


def _model(config: Config, store: Store, result: Reproduction) -> Model | None:
    """The model as configured at the SHA (families expanded at the Dolt commit)."""
    commit = result.dolt_commit
    if not commit:
        result.differ(Aspect.DATA, "no Dolt commit was recorded: the data cannot be read")
        return None
    try:
        models = expand_models(config, store, commit)
    except PlatformKitError as exc:
        result.differ(Aspect.DATA, f"cannot read the data at Dolt commit {commit[:12]}: {exc}")
        return None
    for model in models:
        if model.name == result.name:
            return model
    result.differ(
        Aspect.CODE,
        f"{config.path.name} at git SHA {result.git_sha[:12]} configures no model"
        f" {result.name!r} at Dolt commit {commit[:12]}",
    )
    return None


def _retrain(
    config: Config,
    store: Store,
    model: Model,
    info: VersionInfo,
    result: Reproduction,
    work: Path,
) -> Outcome | None:
    """Read the rows at the commit, check what went in, and train once in a worker."""
    recorded, commit = info.tags, result.dolt_commit
    read = next(read_rows(store, [model], commit))
    if read.rows is None:
        result.differ(
            Aspect.DATA,
            f"cannot read the rows of {model.name} at Dolt commit {commit[:12]}: {read.error}",
        )
        return None
    rows = read.rows
    _same(
        result, Aspect.DATA, "data fingerprint", recorded.get(tags.FINGERPRINT), fingerprint(rows)
    )
    code = trainer_code_hash(model.config.trainer, config.root)
    _same(result, Aspect.CODE, "trainer code", recorded.get(tags.TRAINER_CODE), code)
    _same(result, Aspect.CODE, "params", recorded.get(tags.PARAMS_HASH), params_hash(model.params))
    task = Task(
        model.name,
        model.config.trainer,
        dict(model.params),
        rows,
        str(work / "out"),
        str(config.root),
    )
    with WorkerPool(1, config.root, backlog=1) as pool:
        try:
            outcome = pool.submit(task).result()
        except Exception as exc:  # the worker process died
            outcome = Outcome(model.name, None, f"worker crashed: {type(exc).__name__}: {exc}", 0)
    if outcome.metrics is None:
        result.differ(Aspect.WEIGHTS, f"retraining failed: {outcome.error}")
        return None
    result.retrained = True
    return outcome


def _compare(result: Reproduction, recorded: Mapping[str, str], outcome: Outcome) -> None:
    now = outcome.tags
    result.metrics = dict(outcome.metrics or {})
    result.digest = now.get(tags.ARTIFACT_DIGEST)
    # The trainer's declaration when it trained rules; an old version has none: ask it now.
    declared = recorded.get(tags.DETERMINISTIC, now.get(tags.DETERMINISTIC, "false"))
    result.deterministic = declared == "true"
    result.tolerance = _number(recorded.get(tags.TOLERANCE, now.get(tags.TOLERANCE))) or 0.0

    env_keys = sorted({k for k in (*recorded, *now) if k.startswith(tags.ENV_PREFIX)})
    if not any(k.startswith(tags.ENV_PREFIX) for k in recorded):
        result.differ(Aspect.ENVIRONMENT, "no environment was recorded (trained by an older kit)")
    else:
        for key in env_keys:
            before, after = recorded.get(key, "(none)"), now.get(key, "(none)")
            if before != after:
                result.differ(Aspect.ENVIRONMENT, f"{key}: {before} -> {after}")

    if result.deterministic:
        if result.recorded_digest is None:
            result.differ(Aspect.WEIGHTS, "no artifact digest was recorded (an older kit)")
        elif result.recorded_digest != result.digest:
            result.differ(
                Aspect.WEIGHTS,
                f"artifacts differ bit for bit: {result.recorded_digest[:19]} ->"
                f" {(result.digest or '(none)')[:19]}",
            )
    for key in sorted({*result.recorded_metrics, *result.metrics}):
        before_value, after_value = result.recorded_metrics.get(key), result.metrics.get(key)
        if before_value is None or after_value is None:
            result.differ(Aspect.WEIGHTS, f"metric {key}: {before_value} -> {after_value}")
            continue
        allowed = 0.0 if result.deterministic else result.tolerance
        if abs(after_value - before_value) > allowed:
            within = f" (tolerance {allowed:g})" if allowed else ""
            result.differ(
                Aspect.WEIGHTS, f"metric {key}: {before_value!r} -> {after_value!r}{within}"
            )


def _same(result: Reproduction, aspect: Aspect, what: str, recorded: str | None, now: str) -> None:
    if recorded is None:
        result.differ(aspect, f"no {what} was recorded")
    elif recorded != now:
        result.differ(aspect, f"{what}: recorded {recorded[:12]}, now {now[:12]}")


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _git(where: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", "-C", str(where), *argv],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return subprocess.CompletedProcess(["git", *argv], 127, "", str(exc))


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "git failed"
