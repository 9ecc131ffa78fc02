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


def slow_mount(mount, origin):
    """A mount whose texture GETs crawl (256 KiB at 16 KiB/s) and whose
    texture sizes are known already (no probe in the way)."""
    m = mount(opts=NO_PREFETCH)
    c = costume(origin)
    for rel in TEXTURES:
        os.stat(c.path(m, rel))
    origin.config(bandwidth=16 * 1024)
    return m, c


def waiting_cat(m, c, origin, rel):
    """`cat` of rel, once its GET is in flight and cat waits in open()."""
    url = c.files[rel]
    before = origin.count("GET", url)
    p = subprocess.Popen(["cat", c.path(m, rel)], stdout=subprocess.DEVNULL)
    assert wait_for(lambda: origin.count("GET", url) > before, 10), "no GET"
    time.sleep(0.3)
    assert p.poll() is None, "cat did not wait"
    return p


def gone_after(p, sig):
    """Seconds from sig to the process being gone (fails past 5 s)."""
    t0 = time.monotonic()
    p.send_signal(sig)
    p.wait(5)
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
    assert max(times) < 1.0, times
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
    t = threading.Thread(target=lambda: out.update(data=read_file(c.path(m, rel))))
    t.start()
    time.sleep(0.3)
    assert gone_after(p, signal.SIGKILL) < 1.0
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
    assert gone_after(p, signal.SIGINT) < 1.0
    assert wait_for(lambda: origin.stats()["in_flight"] == 0, 5), origin.stats()
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
    assert wait_for(lambda: origin.count("HEAD", c.files[rel]) > 0, 10), "no HEAD"
    time.sleep(0.3)
    assert p.poll() is None, "stat did not wait"
    secs = gone_after(p, sig)
    print("INTERRUPT | probe, %s | %.3f s" % (sig.name, secs))
    assert secs < 1.0
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
    assert wait_for(lambda: origin.count("GET", "/api/characters/all.2.json") > 0, 10)
    time.sleep(0.3)
    assert p.poll() is None, "stat did not wait"
    secs = gone_after(p, signal.SIGKILL)
    print("INTERRUPT | catalogue, SIGKILL | %.3f s" % secs)
    assert secs < 1.0
    origin.clear_fault(fid)
