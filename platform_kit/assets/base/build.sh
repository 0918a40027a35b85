#!/usr/bin/env bash
# Build the serving base image locally, since nothing can be pulled here:
#   debootstrap (Debian bookworm, minbase + python3) -> tar -> docker import.
# Idempotent and cached: an existing image is reused; the rootfs tarball is kept in the cache.
#
#   bash images/base/build.sh [NAME] [ALIAS...]
# NAME defaults to platform-kit/base:bookworm, which 'release build' uses when the engine lacks
# release.base_image. Each ALIAS is tagged onto it, for Dockerfiles that name a base themselves.
set -euo pipefail
NAME="${1:-platform-kit/base:bookworm}"
shift || true
CACHE="${PLATFORM_KIT_CACHE:-$HOME/.cache/platform-kit}"
TARBALL="$CACHE/base-rootfs-bookworm.tar"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
say() { echo "base-image: $*" >&2; }

if ! docker image inspect "$NAME" >/dev/null 2>&1; then
  if [ ! -s "$TARBALL" ]; then
    [ "$(id -u)" = 0 ] || { say "debootstrap needs root; run: sudo bash $0"; exit 1; }
    command -v debootstrap >/dev/null 2>&1 || {
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap) >&2
    }
    rootfs=$(mktemp -d "$CACHE/rootfs.XXXXXX")
    chmod 0755 "$rootfs"  # it becomes the image's /: mktemp makes it 0700, which locks out non-root users
    trap 'rm -rf "$rootfs"' EXIT
    say "debootstrap bookworm into $rootfs (about a minute)"
    debootstrap --variant=minbase --include=python3,ca-certificates bookworm "$rootfs" "$MIRROR" \
      >"$CACHE/debootstrap.log" 2>&1 || { tail -n 20 "$CACHE/debootstrap.log" >&2; exit 1; }
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -cf "$TARBALL.tmp" . && mv "$TARBALL.tmp" "$TARBALL"
  fi
  say "docker import $NAME"
  docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' "$TARBALL" "$NAME" >/dev/null
fi
for alias in "$@"; do
  docker tag "$NAME" "$alias"
done
say "$NAME ready${*:+ (also tagged $*)}"
