"""What the fault, crash, disk and stress tests check after every mishap: the
cache holds no partial file and no wrong byte, the index agrees with it, and
no read can hang a test."""

import errno
import hashlib
import json
import os
import sqlite3
import subprocess
import threading
import time
import urllib.parse

TEMP_PREFIX = ".tmp."


def assets_dir(cache):
    return os.path.join(str(cache), "live2d", "assets")


def temps(cache):
    """Temporaries (half-written downloads) anywhere under the cache's assets."""
    out = []
    for d, dirs, files in os.walk(assets_dir(cache)):
        out += [os.path.join(d, n) for n in dirs + files if n.startswith(TEMP_PREFIX)]
    return out


def cached_files(cache):
    """{origin URL path: cache file} for every finished file in the cache."""
    root = assets_dir(cache)
    out = {}
    for d, dirs, files in os.walk(root):
        for n in files:
            if n.startswith(TEMP_PREFIX):
                continue
            server, _, bundle = os.path.relpath(d, root).partition("/")
            out["/assets/%s/%s_rip/%s" % (server, bundle, n)] = os.path.join(d, n)
    return out


def sha256(data):
    return hashlib.sha256(data).hexdigest()


class Remembered:
    """An origin's expected() remembered per URL (the bytes of a path never
    change), for checks that look at the same files again and again."""

    def __init__(self, origin):
        self.origin, self.memo = origin, {}

    def expected(self, url):
        if url not in self.memo:
            self.memo[url] = self.origin.expected(url)
        return self.memo[url]


def wrong_bytes(cache, origin):
    """Bytes the cache holds that the origin would not serve: temporaries and
    files whose content differs from the origin's (must always be 0), with
    what they are."""
    lost, what = 0, []
    for p in temps(cache):
        lost += os.lstat(p).st_size
        what.append("temporary " + p)
    for url, p in cached_files(cache).items():
        data = open(p, "rb").read()
        try:
            good = origin.expected(url) == data
        except KeyError:
            good = False
        if not good:
            lost += len(data)
            what.append("wrong bytes in " + p)
    return lost, what


def index_db(cache):
    uri = "file:%s?mode=ro" % urllib.parse.quote(os.path.join(str(cache), "index.db"))
    return sqlite3.connect(uri, uri=True, timeout=10)


def index_problems(cache):
    """Completed rows whose file is missing, or has another size or SHA-256."""
    db = index_db(cache)
    try:
        rows = db.execute("SELECT server, bundle, file, size, sha256 FROM assets"
                          " WHERE state='completed'").fetchall()
    finally:
        db.close()
    out = []
    for server, bundle, file, size, digest in rows:
        p = os.path.join(assets_dir(cache), server, bundle, file)
        try:
            data = open(p, "rb").read()
        except OSError as e:
            out.append("%s: %s" % (p, os.strerror(e.errno)))
            continue
        if len(data) != size:
            out.append("%s: %d bytes, the index says %d" % (p, len(data), size))
        elif sha256(data) != digest:
            out.append("%s: SHA-256 differs from the index" % p)
    return out


def verify(l2dfs_bin, cache):
    """(exit status, problem lines) of `l2dfs verify --json` on the cache."""
    r = subprocess.run([l2dfs_bin, "verify", "--json", "-o", "cache_dir=%s" % cache], capture_output=True,
                       text=True, timeout=120, stdin=subprocess.DEVNULL)
    events = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
    assert events and events[-1].get("event") == "done", r.stdout + r.stderr
    return r.returncode, [e for e in events if e.get("event") == "problem"]


def assert_sound(cache, origin):
    """No temporary, no wrong byte, an index that agrees with the files."""
    lost, what = wrong_bytes(cache, origin)
    assert lost == 0 and not what, what
    assert index_problems(cache) == []


def timed(fn, *args, timeout=30):
    """(errno or 0, value, seconds) of fn(*args) run in a thread; fails the
    test if it has not returned after timeout seconds (a hung reader)."""
    out = {}

    def run():
        t0 = time.monotonic()
        try:
            out["value"] = fn(*args)
            out["errno"] = 0
        except OSError as e:
            out["errno"] = e.errno
        out["seconds"] = time.monotonic() - t0

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "%s%r still blocked after %.0f s" % (fn.__name__, args, timeout)
    return out["errno"], out.get("value"), out["seconds"]


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def errname(e):
    return errno.errorcode.get(e, str(e)) if e else "ok"
