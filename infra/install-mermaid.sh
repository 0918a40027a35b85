#!/usr/bin/env bash
# Install the real Mermaid parser the tests check `platform-kit lineage --format mermaid` with:
# the npm packages pinned in infra/mermaid/package-lock.json (mermaid, and jsdom for the DOM its
# sanitizer needs), into infra/mermaid/node_modules. Idempotent; `make test` runs it.
#   bash infra/install-mermaid.sh    (then: node infra/mermaid/parse.mjs FILE.mmd)
set -euo pipefail
cd "$(dirname "$0")/mermaid"
if ! command -v npm >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get install -y -q nodejs npm >/dev/null
  else
    echo "install-mermaid: node and npm are missing (apt-get install nodejs npm)" >&2
    exit 1
  fi
fi
# npm ci again only when the lock changed since the last install.
if ! cmp -s package-lock.json node_modules/.platform-kit-lock 2>/dev/null; then
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
  cp package-lock.json node_modules/.platform-kit-lock
fi
echo "$PWD/parse.mjs"
