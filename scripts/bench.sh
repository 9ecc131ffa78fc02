#!/usr/bin/env bash
# make bench: l2dfs against curl, aria2 and the local disk on a local
# Bestdori-shaped origin (scripts/bench_origin.js). Options go to bench.py
# (--latency-ms, --reps, --cases, --json, --keep); L2DFS_BIN picks another binary.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
for tool in node curl fusermount3; do
	command -v "$tool" >/dev/null || { echo "bench: $tool is needed (scripts/install-deps.sh)" >&2; exit 1; }
done
bin=${L2DFS_BIN:-$top/build/l2dfs}
[ -x "$bin" ] || { echo "bench: $bin is missing (make all)" >&2; exit 1; }
command -v aria2c >/dev/null || echo "bench: aria2c is not installed; its rows are skipped (scripts/install-deps.sh)" >&2
exec /usr/bin/python3 "$top/scripts/bench.py" "$@"
