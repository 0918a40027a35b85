#!/usr/bin/env bash
# Set up self-hosted GitHub Actions runners for platform-kit on one Linux machine:
# one runner per GPU (labels self-hosted,linux,gpu; CUDA_VISIBLE_DEVICES=<that GPU>) and N CPU
# runners (labels self-hosted,linux,cpu) for planning, syncing and releases. Each runner is a
# systemd service from the template platform-kit-runner@.service (or, with --ephemeral,
# platform-kit-runner-jit@.service). See README.md beside this file.
#
#   sudo RUNNER_TOKEN=<registration token> infra/runner/setup-runner.sh \
#        --url https://github.com/OWNER/REPO [--gpus all|0,1,...] [--cpu-runners 1]
#   sudo RUNNER_ADMIN_TOKEN=<token that may create runners> infra/runner/setup-runner.sh \
#        --url https://github.com/ORG/REPO --ephemeral [--runner-group-id N]
#
# Options:
#   --url URL            the repository (or organisation) the runners serve
#   --gpus LIST          GPU indices, or "all" (default: every GPU nvidia-smi lists), or "none"
#   --cpu-runners N      CPU runners to add (default 1)
#   --gpu-user NAME      the account GPU runners run as (default: github-runner; created if
#                        missing); it is kept OUT of the docker group (--user is an alias)
#   --cpu-user NAME      the account CPU runners run as (default: github-runner-cpu); it is in the
#                        docker group, as releases build and push images
#   --runner-group NAME  register into this runner group (organisation runners; see README)
#   --ephemeral          just-in-time runners: each service asks GitHub for a one-job runner
#                        configuration before every job (RUNNER_ADMIN_TOKEN, kept root-only) and
#                        starts from an empty workspace
#   --runner-group-id N  the runner group of just-in-time runners (default 1, the default group)
#   --root DIR           where runners live (default /opt/platform-kit-runners)
#   --etc DIR            where their settings live (default /etc/platform-kit)
#   --systemd-dir DIR    where the units go (default /etc/systemd/system)
#   --runner-tarball F   the actions-runner-linux-x64-*.tar.gz to use (default: downloaded)
#   --runner-version V   the runner version to download (default 2.329.0)
#   --runner-sha256 H    the tarball's SHA-256 (known for the default version; required otherwise)
#   --no-register        lay out files only: no download, no config.sh, no systemctl (for tests)
#
# Idempotent: rerunning keeps existing settings files and re-registers with --replace.
set -euo pipefail

URL=""
GPUS="all"
CPU_RUNNERS=1
GPU_USER="github-runner"
CPU_USER="github-runner-cpu"
RUNNER_GROUP=""
RUNNER_GROUP_ID=1
EPHEMERAL=0
SHA256=""
ROOT="/opt/platform-kit-runners"
ETC="/etc/platform-kit"
SYSTEMD_DIR="/etc/systemd/system"
TARBALL=""
RUNNER_VERSION="2.329.0"
# SHA-256 of actions-runner-linux-x64-<version>.tar.gz, as GitHub publishes it with each release.
declare -A KNOWN_SHA256=(
  [2.329.0]=194f1e1e4bd02f80b7e9633fc546084d8d4e19f3928a324d512ea53430102e1d
)
REGISTER=1
HERE="$(cd "$(dirname "$0")" && pwd)"

say() { echo "setup-runner: $*" >&2; }
die() { say "error: $*"; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --url) URL="$2"; shift 2 ;;
    --gpus) GPUS="$2"; shift 2 ;;
    --cpu-runners) CPU_RUNNERS="$2"; shift 2 ;;
    --user|--gpu-user) GPU_USER="$2"; shift 2 ;;
    --cpu-user) CPU_USER="$2"; shift 2 ;;
    --runner-group) RUNNER_GROUP="$2"; shift 2 ;;
    --runner-group-id) RUNNER_GROUP_ID="$2"; shift 2 ;;
    --ephemeral) EPHEMERAL=1; shift ;;
    --runner-sha256) SHA256="$2"; shift 2 ;;
    --root) ROOT="$2"; shift 2 ;;
    --etc) ETC="$2"; shift 2 ;;
    --systemd-dir) SYSTEMD_DIR="$2"; shift 2 ;;
    --runner-tarball) TARBALL="$2"; shift 2 ;;
    --runner-version) RUNNER_VERSION="$2"; shift 2 ;;
    --no-register) REGISTER=0; shift ;;
    -h|--help) sed -n '2,34p' "$0"; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

[[ "$CPU_RUNNERS" =~ ^[0-9]+$ ]] || die "--cpu-runners must be a number, got '$CPU_RUNNERS'"
[[ "$RUNNER_GROUP_ID" =~ ^[0-9]+$ ]] || die "--runner-group-id must be a number, got '$RUNNER_GROUP_ID'"
[ "$GPU_USER" != "$CPU_USER" ] || die "--gpu-user and --cpu-user must differ: GPU jobs get no Docker access"
SHA256="${SHA256:-${KNOWN_SHA256[$RUNNER_VERSION]:-}}"
if [ "$REGISTER" = 1 ]; then
  [ -n "$URL" ] || die "--url is required (https://github.com/OWNER/REPO)"
  if [ "$EPHEMERAL" = 1 ]; then
    [ -n "${RUNNER_ADMIN_TOKEN:-}" ] || die "--ephemeral: set RUNNER_ADMIN_TOKEN to a token that may create runners (see README)"
  else
    [ -n "${RUNNER_TOKEN:-}" ] || die "set RUNNER_TOKEN to a registration token (Settings > Actions > Runners > New runner)"
  fi
  [ "$(id -u)" = 0 ] || die "run as root (it creates a user, services and $ROOT)"
  command -v python3 >/dev/null || die "python3 (3.11 or newer) is missing"
fi

# The REST scope of the runners: repos/OWNER/REPO or orgs/ORG (for just-in-time configs).
scope_of() {
  local path="${URL#https://*/}"
  case "$path" in
    */*) echo "repos/${path%/}" ;;
    *) echo "orgs/$path" ;;
  esac
}
api_of() {
  case "$URL" in
    https://github.com/*) echo "https://api.github.com" ;;
    *) local host="${URL#https://}"; echo "https://${host%%/*}/api/v3" ;;  # GitHub Enterprise Server
  esac
}

verify_tarball() {  # the runner is what GitHub published, or nothing runs
  [ -n "$SHA256" ] || die "no known SHA-256 for runner $RUNNER_VERSION: pass --runner-sha256 (from the release notes on GitHub)"
  if ! echo "$SHA256  $TARBALL" | sha256sum --check --status; then
    say "error: $TARBALL does not match SHA-256 $SHA256; removing it"
    [ -n "$DOWNLOADED" ] && rm -f "$TARBALL"
    exit 1
  fi
  say "runner tarball verified (SHA-256 $SHA256)"
}

# -- which GPUs
gpu_list() {
  case "$GPUS" in
    none) ;;
    all)
      if command -v nvidia-smi >/dev/null 2>&1; then
        nvidia-smi --query-gpu=index --format=csv,noheader | tr -d ' '
      else
        say "nvidia-smi not found: no GPU runners (pass --gpus 0,1,... to force)"
      fi ;;
    *) tr ',' '\n' <<<"$GPUS" ;;
  esac
}
mapfile -t GPU_INDICES < <(gpu_list)
for index in "${GPU_INDICES[@]}"; do
  [[ "$index" =~ ^[0-9]+$ ]] || die "GPU index '$index' is not a number"
done

# -- shared settings: written once, then owned by the operator (never overwritten)
mkdir -p "$ETC"
if [ ! -e "$ETC/runner.env" ]; then
  install -m 0640 "$HERE/runner.env.example" "$ETC/runner.env"
  say "wrote $ETC/runner.env: fill in MLFLOW_TRACKING_URI and the credential file paths"
fi
UNIT=platform-kit-runner
[ "$EPHEMERAL" = 1 ] && UNIT=platform-kit-runner-jit
install -m 0644 "$HERE/$UNIT@.service" "$SYSTEMD_DIR/$UNIT@.service.tmp"
sed -i "s|@ROOT@|$ROOT|g; s|@ETC@|$ETC|g; s|@USER@|$GPU_USER|g" "$SYSTEMD_DIR/$UNIT@.service.tmp"
mv "$SYSTEMD_DIR/$UNIT@.service.tmp" "$SYSTEMD_DIR/$UNIT@.service"
if [ "$EPHEMERAL" = 1 ]; then
  mkdir -p "$ROOT"
  install -m 0755 "$HERE/jit-config.sh" "$ROOT/jit-config.sh"
  cat >"$ETC/jit.env" <<ENV
# written by setup-runner.sh --ephemeral; read by $ROOT/jit-config.sh (as root)
GITHUB_API_URL=$(api_of)
RUNNER_SCOPE=$(scope_of)
RUNNER_GROUP_ID=$RUNNER_GROUP_ID
RUNNER_ROOT=$ROOT
ENV
  chmod 0600 "$ETC/jit.env"
fi

DOWNLOADED=""
if [ "$REGISTER" = 1 ]; then
  for account in "$GPU_USER" "$CPU_USER"; do
    id "$account" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$account"
  done
  # Releases build images: the CPU runners' account talks to the Docker engine. Access to the
  # engine is root on the host, so the GPU runners' account (it runs training code) never has it.
  getent group docker >/dev/null || groupadd --system docker
  usermod -aG docker "$CPU_USER"
  if id -nG "$GPU_USER" | grep -qw docker; then
    gpasswd -d "$GPU_USER" docker >/dev/null
    say "removed $GPU_USER from the docker group (GPU jobs get no Docker access)"
  fi
  if [ "$EPHEMERAL" = 1 ]; then
    # The token that may create runners stays with root: jit-config.sh runs as root
    # (ExecStartPre=+) and hands the runner account only a configuration good for one job.
    (umask 077 && printf '%s\n' "$RUNNER_ADMIN_TOKEN" >"$ETC/jit-token")
  fi
  if [ -z "$TARBALL" ]; then
    TARBALL="$ROOT/actions-runner-linux-x64-$RUNNER_VERSION.tar.gz"
    mkdir -p "$ROOT"
    if [ ! -e "$TARBALL" ]; then
      curl -fsSL -o "$TARBALL" \
        "https://github.com/actions/runner/releases/download/v$RUNNER_VERSION/actions-runner-linux-x64-$RUNNER_VERSION.tar.gz"
      DOWNLOADED=1
    fi
  fi
fi
[ -z "$TARBALL" ] || verify_tarball

# -- one runner: its directory, its own settings, its own virtualenv, registration, service
add_runner() {  # add_runner NAME LABELS CUDA_VISIBLE_DEVICES ACCOUNT TORCH(cpu|cuda)
  local name="$1" labels="$2" devices="$3" account="$4" torch="$5"
  local dir="$ROOT/$name"
  mkdir -p "$dir"
  # Which account runs this runner: a drop-in per instance (the template's User= is the GPU one).
  mkdir -p "$SYSTEMD_DIR/$UNIT@$name.service.d"
  {
    echo "# written by setup-runner.sh"
    echo "[Service]"
    echo "User=$account"
  } >"$SYSTEMD_DIR/$UNIT@$name.service.d/account.conf"
  # The kit's virtualenv is per runner: runners on one machine never pip install into one venv
  # at once. The workflows install the checkout into it and expect its bin/ first on PATH.
  {
    echo "# written by setup-runner.sh; shared settings are in $ETC/runner.env"
    echo "PLATFORM_KIT_VENV=$dir/venv"
    echo "CUDA_VISIBLE_DEVICES=$devices"
    # Which lockfile install-kit installs: PyTorch's CUDA build, or its CPU-only one.
    echo "PLATFORM_KIT_TORCH=$torch"
  } >"$ETC/runner-$name.env"
  # The runner gives jobs the PATH in its .path file and the variables in its .env file.
  echo "$dir/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" >"$dir/.path"
  cat "$ETC/runner.env" "$ETC/runner-$name.env" | grep -E '^[A-Za-z_][A-Za-z0-9_]*=' >"$dir/.env" || true
  chmod 0600 "$dir/.env"
  if [ "$REGISTER" = 1 ]; then
    [ -x "$dir/config.sh" ] || tar -xzf "$TARBALL" -C "$dir"
    [ -x "$dir/venv/bin/python" ] || python3 -m venv "$dir/venv"
    chown -R "$account:" "$dir"
    if [ "$EPHEMERAL" = 0 ]; then
      local group=()
      [ -z "$RUNNER_GROUP" ] || group=(--runnergroup "$RUNNER_GROUP")
      runuser -u "$account" -- "$dir/config.sh" --unattended --replace \
        --url "$URL" --token "$RUNNER_TOKEN" "${group[@]}" \
        --name "$(hostname -s)-$name" --labels "$labels" --work _work
    fi
    systemctl daemon-reload
    systemctl enable --now "$UNIT@$name.service"
  fi
  say "runner $name: labels $labels, CUDA_VISIBLE_DEVICES='$devices', account $account"
}

for index in "${GPU_INDICES[@]}"; do
  add_runner "gpu-$index" "self-hosted,linux,gpu" "$index" "$GPU_USER" cuda
done
for ((i = 0; i < CPU_RUNNERS; i++)); do
  # An empty CUDA_VISIBLE_DEVICES hides every GPU from CPU jobs.
  add_runner "cpu-$i" "self-hosted,linux,cpu" "" "$CPU_USER" cpu
done
mode=$([ "$EPHEMERAL" = 1 ] && echo "just-in-time (one job each)" || echo persistent)
say "done: ${#GPU_INDICES[@]} GPU and $CPU_RUNNERS CPU runners under $ROOT, $mode"
