"""Running `l2dfs <subcommand>` against a fixture origin, for the test_cli_* files."""

import json
import os
import subprocess

import pytest

from helpers import PROXY_VARS, sanitizer_report

SUBCOMMANDS = ("pull", "search", "characters", "costumes", "cat", "status", "retry", "gc", "verify")


class Cli:
    """`l2dfs CMD -o api_url=...,assets_url=...,cache_dir=... ARGS` for one cache."""

    def __init__(self, binary, origin, cache, opts=None):
        self.binary, self.origin, self.cache = binary, origin, str(cache)
        self.opts = dict(opts or {})

    def options(self, extra=None):
        o = {"api_url": self.origin.api, "assets_url": self.origin.assets,
             "cache_dir": self.cache, "retry_base_ms": "20"}
        o.update(self.opts)
        o.update(extra or {})
        return ",".join(k if v is True else "%s=%s" % (k, v) for k, v in o.items())

    def argv(self, cmd, *args, opts=None):
        return [self.binary, cmd, "-o", self.options(opts)] + [str(a) for a in args]

    @staticmethod
    def env():
        env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
        return env

    def __call__(self, cmd, *args, opts=None, timeout=60):
        r = subprocess.run(self.argv(cmd, *args, opts=opts), capture_output=True, text=True,
                           timeout=timeout, env=self.env())
        report = sanitizer_report(r.stderr)
        assert not report, "%s in l2dfs %s:\n%s" % (report, cmd, r.stderr[-6000:])
        return r

    def popen(self, cmd, *args, opts=None):
        return subprocess.Popen(self.argv(cmd, *args, opts=opts), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=self.env())


@pytest.fixture
def cli(l2dfs_bin, origin, tmp_path):
    """A Cli on the test's origin and a fresh cache (tmp_path/cache0, a mount's default)."""
    return Cli(l2dfs_bin, origin, tmp_path / "cache0")


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def tree(root):
    """{relative path: bytes} of the files under root, and the set of folders."""
    files, dirs = {}, set()
    for d, dn, fn in os.walk(root):
        for n in dn:
            dirs.add(os.path.relpath(os.path.join(d, n), root))
        for n in fn:
            p = os.path.join(d, n)
            with open(p, "rb") as f:
                files[os.path.relpath(p, root)] = f.read()
    return files, dirs


def cache_path(cache, url):
    """Where the cache keeps the asset served at url ("/assets/<server>/<bundle>_rip/<file>")."""
    _, _, server, rest = url.split("/", 3)
    bundle, _, file = rest.rpartition("_rip/")
    return os.path.join(str(cache), "live2d", "assets", server, bundle, file)


def temporaries(root):
    """Paths of cache or materialization temporaries under root."""
    return [os.path.join(d, n) for d, _, fn in os.walk(root) for n in fn if n.startswith(".tmp.")]


def cached_bytes(cache):
    """Bytes of the asset files under cache (temporaries aside)."""
    total = 0
    for d, _, fn in os.walk(os.path.join(str(cache), "live2d", "assets")):
        for n in fn:
            if not n.startswith(".tmp."):
                try:
                    total += os.lstat(os.path.join(d, n)).st_size
                except FileNotFoundError:
                    pass
    return total


def test_every_subcommand_has_help(cli, l2dfs_bin):
    for cmd in SUBCOMMANDS:
        r = subprocess.run([l2dfs_bin, cmd, "--help"], capture_output=True, text=True, timeout=10)
        assert r.returncode == 0, (cmd, r.stderr)
        assert r.stdout.startswith("usage: l2dfs %s" % cmd), (cmd, r.stdout)
        r = subprocess.run([l2dfs_bin, cmd, "--no-such-flag"], capture_output=True, text=True,
                           timeout=10)
        assert r.returncode == 1 and "usage: l2dfs %s" % cmd in r.stderr, (cmd, r.stderr)
    r = cli("gc", "-o", "lang=xx", "--max-size", "1M")
    assert r.returncode == 1 and "lang" in r.stderr
