#!/usr/bin/env bash
# Run .github/workflows/pipeline.yml on this machine with act: plan -> train (matrix) -> release
# on a copy of the example project, with no GitHub and no self-hosted runner.
#
#   bash infra/act-pipeline.sh [dispatch|merge|watch] [ACT ARGS...]    (default: dispatch)
#
#   dispatch  the workflow_dispatch trigger (trains every new or changed model)
#   merge     repository_dispatch dolt-main-updated with the head of Dolt main as payload
#   watch     the scheduled watcher, talking to the local GitHub emulator instead of GitHub
#
# Further arguments go to act, e.g. `dispatch --input force=true --var PLATFORM_KIT_MAX_JOBS=3`
# retrains every model in three matrix jobs.
#
# ACT_TARGET=prod runs the jobs against the production-shaped deployment of infra/prod-up.sh
# instead (servers that ask for credentials): the repository settings a team would make are
# passed the way GitHub passes them, secrets in a --secret-file (DOLT_READ_PASSWORD,
# DOLT_MERGE_PASSWORD, DOLT_SYNC_PASSWORD, MLFLOW_TRACKING_PASSWORD) and variables in a --var-file
# (PLATFORM_KIT_CONFIG, MLFLOW_TRACKING_URI, MLFLOW_TRACKING_USERNAME); the runner's own setting
# is its docker login. Run as root, act itself runs as the runner user (kit-runner: not root, in
# the docker group, its own HOME, virtualenv and `docker login`). Dolt main is seeded by root.
#
# How it maps the runners: `-P self-hosted=-self-hosted` runs every job on the host. Each job
# gets its own copy of the checkout, so the project's servers are started once here and the
# jobs reach them through a copy of platform.yaml naming them (dolt.server, mlflow.tracking_uri),
# passed as the repository variable PLATFORM_KIT_CONFIG. The jobs' `pip install .` goes into a
# throwaway virtualenv layered over the kit's own (so PyTorch is not downloaded again).
set -euo pipefail
cd "$(dirname "$0")/.."
TRIGGER="${1:-dispatch}"
shift || true
CACHE="${PLATFORM_KIT_CACHE:-$HOME/.cache/platform-kit}"
KIT_VENV="${VENV:-$CACHE/venv}"
WORK="$PWD/build/act"
KIT="$KIT_VENV/bin/platform-kit"
say() { echo "act-pipeline: $*" >&2; }

ACT=$(bash infra/install-act.sh | tail -n1)
ACT_CMD=("$ACT")
JOB_VENV="$WORK/venv"
KIT_AS=()  # how this script itself reads Dolt (root's password against the deployment)
mkdir -p "$WORK"
settings=()  # what the repository's settings (and the runner) give the jobs

if [ "${ACT_TARGET:-local}" = prod ]; then
  # 1. The production-shaped deployment (idempotent) and what a job would be given.
  bash infra/prod-up.sh up
  eval "$(bash infra/prod-up.sh env)"
  say "servers: $PK_DOLT_SERVER $MLFLOW_TRACKING_URI $PK_REGISTRY (with credentials)"
  # 2. The project the jobs use: the shared servers named, the registry that wants a login.
  mkdir -p "$WORK/prod"
  cp -r examples/sheets "$WORK/prod/"
  sed -e "s|^  server: null.*|  server: $PK_DOLT_SERVER|" \
    -e "s|^  tracking_uri: null.*|  tracking_uri: $MLFLOW_TRACKING_URI|" \
    -e "s|^  image: 127.0.0.1:5000/|  image: $PK_REGISTRY/|" \
    examples/platform.yaml >"$WORK/prod/platform.yaml"
  config="$WORK/prod/platform.yaml"
  # Seed Dolt main as an administrator would (the kit users may not write main directly).
  sed -e "s|^  server: .*|  server: mysql://root@$PK_DOLT_HOST:$PK_DOLT_PORT|" "$config" >"$WORK/prod/root.yaml"
  KIT_AS=(env DOLT_USER=root "DOLT_PASSWORD=$PK_DOLT_ROOT_PASSWORD")
  kit_config="$WORK/prod/root.yaml"
  "${KIT_AS[@]}" "$KIT" --config "$kit_config" sync --branch main >/dev/null
  # 3. Repository settings: secrets in a file (never on a command line), variables beside them.
  (
    umask 077
    printf '%s\n' "DOLT_READ_PASSWORD=$PK_DOLT_READ_PASSWORD" "DOLT_MERGE_PASSWORD=$PK_DOLT_MERGE_PASSWORD" \
      "DOLT_SYNC_PASSWORD=$PK_DOLT_SYNC_PASSWORD" "MLFLOW_TRACKING_PASSWORD=$MLFLOW_TRACKING_PASSWORD" \
      >"$WORK/prod/secrets.env"
  )
  printf '%s\n' "PLATFORM_KIT_CONFIG=$config" "MLFLOW_TRACKING_URI=$MLFLOW_TRACKING_URI" \
    "MLFLOW_TRACKING_USERNAME=$MLFLOW_TRACKING_USERNAME" >"$WORK/prod/vars.env"
  settings=(--secret-file "$WORK/prod/secrets.env" --var-file "$WORK/prod/vars.env")
  if [ "$(id -u)" = 0 ] && [ "$PK_RUNNER_USER" != root ]; then
    # The jobs run as the runner user (not root, in the docker group, its own HOME and docker
    # login), with its own virtualenv and act.
    bash infra/prod-up.sh runner-venv
    chown "$PK_RUNNER_USER:" "$WORK/prod/secrets.env" "$WORK/prod/vars.env"
    JOB_VENV="$PK_RUNNER_VENV"
    ACT_CMD=(runuser -u "$PK_RUNNER_USER" -- env HOME="$PK_RUNNER_HOME"
      PATH="$PK_RUNNER_VENV/bin:/usr/local/bin:/usr/bin:/bin" "$PK_RUNNER_HOME/bin/act")
  else
    settings+=(--env "DOCKER_CONFIG=$PK_RUNNER_HOME/.docker")
  fi
  # The jobs inherit nothing of this shell's credentials: only what the settings give them.
  unset MLFLOW_TRACKING_URI MLFLOW_TRACKING_USERNAME MLFLOW_TRACKING_PASSWORD \
    $(compgen -v | grep -E '^PK_')
else
  # 1. The example project with local servers, started once.
  if [ ! -f "$WORK/local/platform.yaml" ]; then
    mkdir -p "$WORK/local" && cp examples/platform.yaml "$WORK/local/" && cp -r examples/sheets "$WORK/local/"
  fi
  urls=$("$KIT" --config "$WORK/local/platform.yaml" services up --json |
    "$KIT_VENV/bin/python" -c 'import json,sys; print(" ".join(s["url"] for s in json.load(sys.stdin)["services"]))')
  read -r dolt_url mlflow_url <<<"$urls"
  say "servers: $dolt_url $mlflow_url"

  # 2. The project the jobs use: the same, with the servers named.
  mkdir -p "$WORK/project"
  cp -r examples/sheets "$WORK/project/"
  sed -e "s|^  server: null.*|  server: $dolt_url|" -e "s|^  tracking_uri: null.*|  tracking_uri: $mlflow_url|" \
    examples/platform.yaml >"$WORK/project/platform.yaml"
  config="$WORK/project/platform.yaml"
  "$KIT" --config "$config" sync --branch main >/dev/null
  kit_config="$config"
  settings=(--var "PLATFORM_KIT_CONFIG=$config")
fi

# 3. The jobs' virtualenv: the kit's site-packages underneath, this checkout installed on top.
if [ "$JOB_VENV" = "$WORK/venv" ] && [ ! -x "$WORK/venv/bin/python" ]; then
  # The interpreter the kit's venv was made from (xargs -I cannot stand in for a command name).
  base_python=$("$KIT_VENV/bin/python" -c 'import sys; print(sys._base_executable)')
  "$base_python" -m venv "$WORK/venv"
  "$KIT_VENV/bin/python" -c 'import site; print(site.getsitepackages()[0])' \
    >"$("$WORK/venv/bin/python" -c 'import site; print(site.getsitepackages()[0])')/_platform_kit_base.pth"
fi

args=(-W .github/workflows/pipeline.yml -P self-hosted=-self-hosted --pull=false
  "${settings[@]}" --env "PLATFORM_KIT_VENV=$JOB_VENV" --env PLATFORM_KIT_TORCH=preinstalled "$@")
export PATH="$JOB_VENV/bin:$PATH"
case "$TRIGGER" in
  dispatch)
    exec "${ACT_CMD[@]}" workflow_dispatch "${args[@]}" --input skip_release=false ;;
  merge)
    head=$("${KIT_AS[@]}" "$KIT" --config "$kit_config" data log -n 1 --json |
      "$KIT_VENV/bin/python" -c 'import json,sys; d=json.load(sys.stdin); print((d["commits"] if isinstance(d, dict) else d)[0]["hash"])')
    printf '{"action": "dolt-main-updated", "client_payload": {"commit": "%s", "database": "training", "branch": "main"}}\n' \
      "$head" >"$WORK/event.json"
    exec "${ACT_CMD[@]}" repository_dispatch -e "$WORK/event.json" "${args[@]}" ;;
  watch)
    port=8765
    "$KIT_VENV/bin/python" -m platform_kit.testing.github_emulator --port "$port" \
      --repository octo/platform >"$WORK/emulator.log" 2>&1 &
    emulator=$!
    trap 'kill $emulator' EXIT
    sleep 2
    "${ACT_CMD[@]}" schedule "${args[@]}" --env "GITHUB_API_URL=http://127.0.0.1:$port/api/v3" \
      --env GITHUB_REPOSITORY=octo/platform -s GITHUB_TOKEN=act-local-token ;;
  *) say "unknown trigger $TRIGGER (dispatch, merge or watch)"; exit 2 ;;
esac
