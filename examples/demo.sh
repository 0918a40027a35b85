#!/usr/bin/env bash
# `make demo`: run the main job on the bundled example twice — the first export of the sheets,
# then an analyst's edit — and show that only the affected models retrain and a new release
# tag appears. Works on a copy of the project (examples/ itself is never modified).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="${DEMO_DIR:-build/demo}"
KIT="${KIT:-platform-kit}"
config="$WORK/platform.yaml"

banner() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

if [ -f "$config" ]; then "$KIT" --config "$config" services down >/dev/null 2>&1 || true; fi
rm -rf "$WORK" && mkdir -p "$WORK"
cp examples/platform.yaml "$WORK"/ && cp -r examples/sheets "$WORK"/sheets
# Each demo starts a fresh MLflow, so its versions restart at 1 and its release tags (the MD5 of
# {model: version}) come again. The registry outlives the demo and the kit never overwrites a
# tag with other content: each run pushes to a repository of its own.
repository="127.0.0.1:5000/intent-adapters-demo-$(date -u +%Y%m%d%H%M%S)"
sed -i "s#^  image: 127.0.0.1:5000/intent-adapters\$#  image: $repository#" "$config"
grep -q "^  image: $repository\$" "$config" || { echo "demo: no release.image to replace in $config" >&2; exit 1; }

banner "phase 1: the analysts' first export ($(ls "$WORK"/sheets | tr '\n' ' '))"
"$KIT" --config "$config" run --json >"$WORK/run1.json"
first_tag=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["release"]; print(r["tag"] if r else "")' "$WORK/run1.json")

banner "phase 2: the analyst's edit (one customer's rows edited, one customer added)"
cp examples/sheets-v2/* "$WORK"/sheets/
"$KIT" --config "$config" run --json >"$WORK/run2.json"

banner "what changed"
python3 - "$WORK/run1.json" "$WORK/run2.json" <<'PY'
import json, sys
one, two = (json.load(open(p)) for p in sys.argv[1:])
print(f"phase 1 trained {len(one['trained'])} models; release {one['release'] and one['release']['tag']}")
print(f"phase 2 trained {len(two['trained'])}: {', '.join(two['trained']) or 'none'}")
for m in two["plan"]["models"]:
    if m["train"]:
        print(f"  {m['name']}: {m['reason']} ({m['detail']})")
print(f"phase 2 release {two['release'] and two['release']['tag']}")
if two["release_skipped"]:
    print(f"release skipped: {two['release_skipped']}")
PY

banner "rerun with no change"
"$KIT" --config "$config" run | tail -n 3

if [ -n "$first_tag" ]; then
  banner "lineage of the new release"
  "$KIT" --config "$config" lineage "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["release"]["tag"])' "$WORK/run2.json")" | head -n 20
  banner "to roll production back to the first release"
  echo "  platform-kit --config $config release rollback $first_tag"
fi
