#!/usr/bin/env bash
# ExecStartPre of platform-kit-runner-jit@NAME, run as root (ExecStartPre=+): ask GitHub for a
# just-in-time runner configuration good for ONE job, hand it to the runner's account, and start
# that job from an empty workspace. The token that may create runners ($ETC/jit-token) never
# leaves root; the runner account only ever sees a configuration that dies with its job.
#
#   jit-config.sh NAME        (NAME: gpu-<i> or cpu-<i>, the runner's directory under RUNNER_ROOT)
#
# Settings: $PLATFORM_KIT_ETC/jit.env (default /etc/platform-kit), written by setup-runner.sh:
# GITHUB_API_URL, RUNNER_SCOPE (repos/OWNER/REPO or orgs/ORG), RUNNER_GROUP_ID, RUNNER_ROOT.
set -euo pipefail
NAME="$1"
ETC="${PLATFORM_KIT_ETC:-/etc/platform-kit}"
# shellcheck source=/dev/null
. "$ETC/jit.env"
DIR="$RUNNER_ROOT/$NAME"
say() { echo "jit-config: $*" >&2; }

case "$NAME" in
  gpu-*) LABELS='["self-hosted", "linux", "gpu"]' ;;
  cpu-*) LABELS='["self-hosted", "linux", "cpu"]' ;;
  *) say "error: runner name $NAME is neither gpu-<i> nor cpu-<i>"; exit 2 ;;
esac
[ -d "$DIR" ] || { say "error: no runner directory $DIR"; exit 1; }
ACCOUNT=$(stat -c %U "$DIR")

# Nothing of the previous job survives in the workspace (the kit's virtualenv stays: see README).
rm -rf "$DIR/_work" "$DIR/.jitconfig"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A unique name per job: GitHub refuses a second runner of the same name.
cat >"$work/body.json" <<JSON
{"name": "$(hostname -s)-$NAME-$(date +%s)-$RANDOM", "runner_group_id": $RUNNER_GROUP_ID,
 "labels": $LABELS, "work_folder": "_work"}
JSON
# The token goes to curl on stdin (--config -), never on a command line other users can read.
printf 'header = "Authorization: Bearer %s"\n' "$(tr -d '\n' <"$ETC/jit-token")" |
  curl -fsS --config - -X POST \
    -H "Accept: application/vnd.github+json" -H "X-GitHub-Api-Version: 2022-11-28" \
    --data-binary @"$work/body.json" -o "$work/answer.json" \
    "$GITHUB_API_URL/$RUNNER_SCOPE/actions/runners/generate-jitconfig" ||
  { say "error: GitHub refused a just-in-time runner for $RUNNER_SCOPE (check $ETC/jit-token)"; exit 1; }
(
  umask 077
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["encoded_jit_config"])' \
    "$work/answer.json" >"$DIR/.jitconfig"
)
chown "$ACCOUNT:" "$DIR/.jitconfig"
say "runner $NAME: one-job configuration ready (group $RUNNER_GROUP_ID, account $ACCOUNT)"
