#!/usr/bin/env bash
# Build a Go command from its module (through the Go module proxy) into $PLATFORM_KIT_CACHE/bin,
# unless that binary is already there. Used for actionlint and act, which ship no other way we
# can reach from a machine whose only outside access is package registries.
#
#   install-go-tool.sh NAME MODULE/PATH/TO/CMD@VERSION [MIN_GO]
#
# Prints the absolute path of the binary on its last line of stdout.
set -euo pipefail

NAME="$1"
PACKAGE="$2"
MIN_GO="${3:-1.22}"
CACHE="${PLATFORM_KIT_CACHE:-$HOME/.cache/platform-kit}"
BIN_DIR="$CACHE/bin"
VERSION="${PACKAGE##*@}"
STAMP="$BIN_DIR/.$NAME-$VERSION"

say() { echo "install-$NAME: $*" >&2; }
die() { say "error: $*"; exit 1; }

if [ -x "$BIN_DIR/$NAME" ] && [ -e "$STAMP" ]; then
  echo "$BIN_DIR/$NAME"
  exit 0
fi

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
  export PATH="/usr/local/go/bin:$PATH"
fi
command -v go >/dev/null 2>&1 || die "Go is not installed; install Go >= $MIN_GO (https://go.dev/dl)"
go_version=$(go env GOVERSION | sed 's/^go//')
[ "$(printf '%s\n%s\n' "$MIN_GO" "$go_version" | sort -V | head -n1)" = "$MIN_GO" ] \
  || die "Go $go_version is too old; $NAME needs Go >= $MIN_GO"

mkdir -p "$BIN_DIR"
say "building $PACKAGE (one time; cached in $BIN_DIR)"
# GOTOOLCHAIN=local: never download another Go toolchain; GOFLAGS=-mod=mod: resolve from go.mod.
GOBIN="$BIN_DIR" GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0 go install "$PACKAGE" >&2
rm -f "$BIN_DIR/.$NAME-"*
touch "$STAMP"
echo "$BIN_DIR/$NAME"
