"""What the fault, crash, disk and stress tests check after every mishap: the
cache holds no partial file and no wrong byte, and the index agrees with it."""

import json
import os
import subprocess

from helpers import index_rows, read_file, sha256, wait_for

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
        try:
            lost += os.lstat(p).st_size
        except FileNotFoundError:
            continue  # committed (renamed) since it was listed
        what.append("temporary " + p)
    for url, p in cached_files(cache).items():
        data = read_file(p)
        try:
            good = origin.expected(url) == data
        except KeyError:
            good = False
        if not good:
            lost += len(data)
            what.append("wrong bytes in " + p)
    return lost, what


def index_problems(cache):
    """Completed rows whose file is missing, or has another size or SHA-256."""
    out = []
    for r in index_rows(cache, "SELECT server, bundle, file, size, sha256 FROM assets WHERE state='completed'"):
        p = os.path.join(assets_dir(cache), r["server"], r["bundle"], r["file"])
        size, digest = r["size"], r["sha256"]
        try:
            data = read_file(p)
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
    """No temporary, no wrong byte, an index that agrees with the files. A
    reader is served before the commit: commits under way may finish first."""
    lost, what = wait_for(lambda: (lambda r: None if r[1] else r)(wrong_bytes(cache, origin)), 10) or \
        wrong_bytes(cache, origin)
    assert lost == 0 and not what, what
    assert index_problems(cache) == []
