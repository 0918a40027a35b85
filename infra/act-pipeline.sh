#!/usr/bin/env bash
# Run the workflows on this machine with act, the way a team's runners run them, against the
# production-shaped deployment of infra/prod-up.sh (servers that ask for credentials):
#
#   bash infra/act-pipeline.sh [dispatch|merge|rollback TAG] [ACT ARGS...]  (default: dispatch)
#
#   dispatch  pipeline.yml by workflow_dispatch: plan -> train (matrix) -> release
#   merge     pipeline.yml by repository_dispatch dolt-main-updated (ACT_EVENT, or the head of main)
#   rollback  rollback-production.yml with image_tag=TAG
#
# Further arguments go to act, e.g. `dispatch --input force=true --var PLATFORM_KIT_MAX_JOBS=3`
# retrains every model in three matrix jobs.
#
#   - The repository is a team's: this kit's files plus the project in project/, committed, in
#     $ACT_WORK/prod/repo and owned by the runner user (kit-runner: not root, in the docker group,
#     its own HOME, virtualenv and `docker login`), who runs act. `-P self-hosted=-self-hosted`
#     runs every job on the host, each in its own copy of the repository: jobs share nothing but
#     the servers.
#   - Repository settings are passed the way GitHub passes them: secrets in a --secret-file
#     (DOLT_READ_PASSWORD, DOLT_MERGE_PASSWORD, DOLT_SYNC_PASSWORD, MLFLOW_TRACKING_PASSWORD) and
#     variables in a --var-file (PLATFORM_KIT_CONFIG, MLFLOW_TRACKING_URI,
#     MLFLOW_TRACKING_USERNAME); nothing else of this shell reaches the jobs.
#   - Dolt main is seeded by root from the project's sheets (ACT_SEED=0 skips that).
# Settings: ACT_SOURCE (the project: a directory with platform.yaml and sheets/; default
# examples), ACT_WORK (default build/act), ACT_PROJECT (a name: its own Dolt database, MLflow
# experiment, model names and image, so two projects never see each other's models), ACT_EVENT
# (for merge: the repository_dispatch event file).
set -euo pipefail
cd "$(dirname "$0")/.."
TRIGGER="${1:-dispatch}"
shift || true
CACHE="${PLATFORM_KIT_CACHE:-$HOME/.cache/platform-kit}"
KIT_VENV="${VENV:-$CACHE/venv}"
WORK="${ACT_WORK:-$PWD/build/act}"
KIT="$KIT_VENV/bin/platform-kit"
say() { echo "act-pipeline: $*" >&2; }

[ "$(id -u)" = 0 ] || { say "run as root: it sets up the deployment and the runner's account"; exit 2; }
KIT_AS=()  # how this script itself reads Dolt (root's password against the deployment)
SOURCE="${ACT_SOURCE:-examples}"  # the project: platform.yaml and its sheets/
mkdir -p "$WORK"
settings=()  # what the repository's settings (and the runner) give the jobs

project_yaml() {  # project_yaml SERVER MLFLOW IMAGE DATABASE NAME: the source platform.yaml, pointed there
  local prefix=""
  [ "$5" = intent-adapters ] || prefix="$5-"
  sed -e "s|^project: .*|project: $5|" \
    -e "s|^  database: .*|  database: $4|" \
    -e "s|^  server: null.*|  server: $1|" \
    -e "s|^  tracking_uri: null.*|  tracking_uri: $2|" \
    -e "s|^  experiment: .*|  experiment: $5|" \
    -e "s|^    name: \"intent-|    name: \"${prefix}intent-|" \
    -e "s|^  image: .*|  image: $3|" \
    "$SOURCE/platform.yaml"
}

NAME="${ACT_PROJECT:-intent-adapters}"
DATABASE=$(echo "$NAME" | tr -c 'a-zA-Z0-9\n' '_')
[ "$NAME" != intent-adapters ] || DATABASE=training
# 1. The production-shaped deployment (idempotent; it creates the project's database and the
#    users' rights on it) and what a job would be given.
PK_PROD_DATABASE="$DATABASE" bash infra/prod-up.sh up
eval "$(PK_PROD_DATABASE="$DATABASE" bash infra/prod-up.sh env)"
say "servers: $PK_DOLT_SERVER $MLFLOW_TRACKING_URI $PK_REGISTRY (with credentials)"
# 2. The team's repository: the kit as committed here (plus uncommitted work), the project in
#    project/, owned by the runner user.
repo="$WORK/prod/repo"
rm -rf "$repo" && mkdir -p "$repo/project"
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$repo" 2>/dev/null || true
project_yaml "$PK_DOLT_SERVER" "$MLFLOW_TRACKING_URI" "$PK_REGISTRY/$NAME" "$DATABASE" "$NAME" \
  >"$repo/project/platform.yaml"
cp -r "$SOURCE/sheets" "$repo/project/sheets"
git -C "$repo" init -q -b main
git -C "$repo" -c user.name=team -c user.email=team@localhost add -A
git -C "$repo" -c user.name=team -c user.email=team@localhost commit -qm "the team's repository"
# Root seeds Dolt main as an administrator would (the kit users may not write main directly).
admin="$WORK/prod/admin"
rm -rf "$admin" && mkdir -p "$admin" && cp -r "$SOURCE/sheets" "$admin/sheets"
sed -e "s|^  server: .*|  server: mysql://root@$PK_DOLT_HOST:$PK_DOLT_PORT|" \
  "$repo/project/platform.yaml" >"$admin/platform.yaml"
KIT_AS=(env DOLT_USER=root "DOLT_PASSWORD=$PK_DOLT_ROOT_PASSWORD")
kit_config="$admin/platform.yaml"
if [ "${ACT_SEED:-1}" = 1 ]; then
  "${KIT_AS[@]}" "$KIT" --config "$kit_config" sync --branch main >/dev/null
fi
# 3. Repository settings: secrets in a file (never on a command line), variables beside them.
(
  umask 077
  printf '%s\n' "DOLT_READ_PASSWORD=$PK_DOLT_READ_PASSWORD" "DOLT_MERGE_PASSWORD=$PK_DOLT_MERGE_PASSWORD" \
    "DOLT_SYNC_PASSWORD=$PK_DOLT_SYNC_PASSWORD" "MLFLOW_TRACKING_PASSWORD=$MLFLOW_TRACKING_PASSWORD" \
    >"$WORK/prod/secrets.env"
)
printf '%s\n' "PLATFORM_KIT_CONFIG=project/platform.yaml" "MLFLOW_TRACKING_URI=$MLFLOW_TRACKING_URI" \
  "MLFLOW_TRACKING_USERNAME=$MLFLOW_TRACKING_USERNAME" >"$WORK/prod/vars.env"
settings=(--secret-file "$WORK/prod/secrets.env" --var-file "$WORK/prod/vars.env")
# The runner's engine holds the serving base image, as a team's runner has it pulled; nothing
# can be pulled here, and building the local stand-in takes root (debootstrap).
bash platform_kit/assets/base/build.sh >/dev/null
# The jobs run as the runner user, with its own virtualenv and act.
bash infra/prod-up.sh runner-venv
chown -R "$PK_RUNNER_USER:" "$repo" "$WORK/prod/secrets.env" "$WORK/prod/vars.env"
JOB_VENV="$PK_RUNNER_VENV"
# A clean environment, as a runner service has: nothing of this shell (root's cache and
# settings, credentials) reaches the jobs but what the repository settings give them.
ACT_CMD=(runuser -u "$PK_RUNNER_USER" -- env -i HOME="$PK_RUNNER_HOME" USER="$PK_RUNNER_USER"
  LOGNAME="$PK_RUNNER_USER" LANG=C.UTF-8 PATH="$PK_RUNNER_VENV/bin:/usr/local/bin:/usr/bin:/bin"
  "$PK_RUNNER_HOME/bin/act")

# The layered venv above already holds the locked dependencies: install-kit adds the checkout.
args=(-P self-hosted=-self-hosted --pull=false "${settings[@]}" --env "PLATFORM_KIT_VENV=$JOB_VENV"
  --env PLATFORM_KIT_TORCH=preinstalled)
cd "$repo"
case "$TRIGGER" in
  dispatch)
    exec "${ACT_CMD[@]}" workflow_dispatch -W .github/workflows/pipeline.yml "${args[@]}" \
      --input skip_release=false "$@" ;;
  merge)
    event="${ACT_EVENT:-}"
    if [ -z "$event" ]; then
      head=$("${KIT_AS[@]}" "$KIT" --config "$kit_config" data log -n 1 --json |
        "$KIT_VENV/bin/python" -c 'import json,sys; d=json.load(sys.stdin); print((d["commits"] if isinstance(d, dict) else d)[0]["hash"])')
      event="$WORK/event.json"
      printf '{"action": "dolt-main-updated", "client_payload": {"commit": "%s", "branch": "main"}}\n' \
        "$head" >"$event"
    fi
    chmod a+r "$event"
    exec "${ACT_CMD[@]}" repository_dispatch -W .github/workflows/pipeline.yml -e "$event" \
      "${args[@]}" "$@" ;;
  rollback)
    tag="${1:?usage: act-pipeline.sh rollback TAG}"
    shift
    exec "${ACT_CMD[@]}" workflow_dispatch -W .github/workflows/rollback-production.yml \
      "${args[@]}" --input "image_tag=$tag" "$@" ;;
  *) say "unknown trigger $TRIGGER (dispatch, merge or rollback)"; exit 2 ;;
esac
