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
mkdir -p "$WORK"

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

# 3. The jobs' virtualenv: the kit's site-packages underneath, this checkout installed on top.
if [ ! -x "$WORK/venv/bin/python" ]; then
  # The interpreter the kit's venv was made from (xargs -I cannot stand in for a command name).
  base_python=$("$KIT_VENV/bin/python" -c 'import sys; print(sys._base_executable)')
  "$base_python" -m venv "$WORK/venv"
  "$KIT_VENV/bin/python" -c 'import site; print(site.getsitepackages()[0])' \
    >"$("$WORK/venv/bin/python" -c 'import site; print(site.getsitepackages()[0])')/_platform_kit_base.pth"
fi

args=(-W .github/workflows/pipeline.yml -P self-hosted=-self-hosted --pull=false
  --var "PLATFORM_KIT_CONFIG=$config" --env "PLATFORM_KIT_VENV=$WORK/venv" "$@")
export PATH="$WORK/venv/bin:$PATH"
case "$TRIGGER" in
  dispatch)
    exec "$ACT" workflow_dispatch "${args[@]}" --input skip_release=false ;;
  merge)
    head=$("$KIT" --config "$config" data log -n 1 --json |
      "$KIT_VENV/bin/python" -c 'import json,sys; d=json.load(sys.stdin); print((d["commits"] if isinstance(d, dict) else d)[0]["hash"])')
    printf '{"action": "dolt-main-updated", "client_payload": {"commit": "%s", "database": "training", "branch": "main"}}\n' \
      "$head" >"$WORK/event.json"
    exec "$ACT" repository_dispatch -e "$WORK/event.json" "${args[@]}" ;;
  watch)
    port=8765
    "$KIT_VENV/bin/python" -m platform_kit.testing.github_emulator --port "$port" \
      --repository octo/platform >"$WORK/emulator.log" 2>&1 &
    emulator=$!
    trap 'kill $emulator' EXIT
    sleep 2
    "$ACT" schedule "${args[@]}" --env "GITHUB_API_URL=http://127.0.0.1:$port/api/v3" \
      --env GITHUB_REPOSITORY=octo/platform -s GITHUB_TOKEN=act-local-token ;;
  *) say "unknown trigger $TRIGGER (dispatch, merge or watch)"; exit 2 ;;
esac
