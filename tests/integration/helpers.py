"""Helpers for the integration tests: the fixture origin, l2dfs mounts, the index."""

import errno
import hashlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIXTURE_SERVER = REPO / "scripts" / "fixture_server.py"
FAULT_PROXY = REPO / "scripts" / "fault_proxy.py"
DEFAULT_COSTUME = "036_live_event_307_ssr"
TEX0, TEX1 = "textures/texture_00.png", "textures/texture_01.png"  # DEFAULT_COSTUME's textures
LANGS = {"ja": 0, "en": 1, "zh-hant": 2, "zh-hans": 3, "ko": 4}
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")

# Talk to 127.0.0.1 directly, whatever proxy the environment names.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def wait_for(cond, timeout, interval=0.02):
    """Poll cond() until it is truthy or timeout seconds pass; its last value."""
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v or time.monotonic() >= end:
            return v
        time.sleep(interval)


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


def reap(proc, timeout):
    """Wait for a process; kill it if it outlives timeout. True if killed."""
    try:
        proc.wait(timeout)
        return False
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return True


class Origin:
    """A fixture_server.py process (see that script for the control API)."""

    script = FIXTURE_SERVER

    def __init__(self, workdir, args=()):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.args = list(args)
        self.port = 0
        self.proc = None
        self.start()

    def start(self):
        """Start (or restart on the same port)."""
        port_file = self.workdir / "port"
        if port_file.exists():
            port_file.unlink()
        self.log = open(self.workdir / "origin.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, str(self.script), "--port", str(self.port), "--port-file", str(port_file)]
            + self.args, stdout=self.log, stderr=subprocess.STDOUT)
        if not wait_for(lambda: port_file.exists() or self.proc.poll() is not None, 10):
            raise RuntimeError("fixture server did not start")
        if self.proc.poll() is not None:
            raise RuntimeError("fixture server exited: " + (self.workdir / "origin.log").read_text())
        self.port = int(port_file.read_text())

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            reap(self.proc, 5)
        self.proc = None
        self.log.close()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    @property
    def api(self):
        return self.url + "/api"

    @property
    def assets(self):
        return self.url + "/assets"

    def request(self, method, path, body=None, timeout=10):
        """(status, headers, bytes) of one request to the origin."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        try:
            with _opener.open(req, timeout=timeout) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def control(self, method, path, body=None):
        status, _, raw = self.request(method, path, body)
        out = json.loads(raw)
        if status != 200:
            raise RuntimeError("%s %s: %s" % (method, path, out))
        return out

    def stats(self):
        return self.control("GET", "/__control/stats")

    def count(self, method, path):
        return self.stats()["requests"].get("%s %s" % (method, path), 0)

    def requests(self):
        return self.stats()["requests"]

    def request_log(self):
        """[[t, method, path, accept_encoding], ...] since the start or reset."""
        return self.control("GET", "/__control/log")["log"]

    def asset_gets(self):
        """{"GET <path>": count} of requests for asset bytes (buildData aside)."""
        return {k: n for k, n in self.requests().items()
                if k.startswith("GET /assets/") and not k.endswith("/buildData.asset")}

    def fault(self, **kw):
        return self.control("POST", "/__control/fault", kw)["id"]

    def clear_fault(self, fid):
        self.control("DELETE", "/__control/fault/%d" % fid)

    def reset(self):
        self.control("POST", "/__control/reset")

    def config(self, **kw):
        return self.control("POST", "/__control/config", kw)

    def build_data(self, name, **kw):
        self.control("POST", "/__control/buildData", dict(kw, name=name))

    def document(self, path, **kw):
        self.control("POST", "/__control/document", dict(kw, path=path))

    def expected(self, path):
        status, _, raw = self.request("GET", "/__expected?path=" + urllib.parse.quote(path))
        if status != 200:
            raise KeyError("the origin has no " + path)
        return raw

    def catalogue(self):
        return self.control("GET", "/__control/catalogue")

    def costume(self, name, server="jp"):
        return self.control("GET", "/__control/costume?" + urllib.parse.urlencode({"name": name, "server": server}))


class FaultProxy(Origin):
    """A fault_proxy.py process in front of an origin: mount through it as
    through the origin itself (its .api and .assets)."""

    script = FAULT_PROXY

    def __init__(self, workdir, origin, rate=0.2, kinds=None, stall=2.0, seed=1):
        args = ["--upstream", str(origin.port), "--rate", str(rate), "--stall", str(stall),
                "--seed", str(seed)]
        if kinds is not None:
            args += ["--kinds", ",".join(kinds)]
        Origin.__init__(self, workdir, args)

    def stats(self):
        return self.control("GET", "/__proxy/stats")

    def config(self, **kw):
        return self.control("POST", "/__proxy/config", kw)


def display_name(names, lang="zh-hans"):
    return names[LANGS[lang]] or names[0]


class Costume:
    """A costume of the origin's catalogue, with where it shows in a mount."""

    def __init__(self, origin, name=DEFAULT_COSTUME, lang="zh-hans", server="jp"):
        info = origin.costume(name, server)
        self.info = info
        self.name = name
        self.character = display_name(info["character_names"], lang)
        self.files = {f["rel"]: f["url"] for f in info["files"] if f["exists"]}
        self.missing = {f["rel"]: f["url"] for f in info["files"] if not f["exists"]}
        self.model_json = info["model_json"]

    def path(self, mnt, rel=""):
        return os.path.join(mnt.path, "characters", self.character, self.name, rel)

    def flat(self, mnt, rel=""):
        return os.path.join(mnt.path, "costumes", self.name, rel)

    def url(self, rel):
        return self.files.get(rel) or self.missing[rel]

    def cache_file(self, cache, rel, server="jp"):
        f = next(x for x in self.info["files"] if x["rel"] == rel)
        return os.path.join(cache, "live2d", "assets", server, f["bundle"], f["file"])


def costume(origin, name=DEFAULT_COSTUME, **kw):
    return Costume(origin, name, **kw)


def index_rows(cache_dir, sql, params=()):
    """Rows (as dicts) of a read-only query on <cache_dir>/index.db."""
    uri = "file:%s?mode=ro" % urllib.parse.quote(os.path.join(str(cache_dir), "index.db"))
    db = sqlite3.connect(uri, uri=True, timeout=10)
    try:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute(sql, params)]
    finally:
        db.close()


def asset_row(cache_dir, bundle, file, server="jp"):
    rows = index_rows(cache_dir, "SELECT * FROM assets WHERE server=? AND bundle=? AND file=?",
                      (server, bundle, file))
    return rows[0] if rows else None


def file_row(m, c, rel):
    """The index's asset row behind the file rel of costume c in mount m."""
    f = next(x for x in c.info["files"] if x["rel"] == rel)
    return asset_row(m.cache, f["bundle"], f["file"])


def mount_fstype(path):
    """The fstype /proc/self/mountinfo gives for a mount point, or None."""
    want = os.fsencode(os.path.realpath(path))
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            left, _, right = line.partition(b" - ")
            mp = re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), left.split(b" ")[4])
            if mp == want:
                return right.split(b" ")[0].decode()
    return None


def find_daemon(binary, mountpoint):
    """The pid of a process running binary with mountpoint as its last argument."""
    want_exe, want_mp = os.path.realpath(binary), os.fsencode(mountpoint)
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            argv = open("/proc/%s/cmdline" % d, "rb").read().split(b"\0")[:-1]
            exe = os.path.realpath("/proc/%s/exe" % d)
        except OSError:
            continue
        if exe == want_exe and argv and argv[-1] == want_mp:
            return int(d)
    return None


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ")[-1][:1] != "Z"
    except OSError:
        return False


class Mount:
    """One l2dfs process and its mount point: `l2dfs -f` (stderr in .log) or,
    with foreground=False, the daemon it leaves behind."""

    def __init__(self, binary, origin, cache, mountpoint, opts=None, env=None, args=(), foreground=True):
        self.binary, self.origin = str(binary), origin
        self.cache, self.path = str(cache), str(mountpoint)
        self.opts, self.extra_env, self.args = dict(opts or {}), dict(env or {}), list(args)
        self.foreground = foreground
        self.proc, self.daemon_pid, self.killed = None, None, False
        self.log = os.path.join(os.path.dirname(self.path), os.path.basename(self.path) + ".log")

    def command(self):
        o = {}
        if self.origin is not None:
            o.update(api_url=self.origin.api, assets_url=self.origin.assets)
        o.update(cache_dir=self.cache, retry_base_ms="20", log_level="debug")
        o.update(self.opts)
        parts = [k if v is True else "%s=%s" % (k, v) for k, v in o.items() if v is not None and v is not False]
        return [self.binary] + (["-f"] if self.foreground else []) + self.args + ["-o", ",".join(parts), self.path]

    def env(self):
        env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
        env.update(self.extra_env)
        return env

    def start(self, timeout=10):
        os.makedirs(self.path, exist_ok=True)
        self.killed = False
        with open(self.log, "ab") as logf:
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=subprocess.STDOUT, env=self.env())
        if self.foreground:
            ok = wait_for(lambda: self.proc.poll() is not None or mount_fstype(self.path) == "fuse.l2dfs", timeout)
            failed = self.proc.poll() is not None or not ok
        else:
            rc = reap(self.proc, timeout)
            ok = wait_for(lambda: mount_fstype(self.path) == "fuse.l2dfs", timeout)
            self.daemon_pid = find_daemon(self.binary, self.path) if ok else None
            failed = rc or self.proc.returncode != 0 or not ok or self.daemon_pid is None
        if failed:
            rc = self.proc.poll()
            self.unmount()
            raise AssertionError("l2dfs did not mount %s (exit %s):\n%s" % (self.path, rc, self.log_text()))
        return self

    @property
    def pid(self):
        return self.proc.pid if self.foreground else self.daemon_pid

    def log_text(self):
        try:
            with open(self.log, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def alive(self):
        if self.foreground:
            return self.proc is not None and self.proc.poll() is None
        return self.daemon_pid is not None and pid_alive(self.daemon_pid)

    def unmount(self):
        """Unmount (lazily as a last resort), wait for the process; its exit
        code (None for a daemon, whose code cannot be had)."""
        if mount_fstype(self.path) is not None:
            r = subprocess.run(["fusermount3", "-u", self.path], capture_output=True)
            if r.returncode != 0:
                subprocess.run(["fusermount3", "-uz", self.path], capture_output=True)
        if self.proc is None:
            return None
        if self.foreground:
            if reap(self.proc, 10):
                self.killed = True
            return self.proc.returncode
        if self.alive() and not wait_for(lambda: not self.alive(), 10):
            self.kill9()
        return None

    def kill9(self):
        if self.pid is not None and self.alive():
            os.kill(self.pid, signal.SIGKILL)
            wait_for(lambda: not self.alive(), 10)
        if self.foreground:
            self.proc.wait()
        self.killed = True

    def __getitem__(self, rel):
        return os.path.join(self.path, rel)


def sanitizer_report(text):
    for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "WARNING: ThreadSanitizer"):
        if marker in text:
            return marker
    return None


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def oserror(fn, *args):
    """The errno fn(*args) fails with, or 0."""
    try:
        fn(*args)
    except OSError as e:
        return e.errno
    return 0


def read_errno(path):
    """The errno reading the file at path fails with, or 0."""
    return oserror(read_file, path)


def errname(e):
    return errno.errorcode.get(e, str(e)) if e else "ok"

