"""Every MLflow tag name the kit writes or reads, and the values of its machine-readable tags.

Other tools read these names (docs/architecture.md "MLflow tags"): change one only on purpose.
"""

from __future__ import annotations

from enum import StrEnum

# On each training run and each model version.
GIT_SHA = "git.sha"
DOLT_COMMIT = "dolt.commit"
DOLT_BRANCH = "dolt.branch"
DOLT_DATABASE = "dolt.database"
FINGERPRINT = "data.fingerprint"
MODEL_NAME = "model.name"
MLFLOW_GIT_COMMIT = "mlflow.source.git.commit"  # MLflow's own: its UI links the commit
GITHUB_RUN_ID = "github.run_id"  # only in GitHub Actions
GITHUB_WORKFLOW = "github.workflow"
# The kit's own: what skipping and listing need.
PROJECT = "platform_kit.project"  # also on registered models: which project owns them
TRAINER = "trainer.id"
TRAINER_CODE = "trainer.code"
PARAMS_HASH = "params.hash"
QUERY_HASH = "data.query"
ROWS = "data.rows"
ERROR = "error"  # on a failed run: why training failed
# How the model was made (platform_kit.environment; compared by 'platform-kit reproduce').
ENV_PYTHON = "env.python"
ENV_TORCH = "env.torch"  # "none" when torch is not installed
ENV_CUDA = "env.cuda"  # CUDA and cuDNN only when the trainer ran on a GPU
ENV_CUDNN = "env.cudnn"
ENV_LOCK = "env.lock"  # "sha256:<hex>" of the lockfile installed, or "unlocked"
ENV_OS = "env.os"
ENV_DEVICE = "env.device"  # "cpu", "cuda: <GPU name>"; absent for a command trainer
ENV_PREFIX = "env."
ARTIFACT_DIGEST = "artifact.digest"  # "sha256:<hex>" of every artifact file (fingerprints.py)
DETERMINISTIC = "trainer.deterministic"  # "true" when the trainer declares bit-for-bit output
TOLERANCE = "trainer.tolerance"  # the metric difference a non-deterministic trainer allows

# On model versions only.
PROMOTION = "promotion"  # a sentence for people: "promoted: ...", "not promoted: ..."
PROMOTION_STATE = "promotion.state"  # the same decision for machines: a PromotionState value
METRIC_PREFIX = "metric."  # versions carry their metrics so 'model list' needs no run lookups

# On registered models: the alias history (MLflow keeps none), a JSON list of moves.
ALIAS_HISTORY = "platform_kit.alias_history"

# On release records (experiment platform-kit-releases); they carry GIT_SHA and DOLT_COMMIT too.
RELEASE_MD5 = "release.md5"
RELEASE_IMAGE = "release.image"
RELEASE_ALIAS = "release.alias"
RELEASE_ROLLBACK = "release.rollback"
RELEASE_PREVIOUS_DIGEST = "release.previous_digest"
# On deploy records (every move of <image>:production; a rollback is a deploy too).
RELEASE_DEPLOY = "release.deploy"  # the tag production now points at
RELEASE_DEPLOY_FROM = "release.deploy.from"  # the tag it pointed at before ("" if none)
RELEASE_DEPLOY_BY = "release.deploy.by"  # who moved it (GITHUB_ACTOR, else the OS user)
RELEASE_DEPLOY_KIND = "release.deploy.kind"  # "deploy" or "rollback"


class PromotionState(StrEnum):
    """Values of :data:`PROMOTION_STATE`: what training decided for a new version.

    ``promoted`` is written before the alias moves: a version that says so but does not hold the
    alias was left by an interrupted run (see ``tracking.registry.interrupted_promotion``).
    """

    PROMOTED = "promoted"
    NOT_PROMOTED = "not_promoted"
