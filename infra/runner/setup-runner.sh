#!/usr/bin/env bash
# Set up self-hosted GitHub Actions runners for platform-kit on one Linux machine:
# one runner per GPU (labels self-hosted,linux,gpu; CUDA_VISIBLE_DEVICES=<that GPU>) and N CPU
# runners (labels self-hosted,linux,cpu) for planning, syncing and releases. Each runner is a
# systemd service from the template platform-kit-runner@.service. See README.md beside this file.
#
#   sudo RUNNER_TOKEN=<registration token> infra/runner/setup-runner.sh \
#        --url https://github.com/OWNER/REPO [--gpus all|0,1,...] [--cpu-runners 1]
#
# Options:
#   --url URL            the repository (or organisation) the runners serve
#   --gpus LIST          GPU indices, or "all" (default: every GPU nvidia-smi lists), or "none"
#   --cpu-runners N      CPU runners to add (default 1)
#   --user NAME          the account the runners run as (default: github-runner; created if missing)
#   --root DIR           where runners live (default /opt/platform-kit-runners)
#   --etc DIR            where their settings live (default /etc/platform-kit)
#   --systemd-dir DIR    where the unit goes (default /etc/systemd/system)
#   --runner-tarball F   the actions-runner-linux-x64-*.tar.gz to use (default: downloaded)
#   --runner-version V   the runner version to download (default 2.329.0)
#   --no-register        lay out files only: no download, no config.sh, no systemctl (for tests)
#
# Idempotent: rerunning keeps existing settings files and re-registers with --replace.
set -euo pipefail

URL=""
GPUS="all"
CPU_RUNNERS=1
RUN_USER="github-runner"
ROOT="/opt/platform-kit-runners"
ETC="/etc/platform-kit"
SYSTEMD_DIR="/etc/systemd/system"
TARBALL=""
RUNNER_VERSION="2.329.0"
REGISTER=1
HERE="$(cd "$(dirname "$0")" && pwd)"

say() { echo "setup-runner: $*" >&2; }
die() { say "error: $*"; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --url) URL="$2"; shift 2 ;;
    --gpus) GPUS="$2"; shift 2 ;;
    --cpu-runners) CPU_RUNNERS="$2"; shift 2 ;;
    --user) RUN_USER="$2"; shift 2 ;;
    --root) ROOT="$2"; shift 2 ;;
    --etc) ETC="$2"; shift 2 ;;
    --systemd-dir) SYSTEMD_DIR="$2"; shift 2 ;;
    --runner-tarball) TARBALL="$2"; shift 2 ;;
    --runner-version) RUNNER_VERSION="$2"; shift 2 ;;
    --no-register) REGISTER=0; shift ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

[[ "$CPU_RUNNERS" =~ ^[0-9]+$ ]] || die "--cpu-runners must be a number, got '$CPU_RUNNERS'"
if [ "$REGISTER" = 1 ]; then
  [ -n "$URL" ] || die "--url is required (https://github.com/OWNER/REPO)"
  [ -n "${RUNNER_TOKEN:-}" ] || die "set RUNNER_TOKEN to a registration token (Settings > Actions > Runners > New runner)"
  [ "$(id -u)" = 0 ] || die "run as root (it creates a user, services and $ROOT)"
  command -v python3 >/dev/null || die "python3 (3.11 or newer) is missing"
fi

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
install -m 0644 "$HERE/platform-kit-runner@.service" "$SYSTEMD_DIR/platform-kit-runner@.service.tmp"
sed -i "s|@ROOT@|$ROOT|g; s|@ETC@|$ETC|g; s|@USER@|$RUN_USER|g" \
  "$SYSTEMD_DIR/platform-kit-runner@.service.tmp"
mv "$SYSTEMD_DIR/platform-kit-runner@.service.tmp" "$SYSTEMD_DIR/platform-kit-runner@.service"

if [ "$REGISTER" = 1 ]; then
  id "$RUN_USER" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$RUN_USER"
  # Releases build images: the CPU runners talk to the Docker engine.
  getent group docker >/dev/null && usermod -aG docker "$RUN_USER"
  if [ -z "$TARBALL" ]; then
    TARBALL="$ROOT/actions-runner-linux-x64-$RUNNER_VERSION.tar.gz"
    mkdir -p "$ROOT"
    [ -e "$TARBALL" ] || curl -fsSL -o "$TARBALL" \
      "https://github.com/actions/runner/releases/download/v$RUNNER_VERSION/actions-runner-linux-x64-$RUNNER_VERSION.tar.gz"
  fi
fi

# -- one runner: its directory, its own settings, its own virtualenv, registration, service
add_runner() {  # add_runner NAME LABELS CUDA_VISIBLE_DEVICES
  local name="$1" labels="$2" devices="$3"
  local dir="$ROOT/$name"
  mkdir -p "$dir"
  # The kit's virtualenv is per runner: runners on one machine never pip install into one venv
  # at once. The workflows install the checkout into it and expect its bin/ first on PATH.
  {
    echo "# written by setup-runner.sh; shared settings are in $ETC/runner.env"
    echo "PLATFORM_KIT_VENV=$dir/venv"
    echo "CUDA_VISIBLE_DEVICES=$devices"
  } >"$ETC/runner-$name.env"
  # The runner gives jobs the PATH in its .path file and the variables in its .env file.
  echo "$dir/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" >"$dir/.path"
  cat "$ETC/runner.env" "$ETC/runner-$name.env" | grep -E '^[A-Za-z_][A-Za-z0-9_]*=' >"$dir/.env" || true
  chmod 0600 "$dir/.env"
  if [ "$REGISTER" = 1 ]; then
    [ -x "$dir/config.sh" ] || tar -xzf "$TARBALL" -C "$dir"
    [ -x "$dir/venv/bin/python" ] || python3 -m venv "$dir/venv"
    chown -R "$RUN_USER:" "$dir"
    runuser -u "$RUN_USER" -- "$dir/config.sh" --unattended --replace \
      --url "$URL" --token "$RUNNER_TOKEN" \
      --name "$(hostname -s)-$name" --labels "$labels" --work _work
    systemctl daemon-reload
    systemctl enable --now "platform-kit-runner@$name.service"
  fi
  say "runner $name: labels $labels, CUDA_VISIBLE_DEVICES='$devices'"
}

for index in "${GPU_INDICES[@]}"; do
  add_runner "gpu-$index" "self-hosted,linux,gpu" "$index"
done
for ((i = 0; i < CPU_RUNNERS; i++)); do
  # An empty CUDA_VISIBLE_DEVICES hides every GPU from CPU jobs.
  add_runner "cpu-$i" "self-hosted,linux,cpu" ""
done
say "done: ${#GPU_INDICES[@]} GPU and $CPU_RUNNERS CPU runners under $ROOT"
