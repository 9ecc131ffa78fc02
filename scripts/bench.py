#!/usr/bin/python3
"""
l2dfs benchmark (`make bench`): l2dfs against curl, aria2 and the local disk,
on a Bestdori-shaped origin with a fixed per-request latency
(scripts/bench_origin.js). Builds nothing; prints one table and writes
bench.json at the repository root.

Cases (each repeated, the median kept; "cold" means a fresh cache or mount;
l2dfs and its baselines alternate run by run):
  1 cold assets, catalogue and buildData indexed: `cp -r` of a ~90-file costume
    out of the mount vs. curl --parallel over the same protocol (h2c, h2 over TLS,
    HTTP/1.1), curl --parallel-max 10 (the Python downloader's workers), aria2c
    -j16 -x16; rows 1* show what the sizes probe and the engine's limits cost
  2 fully cold (empty cache, fresh mount) `cp -r` vs. 3 x latency + bytes / bandwidth
  3 a viewer (model.json, then each file it names, one after another), catalogue
    and buildData indexed, assets cold, vs. 2 x latency + bytes / bandwidth;
    rows 3*: the first read of one small file of a cold costume vs. one curl GET
  4 warm `cp -r` through the mount vs. `cp -r` of the same cache files (page cache
    dropped, then warm)
  5 64 MiB sequential read through the mount vs. from the cache file (5*: again
    on the same mount, from its page cache)
  6 `ls -lR` of a fully cached character through the mount vs. a pulled copy
  7 mount to first `ls characters`, and resident memory after listing everything,
    with the full real catalogue (3,639 bundles)
  8 a realistic link: a second origin throttled to one shared 6 MB/s at 80 ms
    per request, HTTP/2 and HTTP/1.1: fully cold `cp -r`, the viewer pattern and
    `l2dfs pull` of the big costume against the bound (catalogue documents,
    buildData, then all assets, each one round trip, plus the bytes at 6 MB/s,
    the documents gzip-encoded as the site serves them;
    the viewer: catalogue and buildData indexed), `pull` against curl -Z 16, and
    the request rate of `ls -lR` over the benchmark's character under the
    default request budget (max_rate=20, rate_burst=200)
Targets are printed next to each ratio; the benchmark never adapts to them.

usage: bench.py [--latency-ms 40] [--reps 3] [--cases 1,2,...] [--json FILE] [--keep]
"""

import argparse
import atexit
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(os.environ.get("L2DFS_BIN", REPO / "build" / "l2dfs"))
ORIGIN_JS = REPO / "scripts" / "bench_origin.js"
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
MiB = 1024 * 1024
LINK_BPS = 6e6        # case 8: one shared link to the site
LINK_LATENCY_MS = 80

_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

# How each client speaks each protocol. "h2" is HTTP/2 over TLS (ALPN) with a
# throw-away certificate; "h2c" is cleartext with prior knowledge.
PROTOS = {
    "h2c": {"label": "h2c", "scheme": "http", "curl": ["--http2-prior-knowledge"], "l2dfs": ["h2c"]},
    "h2": {"label": "h2 (TLS)", "scheme": "https", "curl": ["--http2", "-k"], "l2dfs": ["insecure"]},
    "h1": {"label": "HTTP/1.1", "scheme": "http", "curl": ["--http1.1"], "l2dfs": []},
}

# Everything started here, for the cleanup that runs whatever happens.
PROCS = []
MOUNTS = []


def child_env():
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def mounted(path):
    want = os.fsencode(os.path.realpath(path))
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            mp = re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), line.split(b" ")[4])
            if mp == want:
                return True
    return False


def reap(proc, timeout=10):
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def cleanup():
    for mnt in reversed(MOUNTS):
        if mounted(mnt):
            if subprocess.run(["fusermount3", "-u", mnt], capture_output=True).returncode != 0:
                subprocess.run(["fusermount3", "-uz", mnt], capture_output=True)
    MOUNTS.clear()
    for p in reversed(PROCS):
        if p.poll() is None:
            p.terminate()
            reap(p, 5)
    PROCS.clear()


def on_signal(signum, frame):
    raise SystemExit(128 + signum)


def run(cmd, **kw):
    """Run cmd; seconds it took (wall clock). Raises on failure."""
    t0 = time.perf_counter()
    r = subprocess.run(cmd, stdout=kw.pop("stdout", subprocess.DEVNULL), stderr=subprocess.PIPE,
                       env=child_env(), **kw)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(map(str, cmd[:4])), r.returncode,
                                                 r.stderr.decode(errors="replace")[-2000:]))
    return dt


def drop_page_cache():
    """Drop the kernel's page, dentry and inode caches; False if not allowed."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def median(xs):
    return statistics.median(xs) if xs else float("nan")


# ---- the origin ----

def make_cert(work):
    """A self-signed certificate for 127.0.0.1 ([cert, key] paths), or None."""
    cert, key = work / "cert.pem", work / "key.pem"
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-days", "2",
                        "-keyout", str(key), "-out", str(cert)], capture_output=True)
    return [cert, key] if r.returncode == 0 else None


class Origin:
    def __init__(self, work, latency_ms, extra=()):
        port_file = work / "origin.ports"
        self.logf = open(work / "origin.log", "wb")
        tls = make_cert(work) if shutil.which("openssl") else None
        cmd = ["node", str(ORIGIN_JS), "--latency-ms", str(latency_ms), "--port-file", str(port_file)] + list(extra)
        if tls:
            cmd += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
        self.proc = subprocess.Popen(cmd, stdout=self.logf, stderr=subprocess.STDOUT, env=child_env())
        PROCS.append(self.proc)
        end = time.monotonic() + 30
        while not port_file.exists():
            if self.proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError("the origin did not start: " + (work / "origin.log").read_text())
            time.sleep(0.02)
        ports = json.loads(port_file.read_text())
        self.ports = {k: ports[k] for k in PROTOS if k in ports}
        self.info = self.control("GET", "/__bench")

    def base(self, proto):
        return "%s://127.0.0.1:%d" % (PROTOS[proto]["scheme"], self.ports[proto])

    def control(self, method, path):
        req = urllib.request.Request(self.base("h1") + path, method=method, data=b"" if method == "POST" else None)
        with _opener.open(req, timeout=30) as r:
            return json.loads(r.read())

    def reset(self):
        self.control("POST", "/__stats/reset")

    def stats(self):
        """Counters since the last reset, with a summary of when requests arrived."""
        s = self.control("GET", "/__stats")
        ev = s.pop("events")
        gets = [e[0] for e in ev if e[1] == "GET"]
        heads = [e[0] for e in ev if e[1] == "HEAD"]
        s["first_head_ms"] = min(heads) if heads else None
        s["first_get_ms"] = min(gets) if gets else None
        s["last_request_ms"] = max(e[0] for e in ev) if ev else None
        return s


# ---- l2dfs mounts ----

class Mount:
    def __init__(self, work, origin, proto, cache, name, opts=()):
        self.path = str(work / ("mnt-" + name))
        self.cache = str(cache)
        self.origin, self.proto, self.opts = origin, proto, list(opts)
        self.logpath = work / ("l2dfs-%s.log" % name)
        self.proc = None

    def start(self, wait=True):
        os.makedirs(self.path, exist_ok=True)
        base = self.origin.base(self.proto)
        opts = ["api_url=%s/api" % base, "assets_url=%s/assets" % base, "cache_dir=" + self.cache,
                "log_level=warn"] + PROTOS[self.proto]["l2dfs"] + self.opts
        with open(self.logpath, "ab") as logf:
            self.proc = subprocess.Popen([str(BIN), "-f", "-o", ",".join(opts), self.path],
                                         stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                         env=child_env())
        PROCS.append(self.proc)
        MOUNTS.append(self.path)
        if wait:
            self.wait_mounted()
        return self

    def wait_mounted(self, timeout=10):
        end = time.monotonic() + timeout
        while not mounted(self.path):
            if self.proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError("l2dfs did not mount (exit %s): %s" % (self.proc.poll(), self.log_tail()))
            time.sleep(0.001)

    def log_tail(self):
        try:
            return self.logpath.read_text(errors="replace")[-3000:]
        except FileNotFoundError:
            return ""

    def stop(self):
        if mounted(self.path):
            if subprocess.run(["fusermount3", "-u", self.path], capture_output=True).returncode != 0:
                subprocess.run(["fusermount3", "-uz", self.path], capture_output=True)
        if self.path in MOUNTS:
            MOUNTS.remove(self.path)
        if self.proc:
            reap(self.proc)
            if self.proc in PROCS:
                PROCS.remove(self.proc)
            if self.proc.returncode not in (0, None):
                log("warning: l2dfs exited with %s: %s" % (self.proc.returncode, self.log_tail()))

    def __truediv__(self, rel):
        return Path(self.path) / rel

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# ---- the benchmark ----

class Bench:
    def __init__(self, args, work):
        self.args, self.work = args, work
        self.reps = args.reps
        self.lat = args.latency_ms / 1000.0
        self.rows, self.runs, self.notes = [], {}, []
        self.n = 0
        self.origin = Origin(work, args.latency_ms)
        info = self.origin.info
        self.costumes = info["costumes"]
        self.full = next(n for n in self.costumes if n.endswith("_bench_full"))
        self.huge = next(n for n in self.costumes if n.endswith("_bench_huge"))
        self.chara = info["character"]
        self.snapshots = {}
        self.warm_cache = None
        self.bw = {}
        self.setup_protocols()

    def setup_protocols(self):
        """The HTTP/2 rows run over h2c (l2dfs -o h2c) and, when openssl made a
        certificate, over TLS too (ALPN, -o insecure): libcurl before 8.0.0
        breaks a reused prior-knowledge connection (its bug #10634), which
        changes how both clients use h2c here; TLS shows multiplexing."""
        self.h2s = ["h2c"] + (["h2"] if "h2" in self.origin.ports else [])
        self.h2 = "h2c"
        u = self.origin.base("h2c") + "/api/characters/all.2.json"
        r = subprocess.run(["curl", "-sS", "--noproxy", "*", "--http2-prior-knowledge", "-o", "/dev/null", "-o",
                            "/dev/null", u, u], capture_output=True, env=child_env())
        self.curl_h2c_reuse = r.returncode == 0
        if not self.curl_h2c_reuse:
            cv = subprocess.run(["curl", "--version"], capture_output=True, text=True).stdout.split()[:2]
            self.notes.append(
                "h2c: %s cannot reuse a prior-knowledge connection (\"%s\", libcurl bug #10634, fixed in 8.0.0). "
                "curl's h2c baseline runs with --parallel-immediate (a connection per file, all at once) and its "
                "-Z 16/-Z 10 rows are left out; l2dfs (libcurl < 8.0.0) also opens a connection per transfer over "
                "h2c (see 'connections' in bench.json). HTTP/2 multiplexing is measured over TLS."
                % (" ".join(cv), r.stderr.decode(errors="replace").strip().splitlines()[-1]))

    def fresh(self, tag):
        """A new path in the work folder."""
        self.n += 1
        return self.work / ("%s-%d" % (tag, self.n))

    def new_mount(self, proto, cache, opts=()):
        self.n += 1
        return Mount(self.work, self.origin, proto, cache, "%s-%d" % (proto, self.n), opts).start()

    def row(self, case, what, l2dfs, base_label, base, ratio, target, met, unit="s", extra=None):
        r = {"case": case, "what": what, "l2dfs": l2dfs, "baseline_label": base_label, "baseline": base,
             "ratio": ratio, "target": target, "met": met, "unit": unit}
        if extra:
            r.update(extra)
        self.rows.append(r)
        log("  %-4s %-52s %s" % (case, what, fmt_row_short(r)))

    # -- what a costume is --

    def urls(self, name, proto):
        """(URL, relative path, size) of everything a copy of the costume fetches."""
        c = self.costumes[name]
        out = [(self.origin.base(proto) + f["path"], f["rel"], f["size"]) for f in c["files"]]
        out.append((self.origin.base(proto) + c["icon"]["path"], "icon.png", c["icon"]["size"]))
        return out

    def asset_bytes(self, name):
        return sum(s for _, _, s in self.urls(name, "h1"))

    def check_copy(self, dest, name, generated=True):
        """Every file of the costume is in dest with the origin's size (and the
        generated ones, for a copy out of the mount)."""
        bad = []
        for _, rel, size in self.urls(name, "h1"):
            p = Path(dest) / rel
            if not p.is_file() or p.stat().st_size != size:
                bad.append(rel)
        for rel in ("model.json", "name.txt") if generated else ():
            if not (Path(dest) / rel).is_file():
                bad.append(rel)
        if bad:
            raise RuntimeError("%s: copy of %s is wrong: %s" % (dest, name, ", ".join(bad[:5])))

    # -- preparation --

    def snapshot(self, proto, listing):
        """A cache holding the catalogue and the big costume's buildData, no
        asset bytes: after `ls -R` (names only) or `ls -lR` (sizes probed too)."""
        key = "%s %s" % (proto, listing)
        if key not in self.snapshots:
            snap = self.fresh("snap")
            with self.new_mount(proto, snap) as m:
                self.origin.reset()
                run(["ls", listing, str(m / "costumes" / self.full)])
                st = self.origin.stats()
            self.runs.setdefault("prepare", {})[key] = {k: st[k] for k in ("get", "head", "bytes")}
            self.snapshots[key] = snap
        return self.snapshots[key]

    def copy_cache(self, snap):
        dst = self.fresh("cache")
        shutil.copytree(snap, dst, symlinks=True)
        return dst

    def measure_bandwidth(self, proto):
        """Loopback bytes/s of one 64 MiB GET: its time once connected, less the
        origin's latency (the origin's own per-byte cost, TLS included, counts)."""
        url = self.origin.base(proto) + next(f["path"] for f in self.costumes[self.huge]["files"]
                                             if f["rel"] == "textures/texture_00.png")
        out = []
        for _ in range(3):
            r = subprocess.run(["curl", "-sS", "--noproxy", "*"] + PROTOS[proto]["curl"] + ["-o", "/dev/null", "-w",
                               "%{size_download} %{time_total} %{time_pretransfer}", url],
                               capture_output=True, env=child_env(), check=True)
            size, total, pre = map(float, r.stdout.split())
            out.append(size / max(total - pre - self.lat, 1e-6))
        self.bw[proto] = median(out)
        self.runs.setdefault("bandwidth", {})[proto] = {"bytes_per_s": out}
        return self.bw[proto]

    # -- baselines: one run each --

    def curl_once(self, name, proto, nmax):
        """Seconds for curl --parallel to fetch the costume, or None where this
        curl cannot do it (h2c with too few transfers to avoid reuse)."""
        extra = []
        if proto == "h2c" and not self.curl_h2c_reuse:
            if nmax < len(self.urls(name, proto)):
                return None
            extra = ["--parallel-immediate"]
        dest = self.fresh("curl")
        cfg = dest.with_suffix(".cfg")
        with open(cfg, "w") as f:
            for url, rel, _ in self.urls(name, proto):
                f.write('url = "%s"\noutput = "%s/%s"\n' % (url, dest, rel))
        t = run(["curl", "-sS", "--fail", "--noproxy", "*"] + PROTOS[proto]["curl"] +
                ["--create-dirs", "--parallel", "--parallel-max", str(nmax), "-K", str(cfg)] + extra)
        self.check_copy(dest, name, generated=False)
        shutil.rmtree(dest)
        return t

    def aria2_once(self, name):
        if not shutil.which("aria2c"):
            return None
        dest = self.fresh("aria2")
        lst = dest.with_suffix(".list")
        with open(lst, "w") as f:
            for url, rel, _ in self.urls(name, "h1"):
                f.write("%s\n  dir=%s\n  out=%s\n" % (url, dest, rel))
        t = run(["aria2c", "--no-conf", "-q", "-j16", "-x16", "-i", str(lst), "--allow-overwrite=true",
                 "--auto-file-renaming=false", "--file-allocation=none", "--console-log-level=error",
                 "--all-proxy=", "--no-netrc=true"])
        self.check_copy(dest, name, generated=False)
        shutil.rmtree(dest)
        return t

    # -- l2dfs runs --

    def cp_cold(self, proto, snap, opts=()):
        """cp -r of the big costume from a fresh mount over a copy of snap (or an
        empty cache): (seconds, what the origin saw, the cache)."""
        cache = self.copy_cache(snap) if snap else self.fresh("cache")
        dest = self.fresh("copy")
        with self.new_mount(proto, cache, opts) as m:
            self.origin.reset()
            t = run(["cp", "-r", str(m / "costumes" / self.full), str(dest)])
            st = self.origin.stats()
        self.check_copy(dest, self.full)
        shutil.rmtree(dest)
        return t, evidence(st), cache

    def interleaved(self, runs):
        """Run each (label, fn) once per repetition, alternating, so that load
        from elsewhere falls on all of them alike. {label: [result, ...]}."""
        out = {label: [] for label, _ in runs}
        for _ in range(self.reps):
            for label, fn in runs:
                out[label].append(fn())
        return out

    # ---- the cases ----

    def case1(self):
        for proto in self.h2s + ["h1"]:
            label = PROTOS[proto]["label"]
            base_n = 16 if proto == "h1" else 100
            listed = self.snapshot(proto, "-R")
            l2 = [("l2dfs", lambda: self.cp_cold(proto, listed)),
                  ("l2dfs, sizes known (ls -lR before)", lambda: self.cp_cold(proto, self.snapshot(proto, "-lR")))]
            if proto == "h2":
                l2.append(("l2dfs -o max_transfers=128", lambda: self.cp_cold(proto, listed, ["max_transfers=128"])))
            elif proto == "h2c":
                l2.append(("l2dfs -o max_connections=64", lambda: self.cp_cold(proto, listed, ["max_connections=64"])))
            bases = [("curl -Z %d" % n, lambda n=n: self.curl_once(self.full, proto, n))
                     for n in ((16, 100, 10) if proto == "h1" else (100, 16, 10))]
            if proto == "h1":
                bases.append(("aria2c -j16 -x16", lambda: self.aria2_once(self.full)))
            res = self.interleaved(l2 + bases)
            rec = self.runs["1-" + proto] = {}
            for k, v in res.items():
                rec[k] = [x[0] for x in v] if k.startswith("l2dfs") else v
                if k.startswith("l2dfs"):
                    rec[k + ": origin"] = [x[1] for x in v]
            t = median(rec["l2dfs"])
            for blabel, _ in bases:
                if None in rec[blabel]:
                    if blabel.startswith("aria2c"):
                        self.notes.append("aria2c is not installed (scripts/install-deps.sh): its row is left out")
                    continue
                b = median(rec[blabel])
                main = blabel == "curl -Z %d" % base_n
                self.row("1", "cold assets cp -r, %s, vs %s" % (label, blabel), t, blabel, b, t / b,
                         "<= 1.3x" if main else "-", (t / b <= 1.3) if main else None)
            b = median(rec["curl -Z %d" % base_n])
            for what, _ in l2[1:]:
                x = median(rec[what])
                self.row("1*", "%s, %s, vs curl -Z %d" % (what, label, base_n), x, "curl -Z %d" % base_n, b, x / b,
                         "-", None)

    def case2(self):
        info = self.origin.info
        nbytes = (sum(info["documents"].values()) + self.costumes[self.full]["build_data"]["size"]
                  + self.asset_bytes(self.full))
        for proto in self.h2s + ["h1"]:
            bw = self.bw.get(proto) or self.measure_bandwidth(proto)
            bound = 3 * self.lat + nbytes / bw
            runs = [self.cp_cold(proto, None) for _ in range(self.reps)]
            t = median([r[0] for r in runs])
            if proto == self.h2:
                self.warm_cache = runs[-1][2]
            self.runs["2-" + proto] = {"l2dfs_s": [r[0] for r in runs], "origin": [r[1] for r in runs],
                                       "bytes": nbytes, "bound_s": bound}
            main = proto != "h1"
            self.row("2", "fully cold cp -r, %s, vs 3 x latency + bytes/bw" % PROTOS[proto]["label"], t, "bound",
                     bound, t / bound, "<= 1.5x" if main else "-", (t / bound <= 1.5) if main else None)

    def viewer(self, root):
        """Read model.json and each file it names, in order; the bytes read."""
        with open(root / "model.json", "rb") as f:
            model = json.loads(f.read())
        names = []
        for key, v in model.items():
            if key in ("model", "physics"):
                names.append(v)
            elif key == "textures":
                names += v
            elif key == "motions":
                names += [m["file"] for group in v.values() for m in group]
            elif key == "expressions":
                names += [e["file"] for e in v]
        n = 0
        for rel in names:
            with open(root / rel, "rb") as f:
                n += len(f.read())
        return n, len(names)

    def case3(self):
        for proto in self.h2s + ["h1"]:
            snap = self.snapshot(proto, "-R")
            bw = self.bw.get(proto) or self.measure_bandwidth(proto)
            times, ev, nbytes, nfiles = [], [], 0, 0
            for _ in range(self.reps):
                with self.new_mount(proto, self.copy_cache(snap)) as m:
                    self.origin.reset()
                    t0 = time.perf_counter()
                    nbytes, nfiles = self.viewer(m / "costumes" / self.full)
                    times.append(time.perf_counter() - t0)
                    ev.append(evidence(self.origin.stats()))
            bound = 2 * self.lat + nbytes / bw
            t = median(times)
            self.runs["3-" + proto] = {"l2dfs_s": times, "origin": ev, "bytes": nbytes, "files": nfiles,
                                       "bound_s": bound}
            main = proto != "h1"
            self.row("3", "viewer (%d files in order), %s, vs 2 x lat + bytes/bw" % (nfiles, PROTOS[proto]["label"]),
                     t, "bound", bound, t / bound, "<= 1.3x" if main else "-", (t / bound <= 1.3) if main else None)
            self.first_read(proto)

    def first_read(self, proto):
        """Rows 3*: the first read of one small file (a motion from the middle of
        the list, sizes known) of a cold costume, with the costume prefetch on
        and off, vs one curl GET."""
        snap = self.snapshot(proto, "-lR")
        motions = [f for f in self.costumes[self.full]["files"] if f["field"] == "motions"]
        pick = motions[len(motions) // 2]

        def l2dfs(opts):
            with self.new_mount(proto, self.copy_cache(snap), opts) as m:
                path = m / "costumes" / self.full / pick["rel"]
                os.stat(path)
                t0 = time.perf_counter()
                with open(path, "rb") as f:
                    f.read()
                return time.perf_counter() - t0

        curl = ["curl", "-sS", "--fail", "--noproxy", "*"] + PROTOS[proto]["curl"] + ["-o", "/dev/null",
                                                                                     self.origin.base(proto) + pick["path"]]
        res = self.interleaved([("prefetch", lambda: l2dfs([])), ("off", lambda: l2dfs(["prefetch=off"])),
                                ("curl", lambda: run(curl))])
        self.runs["3*-" + proto] = res
        b = median(res["curl"])
        for k, what in (("prefetch", "prefetch=costume"), ("off", "prefetch=off")):
            t = median(res[k])
            self.row("3*", "first read of %s, cold costume, %s, %s, vs one curl GET" % (pick["rel"], what,
                                                                                      PROTOS[proto]["label"]),
                     t, "curl", b, t / b, "-", None)

    def native_tree(self, m, dest):
        """The costume as a local folder of hard links to the cache files (what
        `l2dfs pull` makes), generated files copied."""
        src = m / "costumes" / self.full
        for _, rel, _ in self.urls(self.full, "h1"):
            cache_path = os.getxattr(src / rel, "user.l2dfs.cache_path").decode()
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            os.link(cache_path, dest / rel)
        for rel in ("model.json", "name.txt"):
            shutil.copyfile(src / rel, dest / rel)

    def ensure_warm(self):
        """A cache holding the big costume whole (case 2's, else made here)."""
        if not self.warm_cache:
            self.warm_cache = self.cp_cold(self.h2, None)[2]
        return self.warm_cache

    def case4(self):
        cache = self.ensure_warm()
        native = self.fresh("native")
        with self.new_mount(self.h2, cache) as m:
            self.native_tree(m, native)
        dropped = drop_page_cache()
        if not dropped:
            self.notes.append("cannot write /proc/sys/vm/drop_caches: case 4's first pass runs with a warm page cache")

        def cp(src, drop):
            dest = self.fresh("copy")
            if drop:
                drop_page_cache()
            t = run(["cp", "-r", str(src), str(dest)])
            shutil.rmtree(dest)
            return t

        def mount_passes():
            with self.new_mount(self.h2, cache) as m:
                src = m / "costumes" / self.full
                return cp(src, True), cp(src, False)

        res = self.interleaved([("mount", mount_passes), ("native", lambda: (cp(native, True), cp(native, False)))])
        self.runs["4"] = {"mount_s": res["mount"], "native_s": res["native"], "page_cache_dropped": dropped}
        for i, what, target in ((0, "first pass" + ("" if dropped else " (page cache NOT dropped)"), 1.5),
                                (1, "second pass (page cache)", 1.1)):
            t, b = median([x[i] for x in res["mount"]]), median([x[i] for x in res["native"]])
            self.row("4", "warm cp -r, %s, vs cp -r of the cache files" % what, t, "cp -r local", b, t / b,
                     "<= %.1fx" % target, t / b <= target)

    def dd(self, path):
        """(bytes, seconds) dd reports for a 1 MiB-block sequential read."""
        r = subprocess.run(["dd", "if=" + str(path), "of=/dev/null", "bs=1M"], capture_output=True, check=True)
        m = re.search(rb"^(\d+) bytes .* copied, ([0-9.e-]+) s", r.stderr, re.M)
        return int(m.group(1)), float(m.group(2))

    def case5(self):
        cache = self.ensure_warm()
        rel = "textures/texture_00.png"
        f = next(f for f in self.costumes[self.huge]["files"] if f["rel"] == rel)
        # The first read downloads it: against one curl GET into a file.
        with self.new_mount(self.h2, cache) as m:
            path = m / "costumes" / self.huge / rel
            os.stat(path)
            t0 = time.perf_counter()
            n, _ = self.dd(path)
            cold = time.perf_counter() - t0
            cache_file = os.getxattr(path, "user.l2dfs.cache_path").decode()
        out = self.fresh("curl-64m")
        curl_t = run(["curl", "-sS", "--fail", "--noproxy", "*"] + PROTOS[self.h2]["curl"] +
                     ["-o", str(out), self.origin.base(self.h2) + f["path"]])
        os.unlink(out)
        self.row("5", "64 MiB cold read (download, fsync, SHA-256), vs curl -o file", cold, "curl", curl_t,
                 cold / curl_t, "-", None)

        def through_mount(drop):
            with self.new_mount(self.h2, cache) as m:
                path = m / "costumes" / self.huge / rel
                os.stat(path)
                if drop:
                    drop_page_cache()
                else:
                    self.dd(cache_file)
                first = self.dd(path)
                again = self.dd(path)
            return first[0] / first[1], again[0] / again[1]

        def native(drop):
            if drop:
                drop_page_cache()
            else:
                self.dd(cache_file)
            n, t = self.dd(cache_file)
            return n / t

        modes = [("page cache", False)] + ([("dropped", True)] if drop_page_cache() else [])
        if len(modes) == 1:
            self.notes.append("cannot drop the page cache: case 5 has no cold-disk row")
        res = {}
        for mode, drop in modes:
            r = self.interleaved([("mount", lambda: through_mount(drop)), ("native", lambda: native(drop))])
            res[mode] = r
            a, b = median([x[0] for x in r["mount"]]), median(r["native"])
            self.row("5", "64 MiB dd bs=1M, fresh mount vs the cache file, %s" % mode, f["size"] / a, "dd local",
                     f["size"] / b, a / b, ">= 0.8x", a / b >= 0.8,
                     extra={"mount_MBps": a / 1e6, "native_MBps": b / 1e6, "ratio_is": "throughput"})
            if not drop:
                a2 = median([x[1] for x in r["mount"]])
                self.row("5*", "64 MiB dd bs=1M again on the same mount (its page cache)", f["size"] / a2,
                         "dd local", f["size"] / b, a2 / b, "-", None,
                         extra={"mount_MBps": a2 / 1e6, "native_MBps": b / 1e6, "ratio_is": "throughput"})
        self.runs["5"] = dict(res, cold_s=cold, curl_s=curl_t, size=f["size"])

    def chara_dir(self, m):
        names = self.chara["names"]
        d = m / "characters" / (names[3] or names[0])
        if (d / self.full).is_dir():
            return d
        for e in os.listdir(m / "characters"):
            if (m / "characters" / e / self.full).is_dir():
                return m / "characters" / e
        raise RuntimeError("the benchmark character is not under characters/")

    def case6(self):
        cache = self.ensure_warm()
        pulled = self.fresh("pulled")
        with self.new_mount(self.h2, cache) as m:
            run(["cp", "-r", str(self.chara_dir(m)), str(pulled)])

        def mount_runs():
            self.origin.reset()
            with self.new_mount(self.h2, cache) as m:
                d = self.chara_dir(m)
                out = run(["ls", "-lR", str(d)]), run(["ls", "-lR", str(d)])
            st = self.origin.stats()
            if st["total"]:
                self.notes.append("case 6: the cached character still made %d requests" % st["total"])
            return out

        res = self.interleaved([("mount", mount_runs), ("native", lambda: run(["ls", "-lR", str(pulled)]))])
        nfiles = sum(len(f) + len(d) for _, d, f in os.walk(pulled))
        self.runs["6"] = {"mount_s": res["mount"], "native_s": res["native"], "entries": nfiles}
        b = median(res["native"])
        for i, what in ((0, "fresh mount"), (1, "second run")):
            t = median([x[i] for x in res["mount"]])
            self.row("6", "ls -lR cached character (%d entries), %s, vs pulled copy" % (nfiles, what), t,
                     "ls -lR local", b, t / b, "<= 2x", t / b <= 2)
        self.round_trip(cache, pulled)

    def round_trip(self, cache, pulled):
        """The cost of one request the kernel cannot answer: the security.*
        attribute ls -l asks of every entry, on the mount (a FUSE round trip)
        and on the pulled copy."""
        n = 2000

        def each(path):
            t0 = time.perf_counter()
            for _ in range(n):
                try:
                    os.getxattr(path, "security.selinux", follow_symlinks=False)
                except OSError:
                    pass
            return (time.perf_counter() - t0) / n

        local = next(p for p in pulled.rglob("*.mtn"))
        with self.new_mount(self.h2, cache) as m:
            mounted = next(p for p in self.chara_dir(m).rglob("*.mtn"))
            res = self.interleaved([("mount", lambda: each(mounted)), ("native", lambda: each(local))])
        t, b = median(res["mount"]), median(res["native"])
        self.runs["6*"] = res
        self.row("6*", "one request the kernel cannot answer (getxattr security.*), mount vs local", t,
                 "local", b, t / b, "-", None, unit="us")

    def case7(self):
        res = {"cold_s": [], "warm_s": [], "rss_kib": [], "hwm_kib": []}
        for _ in range(self.reps):
            cache = self.fresh("cache")
            for mode in ("cold", "warm"):
                self.n += 1
                m = Mount(self.work, self.origin, self.h2, cache, "%s-%d" % (self.h2, self.n))
                t0 = time.perf_counter()
                m.start(wait=False)
                try:
                    m.wait_mounted()
                    run(["ls", str(m / "characters")])
                    res[mode + "_s"].append(time.perf_counter() - t0)
                    if mode == "cold":
                        for e in os.listdir(m / "characters"):
                            os.listdir(m / "characters" / e)
                        os.listdir(m / "costumes")
                        st = Path("/proc/%d/status" % m.proc.pid).read_text()
                        res["rss_kib"].append(int(re.search(r"VmRSS:\s+(\d+)", st).group(1)))
                        res["hwm_kib"].append(int(re.search(r"VmHWM:\s+(\d+)", st).group(1)))
                finally:
                    m.stop()
        self.runs["7"] = res
        nb = self.origin.info["bundles"]
        for mode in ("cold", "warm"):
            t = median(res[mode + "_s"])
            self.row("7", "mount -> first ls characters, %d bundles, %s cache" % (nb, mode), t, "-", None, None,
                     "< 1 s", t < 1.0)
        rss = median(res["rss_kib"]) * 1024
        self.row("7", "VmRSS after listing characters/*, costumes/ (VmHWM %.1f MiB)" % (median(res["hwm_kib"]) / 1024),
                 rss, "-", None, None, "< 64 MiB", rss < 64 * MiB, unit="B")


    # -- case 8: a realistic link --

    def pull_once(self, proto, cache, name):
        """Seconds for `l2dfs pull` of a costume into a fresh folder (no mount)."""
        base = self.origin.base(proto)
        opts = ["api_url=%s/api" % base, "assets_url=%s/assets" % base, "cache_dir=" + str(cache),
                "log_level=warn"] + PROTOS[proto]["l2dfs"]
        dest = self.fresh("pull")
        t = run([str(BIN), "pull", "-o", ",".join(opts), name, "--to", str(dest)])
        self.check_copy(dest / name, name)
        shutil.rmtree(dest)
        return t

    def link_walk(self, proto):
        """`ls -lR` of the benchmark's character from a fresh mount with the
        default budget: (requests, seconds, most requests in any 1 s)."""
        with self.new_mount(proto, self.fresh("cache")) as m:
            run(["ls", str(m / "characters")])
            chara = self.chara_dir(m)
            self.origin.reset()
            t = run(["ls", "-lR", str(chara)])
            ev = self.origin.control("GET", "/__stats")["events"]
        times = [e[0] / 1000.0 for e in ev]
        busiest = max((sum(1 for u in times if x <= u < x + 1) for x in times), default=0)
        return len(ev), t, busiest

    def case8(self):
        saved = (self.origin, self.lat, self.bw, self.snapshots)
        sub = self.work / "link"
        sub.mkdir()
        link = self.origin = Origin(sub, LINK_LATENCY_MS, ["--link-bps", str(int(LINK_BPS))])
        self.lat, self.bw, self.snapshots = LINK_LATENCY_MS / 1000.0, {}, {}
        try:
            for proto in [self.h2s[-1], "h1"]:
                self.bw[proto] = LINK_BPS
                self.link_rows(proto)
            n, t, busiest = self.link_walk(self.h2s[-1])
            self.runs["8-walk"] = {"requests": n, "seconds": t, "busiest_1s": busiest}
            self.row("8", "link: ls -lR benchmark character, default budget: %d requests, %.1f/s, most %d in 1 s"
                     % (n, n / t, busiest), t, "-", None, None, "<= 220 in any 1 s", busiest <= 220)
        finally:
            link.proc.terminate()
            reap(link.proc)
            PROCS.remove(link.proc)
            self.origin, self.lat, self.bw, self.snapshots = saved

    def link_rows(self, proto):
        label = "%s, 6 MB/s 80 ms" % PROTOS[proto]["label"]
        info = self.origin.info
        docs = sum(info["documents_gzip"].values())  # l2dfs asks for them compressed
        build = self.costumes[self.full]["build_data"]["size"]
        assets = self.asset_bytes(self.full)
        cold_bound = 3 * self.lat + (docs + build + assets) / LINK_BPS
        snap = self.snapshot(proto, "-R")
        rec = self.runs["8-" + proto] = {"cold_bound_s": cold_bound}

        cold = [self.cp_cold(proto, None) for _ in range(self.reps)]
        rec["cp_cold_s"] = [r[0] for r in cold]
        rec["origin"] = [r[1] for r in cold]
        t = median(rec["cp_cold_s"])
        self.row("8", "link: fully cold cp -r, %s, vs bound" % label, t, "bound", cold_bound, t / cold_bound, "-",
                 None)

        times = []
        for _ in range(self.reps):
            with self.new_mount(proto, self.copy_cache(snap)) as m:
                t0 = time.perf_counter()
                nbytes, nfiles = self.viewer(m / "costumes" / self.full)
                times.append(time.perf_counter() - t0)
        bound = 2 * self.lat + nbytes / LINK_BPS
        rec["viewer_s"], rec["viewer_bound_s"] = times, bound
        t = median(times)
        self.row("8", "link: viewer (%d files in order), %s, vs bound" % (nfiles, label), t, "bound", bound,
                 t / bound, "-", None)

        res = self.interleaved([("pull", lambda: self.pull_once(proto, self.fresh("cache"), self.full)),
                                ("curl -Z 16", lambda: self.curl_once(self.full, proto, 16))])
        rec.update({"pull_s": res["pull"], "curl_Z16_s": res["curl -Z 16"]})
        t = median(res["pull"])
        self.row("8", "link: fully cold pull, %s, vs bound" % label, t, "bound", cold_bound, t / cold_bound, "-",
                 None)
        if None not in res["curl -Z 16"]:
            b = median(res["curl -Z 16"])
            self.row("8", "link: fully cold pull, %s, vs curl -Z 16 (assets only)" % label, t, "curl -Z 16", b,
                     t / b, "-", None)


def evidence(st):
    """What the origin saw during one l2dfs run."""
    keys = ("total", "get", "head", "bytes", "max_in_flight", "connections", "first_head_ms", "first_get_ms",
            "last_request_ms")
    return {k: st.get(k) for k in keys}


def fmt_value(v, unit):
    if v is None:
        return "-"
    if unit == "B":
        return "%.1f MiB" % (v / MiB)
    if unit == "us":
        return "%.1f us" % (v * 1e6)
    return "%.0f ms" % (v * 1000) if v < 10 else "%.1f s" % v


def fmt_row_short(r):
    ratio = "-" if r["ratio"] is None else "%.2fx" % r["ratio"]
    met = {True: "yes", False: "NO", None: ""}[r["met"]]
    return "%s | %s %s | %s | %s %s" % (fmt_value(r["l2dfs"], r["unit"]), r["baseline_label"],
                                        fmt_value(r["baseline"], r["unit"]), ratio, r["target"], met)


def print_evidence(runs, out):
    """What the origin saw during the cold l2dfs runs (first repetition)."""
    lines = []
    for key in sorted(runs):
        rec = runs[key]
        if not isinstance(rec, dict) or not key[:1] in "123":
            continue
        for label, evs in rec.items():
            if not (label == "origin" or label.endswith(": origin")) or not evs:
                continue
            e = evs[0]
            what = key if label == "origin" else "%s %s" % (key, label[:-len(": origin")])
            lines.append("  %-46s %3d GET %3d HEAD  max %3d in flight  %3d connections  first HEAD %s  first GET %s"
                         "  last request %s" % (what, e["get"], e["head"], e["max_in_flight"], e["connections"],
                                                ms(e["first_head_ms"]), ms(e["first_get_ms"]),
                                                ms(e["last_request_ms"])))
    if lines:
        print("origin, per cold run (ms from the start of the copy):", file=out)
        print("\n".join(lines), file=out)


def ms(v):
    return "-" if v is None else "%.0f" % v


def print_table(rows, out):
    head = ("case", "what", "l2dfs", "baseline", "ratio", "target", "met?")
    lines = []
    for r in rows:
        base = "-" if r["baseline"] is None else "%s %s" % (fmt_value(r["baseline"], r["unit"]), r["baseline_label"])
        ratio = "-" if r["ratio"] is None else "%.2fx" % r["ratio"]
        if r.get("ratio_is") == "throughput":
            ratio += " (MB/s %.0f/%.0f)" % (r["mount_MBps"], r["native_MBps"])
        l2 = "FAILED" if r.get("failed") else fmt_value(r["l2dfs"], r["unit"])
        lines.append((r["case"], r["what"], l2, base, ratio, r["target"],
                      {True: "yes", False: "NO", None: ""}[r["met"]]))
    widths = [max(len(x[i]) for x in lines + [head]) for i in range(len(head))]
    fmt = "  ".join("%%-%ds" % w for w in widths)
    print(fmt % head, file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for x in lines:
        print(fmt % x, file=out)


def main():
    ap = argparse.ArgumentParser(description="l2dfs benchmark")
    ap.add_argument("--latency-ms", type=float, default=40)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--cases", default="1,2,3,4,5,6,7,8")
    ap.add_argument("--json", default=str(REPO / "bench.json"))
    ap.add_argument("--keep", action="store_true", help="keep the work folder (logs, caches)")
    args = ap.parse_args()
    if not os.access(BIN, os.X_OK):
        sys.exit("bench: no %s (make all)" % BIN)
    for tool in ("node", "curl", "fusermount3"):
        if not shutil.which(tool):
            sys.exit("bench: %s is needed" % tool)

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    atexit.register(cleanup)
    work = Path(tempfile.mkdtemp(prefix="l2dfs-bench."))
    t_start = time.monotonic()
    load = [os.getloadavg()[0]]
    try:
        b = Bench(args, work)
        log("bench: origin %s, %d bundles (%s), latency %.0f ms, %d reps; work %s" % (
            ", ".join("%s :%d" % (PROTOS[k]["label"], v) for k, v in b.origin.ports.items()), b.origin.info["bundles"],
            b.origin.info["catalogue"], args.latency_ms, args.reps, work))
        for proto in b.h2s + ["h1"]:
            log("bench: loopback bandwidth %s %.0f MB/s" % (proto, b.measure_bandwidth(proto) / 1e6))
        for c in args.cases.split(","):
            log("bench: case %s" % c)
            getattr(b, "case" + c.strip())()
        cleanup()
        elapsed = time.monotonic() - t_start
        load.append(os.getloadavg()[0])
        if max(load) > (os.cpu_count() or 1):
            b.notes.append("the machine was busy (load average %.1f / %.1f on %d CPUs): timings are noisy; "
                           "run again on an idle machine" % (load[0], load[1], os.cpu_count() or 1))
        print()
        print("l2dfs benchmark: latency %.0f ms per request; loopback %s; median of %d; %.0f s; load %.1f/%.1f" % (
            args.latency_ms, ", ".join("%.0f MB/s %s" % (v / 1e6, PROTOS[k]["label"]) for k, v in b.bw.items()),
            args.reps, elapsed, load[0], load[1]))
        print_table(b.rows, sys.stdout)
        for n in dict.fromkeys(b.notes):
            print("note: " + n)
        print_evidence(b.runs, sys.stdout)
        git = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True).stdout.strip()
        doc = {"meta": {"latency_ms": args.latency_ms, "reps": args.reps, "bandwidth_Bps": b.bw, "http2": b.h2s,
                        "catalogue": b.origin.info["catalogue"], "bundles": b.origin.info["bundles"],
                        "commit": git, "elapsed_s": elapsed, "loadavg": load, "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                        "costume_files": len(b.costumes[b.full]["files"]) + 3,
                        "costume_bytes": b.asset_bytes(b.full)},
               "rows": b.rows, "runs": b.runs, "notes": list(dict.fromkeys(b.notes))}
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
        print("wrote %s" % args.json)
    finally:
        cleanup()
        if args.keep:
            log("bench: kept %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
