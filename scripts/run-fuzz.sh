#!/bin/sh
# Usage: scripts/run-fuzz.sh BIN SECONDS [libFuzzer options...]
#
# Run the libFuzzer binary BIN (build-fuzz/fuzz_<target>) for SECONDS on a
# scratch copy of its seed corpus tests/fuzz/corpus/<target>/, so that the
# committed corpus never changes. Inputs that crash are kept beside BIN as
# crash-<target>-*; the exit status is non-zero when one was found.
set -eu

if [ $# -lt 2 ]; then
	echo "usage: $0 BIN SECONDS [libFuzzer options...]" >&2
	exit 2
fi
bin=$1
seconds=$2
shift 2

name=$(basename "$bin")
target=${name#fuzz_}
root=$(cd "$(dirname "$0")/.." && pwd)
seeds=$root/tests/fuzz/corpus/$target
artifacts=$(cd "$(dirname "$bin")" && pwd)

work=$(mktemp -d "${TMPDIR:-/tmp}/l2dfs-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
mkdir "$work/corpus"
if [ -d "$seeds" ]; then
	cp -R "$seeds/." "$work/corpus/"
fi

echo "== $name: ${seconds}s on a copy of ${seeds#"$root"/}"
status=0
"$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=30 \
	-artifact_prefix="$artifacts/crash-$target-" -print_final_stats=1 \
	"$@" "$work/corpus" >"$work/log" 2>&1 || status=$?
if [ "$status" -eq 0 ]; then
	tail -n 12 "$work/log"
else
	grep -v '^#[0-9]' "$work/log" || true
	echo "$name: failed (exit $status); reproduce with: $bin $artifacts/crash-$target-*" >&2
	exit 1
fi
