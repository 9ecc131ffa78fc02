"""Every wait can be interrupted (DESIGN §7): a reader waiting on a download
or a size probe is gone within a second of SIGINT or SIGKILL; another reader
of the same file keeps waiting and gets the right bytes."""

import os
import re
import signal
import statistics
import subprocess
import threading
import time

import pytest

from helpers import TEX0, TEX1, costume, read_file, wait_for
from soundness import assert_sound

NO_PREFETCH = {"prefetch": "off"}
TEXTURES = [TEX0, TEX1]
# An interrupted reader is gone at once (well under a second on a quiet
# machine); the bound is generous for a busy one and still far below the
# 16 s a slowed download or the 30 s of a hung request would take.
GONE_S = 5.0
# stat(1)'s calls that look a path up: statx, newfstatat, stat, lstat.
STATS = (332, 262, 4, 6)


def slow_mount(mount, origin):
    """A mount whose texture GETs crawl (256 KiB at 16 KiB/s) and whose
    texture sizes are known already (no probe in the way)."""
    m = mount(opts=NO_PREFETCH)
    c = costume(origin)
    for rel in TEXTURES:
        os.stat(c.path(m, rel))
    origin.config(bandwidth=16 * 1024)
    return m, c


def blocked(task, calls=(0, 257)):
    """True once the task (a pid, or "self/task/<tid>") sleeps in one of
    the system calls (read, openat): waiting on the mount."""
    try:
        with open("/proc/%s/stat" % task) as f:
            state = f.read().rsplit(") ", 1)[1][:1]
        with open("/proc/%s/syscall" % task) as f:
            nr = f.read().split()[0]
    except (OSError, IndexError):
        return False
    return state in "SD" and nr.lstrip("-").isdigit() and int(nr) in calls


def waiting_cat(m, c, origin, rel):
    """`cat` of rel, once its GET is in flight and cat waits in open()."""
    url = c.files[rel]
    before = origin.count("GET", url)
    p = subprocess.Popen(["cat", c.path(m, rel)], stdout=subprocess.DEVNULL)
    assert wait_for(lambda: origin.count("GET", url) > before, 30), "no GET"
    assert wait_for(lambda: blocked(p.pid), 30) and p.poll() is None, "cat did not wait"
    return p


def gone_after(p, sig):
    """Seconds from sig to the process being gone (fails past 30 s)."""
    t0 = time.monotonic()
    p.send_signal(sig)
    p.wait(30)
    return time.monotonic() - t0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_reader_waiting_on_a_download_is_interruptible(mount, origin, sig):
    m, c = slow_mount(mount, origin)
    times = []
    for rel in TEXTURES:
        p = waiting_cat(m, c, origin, rel)
        times.append(gone_after(p, sig))
    print("INTERRUPT | download, %s | median %.3f s | %s" %
          (sig.name, statistics.median(times), " ".join("%.3f" % t for t in times)))
    assert max(times) < GONE_S, times
    # The mount goes on serving: with full speed, the file reads whole.
    origin.config(bandwidth=0)
    for rel in TEXTURES:
        assert read_file(c.path(m, rel)) == origin.expected(c.files[rel])
    assert_sound(m.cache, origin)


def test_other_reader_of_the_same_file_keeps_waiting(mount, origin):
    m, c = slow_mount(mount, origin)
    rel = TEXTURES[0]
    p = waiting_cat(m, c, origin, rel)
    out = {}

    def read():
        out["tid"] = threading.get_native_id()
        out["data"] = read_file(c.path(m, rel))

    t = threading.Thread(target=read)
    t.start()
    assert wait_for(lambda: "tid" in out and blocked("self/task/%d" % out["tid"]), 30)
    assert gone_after(p, signal.SIGKILL) < GONE_S
    assert t.is_alive(), "the other reader should still be waiting"
    origin.config(bandwidth=256 * 1024)
    t.join(60)
    assert not t.is_alive()
    assert out["data"] == origin.expected(c.files[rel])
    # One download served both.
    assert origin.count("GET", c.files[rel]) == 1
    assert_sound(m.cache, origin)


def test_abandoned_download_stops(mount, origin):
    """No one waits for it any more and no prefetch wants it: the transfer
    stops at its next bytes; the next reader starts it again."""
    m, c = slow_mount(mount, origin)
    rel = TEXTURES[0]
    p = waiting_cat(m, c, origin, rel)
    assert gone_after(p, signal.SIGINT) < GONE_S
    assert wait_for(lambda: origin.stats()["in_flight"] == 0, 30), origin.stats()
    origin.config(bandwidth=0)
    assert read_file(c.path(m, rel)) == origin.expected(c.files[rel])
    assert origin.count("GET", c.files[rel]) == 2


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_lookup_waiting_on_a_stalled_probe_is_interruptible(mount, origin, sig):
    m = mount(opts=NO_PREFETCH)
    c = costume(origin)
    rel = TEXTURES[0]
    os.listdir(c.path(m, "textures"))
    fid = origin.fault(path=re.escape(c.files[rel]) + "$", method="HEAD", kind="hang", seconds=30)
    p = subprocess.Popen(["stat", c.path(m, rel)], stdout=subprocess.DEVNULL)
    assert wait_for(lambda: origin.count("HEAD", c.files[rel]) > 0, 30), "no HEAD"
    assert wait_for(lambda: blocked(p.pid, STATS), 30) and p.poll() is None, "stat did not wait"
    secs = gone_after(p, sig)
    print("INTERRUPT | probe, %s | %.3f s" % (sig.name, secs))
    assert secs < GONE_S
    origin.clear_fault(fid)


def test_lookup_waiting_on_the_catalogue_is_interruptible(mount, origin):
    """A day later the catalogue is refreshed on the next lookup; with the
    origin silent, that lookup can still be interrupted."""
    m = mount(opts=NO_PREFETCH)
    c = costume(origin)
    os.listdir(m["characters"])
    m.unmount()
    fid = origin.fault(path=r"/api/characters/all\.2\.json$", kind="hang", seconds=30)
    m2 = mount(cache_dir=m.cache, opts=NO_PREFETCH, env={"L2DFS_TIME_OFFSET": "90000"})
    p = subprocess.Popen(["stat", os.path.join(m2["characters"], c.character)],
                         stdout=subprocess.DEVNULL)
    assert wait_for(lambda: origin.count("GET", "/api/characters/all.2.json") > 0, 30)
    assert wait_for(lambda: blocked(p.pid, STATS), 30) and p.poll() is None, "stat did not wait"
    secs = gone_after(p, signal.SIGKILL)
    print("INTERRUPT | catalogue, SIGKILL | %.3f s" % secs)
    assert secs < GONE_S
    origin.clear_fault(fid)
