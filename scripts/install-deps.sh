#!/bin/sh
# Install what building and testing l2dfs needs on Debian 12; idempotent and
# quiet: nothing is printed when nothing is missing.
set -eu

PACKAGES="build-essential pkg-config libfuse3-dev fuse3 libcurl4-openssl-dev libcjson-dev
libsqlite3-dev libssl-dev libcmocka-dev python3-pytest python3-requests sqlite3 curl attr libutf8proc-dev
clang libclang-rt-14-dev libmicrohttpd-dev zlib1g-dev aria2 nginx-light psmisc nodejs npm chromium chromium-driver"

die() { echo "install-deps: $*" >&2; exit 1; }

as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		die "not root and no sudo: cannot run $*"
	fi
}

# Installed packages and what they provide (Node.js builds that bundle npm
# provide "npm", and conflict with Debian's own).
have=$(dpkg-query -W -f='${db:Status-Status} ${Package}, ${Provides}\n' 2>/dev/null |
	awk '$1 == "installed" { sub(/^installed /, ""); gsub(/ *\([^)]*\)/, ""); gsub(/, */, "\n"); print }')
missing=""
for p in $PACKAGES; do
	printf '%s\n' "$have" | grep -qx "$p" || missing="$missing $p"
done

if [ -n "$missing" ]; then
	command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install by hand:$missing"
	echo "install-deps: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	log=$(mktemp)
	if ! as_root apt-get update -q >"$log" 2>&1 ||
	   ! as_root apt-get install -y -q --no-install-recommends $missing >>"$log" 2>&1; then
		tail -n 20 "$log" >&2
		rm -f "$log"
		die "apt-get failed for:$missing"
	fi
	rm -f "$log"
fi

if [ ! -c /dev/fuse ]; then
	as_root modprobe fuse >/dev/null 2>&1 || true
	[ -c /dev/fuse ] || as_root mknod -m 0666 /dev/fuse c 10 229 ||
		die "/dev/fuse is missing and could not be created"
fi
