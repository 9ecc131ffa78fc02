"""Many readers against a flaky origin, and the mount going away while
readers wait on a stalled one."""

import errno
import os
import random
import re
import signal
import subprocess
import threading
import time

import pytest

from helpers import costume, mount_fstype, oserror, read_file, timed, wait_for
from soundness import assert_sound, temps

THREADS = 16
FILES = 200
DURATION = float(os.environ.get("L2DFS_STRESS_SECONDS", "20"))
READ_TIMEOUT = 30
FAULT_P = 0.05  # each of 503 and reset: about 10 % of asset requests fail


def pick_files(origin, m, n):
    """n files of distinct URLs across the catalogue's costumes:
    [(mount path, URL)]."""
    out, seen = [], set()
    for name in sorted(origin.catalogue()["costumes"]):
        for f in origin.costume(name)["files"]:
            if f["exists"] and f["url"] not in seen:
                seen.add(f["url"])
                out.append((os.path.join(m["costumes"], name, f["rel"]), f["url"]))
        if len(out) >= n:
            return out[:n]
    pytest.skip("the catalogue has fewer than %d files" % n)


def test_random_reads_against_a_flaky_origin(mount, make_origin):
    origin = make_origin("--catalogue", "samples", "--texture-size", "65536", "--moc-size", "32768")
    m = mount(origin=origin, opts={"prefetch": "off"})
    files = pick_files(origin, m, FILES)
    want = {url: origin.expected(url) for _, url in files}
    os.listdir(m["costumes"])  # the catalogue is in; the faults hit asset traffic
    origin.config(latency_ms=30)  # downloads overlap: many readers wait on one
    origin.fault(path=r"^/assets/", kind="status", status=503, probability=FAULT_P)
    origin.fault(path=r"^/assets/", kind="reset", probability=FAULT_P)

    lock = threading.Lock()
    busy = {}          # thread -> (started, path) of the read under way
    first_ok = {}      # URL -> its GET count when its first read succeeded
    stats = {"reads": 0, "bytes": 0, "failed": 0, "wrong": []}
    stop = time.monotonic() + DURATION

    def worker(seed):
        rnd = random.Random(seed)
        me = threading.get_ident()
        while time.monotonic() < stop:
            path, url = rnd.choice(files)
            data = want[url]
            with lock:
                busy[me] = (time.monotonic(), path)
            try:
                with open(path, "rb") as f:
                    if rnd.random() < 0.5:
                        got, expect = f.read(), data
                    else:
                        off = rnd.randrange(len(data) + 1)
                        size = rnd.randrange(1, 65537)
                        got, expect = os.pread(f.fileno(), size, off), data[off:off + size]
                err = 0
            except OSError as e:
                err = e.errno
            with lock:
                del busy[me]
                if err:
                    stats["failed"] += 1
                    continue
                stats["reads"] += 1
                stats["bytes"] += len(got)
                if got != expect:
                    stats["wrong"].append(path)
                new = url not in first_ok
                if new:
                    first_ok[url] = None
            if new:
                n = origin.count("GET", url)
                with lock:
                    first_ok[url] = n

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(THREADS)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        time.sleep(0.5)
        with lock:
            stuck = [(p, time.monotonic() - t0) for t0, p in busy.values() if time.monotonic() - t0 > READ_TIMEOUT]
        assert not stuck, "readers blocked: %s" % stuck
        assert time.monotonic() < stop + READ_TIMEOUT + 5, "readers did not stop"

    requests = origin.requests()
    asset = {k: n for k, n in requests.items() if k.startswith(("GET /assets/", "HEAD /assets/"))}
    retried = sum(asset.values()) - len(asset)  # requests beyond the first per path: faults
    assert stats["wrong"] == []
    assert stats["reads"] > 1000
    redownloaded = {url: (n, requests.get("GET " + url, 0)) for url, n in first_ok.items()
                    if n is not None and requests.get("GET " + url, 0) != n}
    assert redownloaded == {}, "fetched again after a complete read (GETs then, now)"
    origin.reset()
    origin.config(latency_ms=0)
    for path, url in files:
        assert timed(read_file, path)[1] == want[url], path
    gets = [requests.get("GET " + url, 0) for _, url in files]
    print("STRESS | %d threads, %.0f s, %d files | %d reads ok, %d failed, %d MB | %d asset requests,"
          " %d repeated (faults, re-probes) | GETs per file: max %d, mean %.2f | %d files read" %
          (THREADS, DURATION, FILES, stats["reads"], stats["failed"], stats["bytes"] >> 20,
           sum(asset.values()), retried, max(gets), sum(gets) / len(gets), len(first_ok)))
    assert wait_for(lambda: temps(m.cache) == [], 10)  # commits follow their reads
    assert_sound(m.cache, origin)


# ---- the mount going away while readers wait on a stalled origin ----

def stalled_readers(mount, origin, n=4):
    """A mount whose n texture reads hang on a stalled origin (default
    timeout: 30 s); the reader threads and their outcomes."""
    m = mount(opts={"prefetch": "off"})
    names = ["036_live_event_307_ssr", "036_dream_festival_3_ur", "001_live_event_332_r", "037_live_default"]
    paths = []
    for name in names[:n]:
        c = costume(origin, name)
        rel = next(r for r in sorted(c.files) if r.startswith("textures/"))
        os.stat(c.path(m, rel))
        origin.fault(path=re.escape(c.files[rel]) + "$", kind="stall", seconds=120, method="GET")
        paths.append((c.path(m, rel), c.files[rel]))
    out = []

    def read(p):
        t0 = time.monotonic()
        out.append((oserror(read_file, p), time.monotonic() - t0))

    threads = [threading.Thread(target=read, args=(p,), daemon=True) for p, _ in paths]
    for t in threads:
        t.start()
    assert wait_for(lambda: all(origin.count("GET", u) for _, u in paths), 10)
    return m, threads, out


def ends_quickly(mount, origin, m, readers, out, what, act):
    """act() makes the mount go away; the daemon must exit within 5 s and let
    every stalled reader go, leaving nothing half-written."""
    t0 = time.monotonic()
    act()
    try:
        m.proc.wait(5)
    except subprocess.TimeoutExpired:
        pytest.fail("l2dfs still running 5 s after " + what)
    secs = time.monotonic() - t0
    for t in readers:
        t.join(5)
    assert len(out) == len(readers) and all(err != 0 for err, _ in out), out
    assert m.proc.returncode == 0
    assert temps(m.cache) == []
    print("SHUTDOWN | %s with %d reads in flight | exit after %.2f s | readers: %s" %
          (what, len(readers), secs, sorted({errno.errorcode[e] for e, _ in out})))
    m.unmount()
    origin.reset()
    m2 = mount(cache_dir=m.cache, opts={"prefetch": "off"})
    assert_sound(m2.cache, origin)


def test_sigterm_with_reads_in_flight(mount, origin):
    m, readers, out = stalled_readers(mount, origin)
    ends_quickly(mount, origin, m, readers, out, "SIGTERM", lambda: m.proc.send_signal(signal.SIGTERM))
    assert "unmounted" in m.log_text()


def test_sigterm_with_a_lookup_in_flight(mount, origin):
    m = mount(opts={"prefetch": "off", "timeout": 10})
    c = costume(origin)
    os.listdir(c.path(m))
    origin.fault(path="^/assets/", kind="stall", seconds=120)
    out = []

    def lookup():
        out.append((oserror(os.stat, c.path(m, "textures/texture_00.png")), 0))

    reader = threading.Thread(target=lookup, daemon=True)
    reader.start()
    assert wait_for(lambda: origin.stats()["in_flight"], 5)
    ends_quickly(mount, origin, m, [reader], out, "SIGTERM", lambda: m.proc.send_signal(signal.SIGTERM))


@pytest.fixture
def fuse_connections():
    """/sys/fs/fuse/connections, mounted for the test if it was not."""
    root = "/sys/fs/fuse/connections"
    mounted = False
    if not os.path.isdir(root):
        pytest.skip("no fusectl")
    if not os.listdir(root) and mount_fstype(root) is None:
        if subprocess.run(["mount", "-t", "fusectl", "none", root], capture_output=True).returncode:
            pytest.skip("cannot mount fusectl")
        mounted = True
    yield root
    if mounted:
        subprocess.run(["umount", root])


def test_unmount_with_reads_in_flight(mount, origin, fuse_connections):
    m, readers, out = stalled_readers(mount, origin)
    # The kernel refuses to unmount what a reader is inside of ...
    r = subprocess.run(["fusermount3", "-u", m.path], capture_output=True, text=True)
    assert r.returncode != 0 and "busy" in r.stderr
    assert mount_fstype(m.path) == "fuse.l2dfs" and m.alive()
    # ... until the connection is aborted: then the daemon must not wait for
    # the stalled transfers.
    abort = os.path.join(fuse_connections, str(os.minor(os.stat(m.path).st_dev)), "abort")

    def act():
        with open(abort, "w") as f:
            f.write("1")

    ends_quickly(mount, origin, m, readers, out, "aborted connection", act)
