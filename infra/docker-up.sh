#!/usr/bin/env bash
# Make a Docker engine and a registry on 127.0.0.1:5000 available for the tests and the demo.
#
# Idempotent: an engine that already answers and a registry that already serves are left alone.
# As root, with neither present, installs Debian's docker.io and docker-registry and starts
#   dockerd --storage-driver=vfs --iptables=false --bridge=none
# (vfs and no bridge because this runs inside containers without overlayfs or netfilter).
# Not root and no engine: explains how to get one and exits 0 unless DOCKER_REQUIRED=1, so the
# parts of the kit that need no Docker still work.
set -euo pipefail

CACHE="${PLATFORM_KIT_CACHE:-$HOME/.cache/platform-kit}"
REGISTRY_ADDR="${PLATFORM_KIT_REGISTRY:-127.0.0.1:5000}"
mkdir -p "$CACHE"
say() { echo "docker-up: $*" >&2; }
soft_fail() {
  say "$*"
  if [ "${DOCKER_REQUIRED:-0}" = 1 ]; then exit 1; fi
  exit 0
}

engine_ok() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }
registry_ok() { curl -fsS -o /dev/null --max-time 2 2>/dev/null "http://$REGISTRY_ADDR/v2/"; }

wait_for() {  # wait_for SECONDS CHECK...
  local deadline=$(( $(date +%s) + $1 )); shift
  until "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.5
  done
}

if ! engine_ok; then
  if [ "$(id -u)" != 0 ]; then
    soft_fail "no Docker engine answers and we are not root: install Docker Engine (https://docs.docker.com/engine/install/) and add yourself to the 'docker' group, or run 'sudo bash infra/docker-up.sh'. Release steps are skipped until then."
  fi
  if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker-registry >/dev/null 2>&1 || ! command -v curl >/dev/null 2>&1; then
    say "installing Debian's docker.io and docker-registry"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io docker-registry curl) >&2
  fi
  say "starting dockerd (vfs storage, no bridge; log: $CACHE/dockerd.log)"
  nohup dockerd --storage-driver=vfs --iptables=false --bridge=none \
    >"$CACHE/dockerd.log" 2>&1 </dev/null &
  wait_for 60 engine_ok || { tail -n 20 "$CACHE/dockerd.log" >&2; soft_fail "dockerd did not start"; }
fi
say "engine: $(docker version --format '{{.Server.Version}}') ($(docker info --format '{{.Driver}}' 2>/dev/null))"

if ! registry_ok; then
  command -v docker-registry >/dev/null 2>&1 || {
    [ "$(id -u)" = 0 ] || soft_fail "no registry on $REGISTRY_ADDR; install docker-registry or run one there"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry) >&2
  }
  mkdir -p "$CACHE/registry"
  cat >"$CACHE/registry.yml" <<YAML
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $CACHE/registry}
  delete: {enabled: true}
http: {addr: $REGISTRY_ADDR}
YAML
  say "starting registry on $REGISTRY_ADDR (log: $CACHE/registry.log)"
  nohup docker-registry serve "$CACHE/registry.yml" >"$CACHE/registry.log" 2>&1 </dev/null &
  wait_for 30 registry_ok || { tail -n 20 "$CACHE/registry.log" >&2; soft_fail "the registry did not start"; }
fi
say "registry: http://$REGISTRY_ADDR/v2/ answers"
