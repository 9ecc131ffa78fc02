#!/usr/bin/env bash
# The first run on a machine where Bestdori may be unreachable: a local
# Bestdori-shaped origin on 127.0.0.1, l2dfs mounted on ./mnt, a short tour.
#   scripts/demo.sh start    (make demo)
#   scripts/demo.sh stop     (make demo-stop)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
state=$top/.demo
mnt=$top/mnt
py=/usr/bin/python3

stop() {
	if mountpoint -q "$mnt" 2>/dev/null || grep -q " $mnt fuse.l2dfs " /proc/mounts; then
		fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" || true
		echo "unmounted $mnt"
	fi
	if [ -f "$state/origin.pid" ]; then
		kill "$(cat "$state/origin.pid")" 2>/dev/null || true
		rm -f "$state/origin.pid"
		echo "stopped the demo origin"
	fi
}

start() {
	if ! command -v fusermount3 >/dev/null || ! pkg-config --exists fuse3 libcurl libcjson sqlite3 2>/dev/null ||
		[ ! -x "$py" ]; then
		echo "== installing dependencies (scripts/install-deps.sh)"
		scripts/install-deps.sh
	fi
	echo "== building"
	make -s all
	stop >/dev/null 2>&1 || true
	mkdir -p "$state" "$mnt"
	rm -f "$state/port"
	"$py" scripts/fixture_server.py --port 0 --port-file "$state/port" --latency-ms 20 \
		>"$state/origin.log" 2>&1 &
	echo $! >"$state/origin.pid"
	for _ in $(seq 50); do [ -s "$state/port" ] && break; sleep 0.1; done
	[ -s "$state/port" ] || { echo "the demo origin did not start: see $state/origin.log"; exit 1; }
	origin="http://127.0.0.1:$(cat "$state/port")"
	build/l2dfs -o "api_url=$origin/api,assets_url=$origin/assets,cache_dir=$state/cache" "$mnt"
	echo "== mounted a local Bestdori-shaped origin ($origin) on $mnt"
	tour
	cat <<EOF

Try: ls $mnt/characters; cat $mnt/costumes/*/name.txt; getfattr -d $mnt/costumes/<costume>/<file>
Cache: $state/cache   Stop: make demo-stop
For real: build/l2dfs ~/live2d   (unmount: fusermount3 -u ~/live2d)
EOF
}

tour() {
	local c
	set -x
	ls "$mnt"
	ls "$mnt/characters"
	c=$(ls "$mnt/characters" | head -n 1)
	ls "$mnt/characters/$c"
	costume=$(ls "$mnt/characters/$c" | head -n 1)
	ls -l "$mnt/characters/$c/$costume"
	head -n 20 "$mnt/characters/$c/$costume/model.json"
	rm -rf "$state/copy" && time cp -r "$mnt/characters/$c/$costume" "$state/copy"
	find "$state/copy" -type f | wc -l
	{ set +x; } 2>/dev/null
}

case "${1:-start}" in
start) start ;;
stop) stop ;;
*) echo "usage: $0 start|stop" >&2; exit 1 ;;
esac
