#!/bin/sh
# Install what the viewer test (tests/integration/test_viewer.py) needs:
# Debian's chromium (through install-deps.sh) and the npm packages of
# tests/viewer/package.json (a Cubism 2 viewer, the Cubism 2.1 core, two real
# models, playwright-core) in tests/viewer/.deps/, none of them committed.
# Idempotent and quiet (messages go to stderr): with nothing to do it prints
# nothing and takes no time. Exits non-zero if anything could not be had.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
viewer=$top/tests/viewer
deps=${L2DFS_VIEWER_DEPS:-$viewer/.deps}
chromium=${L2DFS_CHROMIUM:-/usr/bin/chromium}

die() { echo "viewer-deps: $*" >&2; exit 1; }

# chromium, nodejs and npm are among the packages install-deps.sh installs.
if [ ! -x "$chromium" ] || ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	"$top/scripts/install-deps.sh" >&2
fi
[ -x "$chromium" ] || die "no chromium at $chromium"
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || die "node and npm are needed"

# The stamp records the package.json and the core wrapper that produced .deps.
stamp=$(cat "$viewer/package.json" "$viewer/wrap-core.js" | sha256sum | cut -d' ' -f1)
if [ -f "$deps/stamp" ] && [ "$(cat "$deps/stamp")" = "$stamp" ] &&
   [ -f "$deps/live2d.core.classic.js" ] && [ -d "$deps/node_modules/playwright-core" ]; then
	exit 0
fi

mkdir -p "$deps"
rm -f "$deps/stamp"
cp "$viewer/package.json" "$deps/package.json"
log=$(mktemp)
# --ignore-scripts: no install script runs, so no browser is downloaded.
if ! (cd "$deps" && npm install --ignore-scripts --no-audit --no-fund --no-package-lock \
	--no-update-notifier --loglevel=error) >"$log" 2>&1; then
	tail -n 30 "$log" >&2
	rm -f "$log"
	die "npm install failed in $deps"
fi
rm -f "$log"
node "$viewer/wrap-core.js" "$deps/node_modules/live2d-widget/src/lib/live2d.core.js" \
	"$deps/live2d.core.classic.js" || die "could not wrap the Cubism 2 core"
printf '%s\n' "$stamp" >"$deps/stamp"
