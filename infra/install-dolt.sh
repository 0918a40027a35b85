#!/usr/bin/env bash
# Install the `dolt` binary platform-kit needs, building it from Dolt's Go modules when missing.
#
# Order of preference:
#   1. a `dolt` on PATH that is recent enough (>= MIN_VERSION);
#   2. the binary cached by an earlier run in $PLATFORM_KIT_CACHE/bin;
#   3. a fresh build with the machine's Go, pinned to a commit (Dolt tags its releases `vX.Y.Z`
#      but the module lives in `go/`, so `@vX.Y.Z` does not resolve: commits become pseudo-versions).
# Prints the absolute path of the binary on its last line of stdout.
set -euo pipefail

MIN_VERSION="1.57.0"
MIN_GO="1.26.2"
CACHE="${PLATFORM_KIT_CACHE:-$HOME/.cache/platform-kit}"
BIN_DIR="$CACHE/bin"
LOG="$CACHE/dolt-build.log"
# Candidates, best first: the v2.3.1 release commit, the pseudo-version dolthub/doltgresql pins,
# then an earlier main commit (2026-04-24) that the Go module proxy serves. Override with
# DOLT_REF=<commit or pseudo-version>.
CANDIDATES=(
  ${DOLT_REF:-}
  "b15770fe588268027d799c11356af0ce24ba882a"
  "v0.40.5-0.20260820194916-5a8f44b90652"
  "v0.40.5-0.20260424001550-011a27ff4303"
)

say() { echo "install-dolt: $*" >&2; }
die() { say "error: $*"; exit 1; }

version_ge() {  # version_ge A B: A >= B
  [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]
}

dolt_version() {  # dolt_version BINARY -> "1.2.3" or ""
  "$1" version 2>/dev/null | sed -n 's/^dolt version \([0-9][0-9.]*\).*/\1/p' | head -n1
}

usable() {
  local v
  v=$(dolt_version "$1") || return 1
  [ -n "$v" ] && version_ge "$v" "$MIN_VERSION"
}

if command -v dolt >/dev/null 2>&1 && usable "$(command -v dolt)"; then
  say "using $(command -v dolt) ($(dolt_version "$(command -v dolt)"))"
  command -v dolt
  exit 0
fi
if [ -x "$BIN_DIR/dolt" ] && usable "$BIN_DIR/dolt"; then
  say "using cached $BIN_DIR/dolt ($(dolt_version "$BIN_DIR/dolt"))"
  echo "$BIN_DIR/dolt"
  exit 0
fi

command -v go >/dev/null 2>&1 || die "Go is not installed; install Go >= $MIN_GO (https://go.dev/dl) or put a dolt >= $MIN_VERSION on PATH"
go_version=$(go env GOVERSION | sed 's/^go//')
version_ge "$go_version" "$MIN_GO" || die "Go $go_version is too old; Dolt needs Go >= $MIN_GO"
command -v gcc >/dev/null 2>&1 || die "gcc is missing; Dolt's cgo parts need it (apt-get install build-essential)"

if ! dpkg -s libicu-dev >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing libicu-dev"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libicu-dev) >&2 \
      || die "could not install libicu-dev"
  elif command -v dpkg >/dev/null 2>&1; then
    die "libicu-dev is missing; run: sudo apt-get install libicu-dev"
  fi
fi

mkdir -p "$BIN_DIR"
: >"$LOG"
for ref in "${CANDIDATES[@]}"; do
  say "building dolt from github.com/dolthub/dolt/go@$ref (several minutes; log: $LOG)"
  start=$(date +%s)
  if CGO_ENABLED=1 GOFLAGS=-mod=mod GOBIN="$BIN_DIR.tmp" \
      go install "github.com/dolthub/dolt/go/cmd/dolt@$ref" >>"$LOG" 2>&1; then
    mv -f "$BIN_DIR.tmp/dolt" "$BIN_DIR/dolt"
    rmdir "$BIN_DIR.tmp" 2>/dev/null || true
    echo "$ref" >"$BIN_DIR/dolt.ref"
    say "built dolt $(dolt_version "$BIN_DIR/dolt") from $ref in $(( $(date +%s) - start ))s"
    echo "$BIN_DIR/dolt"
    exit 0
  fi
  say "build of $ref failed; last lines of the log:"
  tail -n 15 "$LOG" >&2
done
die "every candidate failed to build; see $LOG"
