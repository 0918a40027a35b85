#!/usr/bin/env bash
# Install nektos/act (runs GitHub Actions workflows locally) into $PLATFORM_KIT_CACHE/bin,
# built from its Go module. Used to run .github/workflows/pipeline.yml on one machine:
#   act workflow_dispatch -W .github/workflows/pipeline.yml -P self-hosted=-self-hosted ...
set -euo pipefail
exec bash "$(dirname "$0")/install-go-tool.sh" act \
  "github.com/nektos/act@${ACT_VERSION:-v0.2.87}" 1.24
