#!/bin/sh
# soak.sh [MINUTES]: the crash, stress and shutdown tests again and again,
# longer than the suite runs them (more kill -9 rounds, a longer stress run,
# a new random seed each pass), until MINUTES have passed (default 30) or a
# pass fails. Each pass prints its seed; L2DFS_CRASH_SEED=<seed> replays the
# crash timings of a failed one. Needs root (FUSE, tmpfs) like the suite.
#
#   ROUNDS=100      kill -9 rounds per pass
#   STRESS=120      seconds of the 16-thread stress run per pass
#   L2DFS_BIN       the binary (default build/l2dfs)
set -eu

cd "$(dirname "$0")/.."
minutes=${1:-30}
rounds=${ROUNDS:-100}
stress=${STRESS:-120}
bin=${L2DFS_BIN:-$PWD/build/l2dfs}
[ -x "$bin" ] || make -s
end=$(( $(date +%s) + minutes * 60 ))
pass=0

while [ "$(date +%s)" -lt "$end" ]; do
	pass=$((pass + 1))
	seed=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
	echo "== pass $pass, seed $seed"
	log=$(mktemp)
	status=0
	L2DFS_BIN=$bin L2DFS_CRASH_SEED=$seed L2DFS_CRASH_ROUNDS=$rounds \
		L2DFS_STRESS_SECONDS=$stress L2DFS_TEST_TIMEOUT=$((rounds * 3 + stress + 300)) \
		/usr/bin/python3 -m pytest -q -rA \
		tests/integration/test_crash.py tests/integration/test_stress.py \
		tests/integration/test_disk.py \
		"tests/integration/test_faults.py::test_origin_down" \
		"tests/integration/test_faults.py::test_silent_origin_times_out" >"$log" 2>&1 || status=$?
	grep -E "^(CRASH|STRESS|SHUTDOWN|FAULT)|passed|failed" "$log" || true
	if [ "$status" -ne 0 ]; then
		cat "$log" >&2
		rm -f "$log"
		echo "soak: pass $pass failed (seed $seed)" >&2
		exit 1
	fi
	rm -f "$log"
done
echo "soak: $pass passes, no failure"
