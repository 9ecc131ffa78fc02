"""Crashes and damage: kill -9 in the middle of downloads, an index deleted
or replaced by garbage, cache files changed behind the mount's back."""

import glob
import os
import random
import subprocess
import time

import pytest

from helpers import TEX0, costume, read_file, timed, wait_for
from soundness import Remembered, assert_sound, cached_files, index_problems, temps, verify, wrong_bytes

ROUNDS = int(os.environ.get("L2DFS_CRASH_ROUNDS", "20"))
PER_ROUND = 2  # costumes copied in a round, none of them cached yet


def tree_bytes(root):
    out = {}
    for d, _, files in os.walk(root):
        for n in files:
            p = os.path.join(d, n)
            out[os.path.relpath(p, root)] = read_file(p)
    return out


def expected_tree(known, names):
    """{costume/rel: bytes} of the asset files of the costumes."""
    out = {}
    for name in names:
        c = costume(known.origin, name)
        for rel, url in c.files.items():
            out[os.path.join(name, rel)] = known.expected(url)
    return out


def copy_costumes(m, dest, names, timeout=120):
    os.makedirs(dest, exist_ok=True)
    return subprocess.run(["cp", "-r"] + [os.path.join(m["costumes"], n) for n in names] + [dest],
                          capture_output=True, text=True, timeout=timeout)


def test_kill_9_during_copies(mount, make_origin, tmp_path, l2dfs_bin):
    """kill -9 at random moments of a many-file cp -r with downloads in
    flight (each round copies costumes not cached yet): every restart finds
    only sound files and no temporary, and a full copy at the end is the
    origin's bytes."""
    rnd = random.Random(int(os.environ.get("L2DFS_CRASH_SEED", "0")) or None)
    origin = make_origin("--catalogue", "samples")
    known = Remembered(origin)
    names = sorted(origin.catalogue()["costumes"])[:PER_ROUND * ROUNDS]
    cache, mp = str(tmp_path / "cache"), str(tmp_path / "mnt")
    origin.config(latency_ms=20, bandwidth=1 << 20)
    left, killed_at = [], []
    for i in range(ROUNDS):
        m = mount(origin=origin, cache_dir=cache, mountpoint=mp)
        assert temps(cache) == [], "temporaries survived the start of round %d" % i
        batch = names[i * PER_ROUND:(i + 1) * PER_ROUND]
        dest = tmp_path / ("copy%d" % i)
        dest.mkdir()
        cp = subprocess.Popen(["cp", "-r"] + [os.path.join(m["costumes"], n) for n in batch] + [str(dest)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        delay = rnd.uniform(0.1, 1.5)
        time.sleep(delay)
        m.kill9()
        killed_at.append(delay)
        cp.wait(30)
        errors = cp.stderr.read().decode()
        assert cp.returncode == 0 or "connection abort" in errors or "not connected" in errors, errors
        m.unmount()
        left.append(len(temps(cache)))
        # Right after the crash: no finished file is wrong, the index agrees.
        lost, what = wrong_bytes(cache, known)
        assert [w for w in what if "temporary" not in w] == [], what
        assert index_problems(cache) == []
    assert sum(left) > 0, "no crash hit a download in flight: the test tested nothing"
    origin.config(latency_ms=0, bandwidth=0)
    m = mount(origin=origin, cache_dir=cache, mountpoint=mp)
    assert temps(cache) == []
    assert "partial downloads" in m.log_text()
    r = copy_costumes(m, str(tmp_path / "final"), names)
    assert r.returncode == 0, r.stderr
    got = tree_bytes(str(tmp_path / "final"))
    for rel, data in expected_tree(known, names).items():
        assert got.get(rel) == data, rel
    m.unmount()
    status, problems = verify(l2dfs_bin, cache)
    assert status == 0 and problems == []
    assert_sound(cache, known)
    print("CRASH | %d kill -9 rounds at %.2f-%.2f s | temporaries left by the crashes: %d (in %d rounds),"
          " all removed at the next start | final copy: %d files, origin's bytes | verify: sound" %
          (ROUNDS, min(killed_at), max(killed_at), sum(left), sum(1 for x in left if x), len(got)))


# ---- the index lost ----

def cached_costume(mount, origin, tmp_path):
    """A cache holding the default costume, unmounted; its cache dir and files."""
    m = mount(opts={"prefetch": "off"})
    c = costume(origin)
    r = copy_costumes(m, str(tmp_path / "first"), [c.name])
    assert r.returncode == 0, r.stderr
    m.unmount()
    return m.cache, c


@pytest.mark.parametrize("damage", ["deleted", "garbage"])
def test_index_lost(mount, origin, tmp_path, damage):
    cache, c = cached_costume(mount, origin, tmp_path)
    n = len(cached_files(cache))
    db = os.path.join(cache, "index.db")
    for p in glob.glob(db + "*"):
        os.unlink(p)
    if damage == "garbage":
        with open(db, "wb") as f:
            f.write(os.urandom(64 << 10))
    origin.reset()
    m = mount(cache_dir=cache, opts={"prefetch": "off"})
    log = m.log_text()
    if damage == "garbage":
        assert "unusable" in log and glob.glob(db + ".corrupt-*")
    assert "index rebuilt: %d cached files found" % n in log
    r = copy_costumes(m, str(tmp_path / "again"), [c.name])
    assert r.returncode == 0, r.stderr
    got = tree_bytes(str(tmp_path / "again" / c.name))
    for rel, url in c.files.items():
        assert got[rel] == origin.expected(url), rel
    assert origin.asset_gets() == {}, "adopted files were downloaded again"
    assert_sound(cache, origin)


def test_index_lost_with_the_origin_down(mount, origin, tmp_path):
    cache, c = cached_costume(mount, origin, tmp_path)
    with open(os.path.join(cache, "index.db"), "wb") as f:
        f.write(b"not a database" * 1000)
    origin.stop()
    m = mount(cache_dir=cache, opts={"prefetch": "off"})
    err, _, secs = timed(os.listdir, m["characters"])
    assert err != 0 and secs < 10
    assert "no copy of the catalogue" in m.log_text()
    assert m.alive()
    origin.start()
    names = wait_for(lambda: timed(os.listdir, m["characters"])[1], 10, 0.2)
    assert names
    for rel, url in c.files.items():
        assert read_file(c.path(m, rel)) == origin.expected(url)
    assert origin.asset_gets() == {}
    assert_sound(cache, origin)


# ---- cache files changed behind the mount's back ----

@pytest.mark.parametrize("damage", ["truncated", "corrupted"])
def test_cache_file_changed_behind_the_mount(mount, origin, l2dfs_bin, damage):
    """Truncated: the size check at open finds it and it is downloaded again.
    Same size, other bytes: `l2dfs verify` finds it (SHA-256), --repair
    sends it back to the origin."""
    m = mount(opts={"prefetch": "off"})
    c = costume(origin)
    want = read_file(c.path(m, TEX0))
    m.unmount()
    path = c.cache_file(m.cache, TEX0)
    if damage == "truncated":
        os.truncate(path, len(want) // 2)
    else:
        with open(path, "r+b") as f:
            f.seek(len(want) // 2)
            f.write(bytes(b ^ 0xff for b in want[len(want) // 2:len(want) // 2 + 16]))
    status, problems = verify(l2dfs_bin, m.cache)
    assert status != 0 and [p["problem"] for p in problems] == [damage], problems
    if damage == "corrupted":
        r = subprocess.run([l2dfs_bin, "verify", "--repair", "-o", "cache_dir=%s" % m.cache],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode != 0 and not os.path.exists(path), r.stdout + r.stderr
    # A fresh mount: the kernel holds no page of the old file.
    m2 = mount(cache_dir=m.cache, opts={"prefetch": "off"})
    assert read_file(c.path(m2, TEX0)) == want
    if damage == "truncated":
        assert "changed behind our back" in m2.log_text()
    assert origin.count("GET", c.files[TEX0]) == 2
    m2.unmount()
    assert verify(l2dfs_bin, m.cache) == (0, [])
    assert_sound(m.cache, origin)
