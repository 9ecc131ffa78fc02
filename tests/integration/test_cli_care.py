"""Cache care: `l2dfs verify`, `l2dfs gc` and the mount's cache_max."""

import os
import shutil
import subprocess
import threading

import pytest

from helpers import TEX0, costume, index_rows, read_file, wait_for
from test_cli_helpers import cache_path, cached_bytes, cli, json_lines, temporaries  # noqa: F401

NAME = "036_live_event_307_ssr"


def wait_committed(cache, n):
    """Reads are answered before their commit: wait until n rows are completed
    (gc leaves a download in flight alone)."""
    def done():
        rows = index_rows(cache, "SELECT COUNT(*) AS n FROM assets WHERE state = 'completed'")
        return rows[0]["n"] >= n
    assert wait_for(done, 60)


def test_verify_finds_damage_and_repair_heals_it(cli, mount, origin, tmp_path):
    c = costume(origin)
    # Copies: damage done to the cache must not reach the pulled folder.
    assert cli("pull", NAME, "--to", tmp_path / "out", "--link", "copy").returncode == 0
    r = cli("verify")
    assert r.returncode == 0 and "all sound" in r.stdout, r.stdout
    rels = sorted(c.files)
    truncated, corrupted, missing = rels[0], rels[1], rels[2]
    with open(cache_path(cli.cache, c.files[truncated]), "r+b") as f:
        f.truncate(10)
    p = cache_path(cli.cache, c.files[corrupted])
    data = bytearray(open(p, "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(p, "wb").write(bytes(data))
    os.unlink(cache_path(cli.cache, c.files[missing]))

    r = cli("verify")
    assert r.returncode == 5, r.stdout
    assert "1 missing, 1 truncated, 1 corrupted" in r.stdout
    problems = {line.split()[0]: line.split()[1] for line in r.stdout.splitlines()[:-1]}
    assert problems == {"truncated": cache_path(cli.cache, c.files[truncated]),
                        "corrupted": cache_path(cli.cache, c.files[corrupted]),
                        "missing": cache_path(cli.cache, c.files[missing])}
    # Without --repair nothing changed.
    assert cli("verify").returncode == 5
    r = cli("verify", "--repair", "--json")
    assert r.returncode == 5  # something was unsound, even if now repaired
    events = json_lines(r.stdout)
    assert sorted(e["problem"] for e in events[:-1]) == ["corrupted", "missing", "truncated"]
    assert all(e["repaired"] for e in events[:-1]) and events[-1]["repaired"] == 3
    for rel in (truncated, corrupted, missing):
        assert not os.path.exists(cache_path(cli.cache, c.files[rel]))
    r = cli("verify")
    assert r.returncode == 0 and "all sound" in r.stdout
    # The next read downloads them again, whole.
    m = mount(cache_dir=cli.cache)
    for rel in (truncated, corrupted, missing):
        with open(c.flat(m, rel), "rb") as f:
            assert f.read() == origin.expected(c.files[rel]), rel
    assert cli("verify").returncode == 0


def test_gc_keeps_a_file_open_through_the_mount(cli, mount, origin):
    """Where the daemon opens files (kernels without no-open support), an
    open file's handle holds its lock: gc leaves it alone."""
    m = mount(cache_dir=cli.cache, opts={"prefetch": "off"}, env={"L2DFS_TEST_DAEMON_OPEN": "1"})
    c = costume(origin)
    for rel in c.files:
        with open(c.flat(m, rel), "rb") as f:
            f.read()
    wait_committed(cli.cache, len(c.files))
    held_rel = TEX0
    held = open(c.flat(m, held_rel), "rb")
    try:
        size = len(origin.expected(c.files[held_rel]))
        limit = size + size // 2
        # Low water 10 %: everything else must go.
        r = cli("gc", "--max-size", limit, "--low-water", "10", "--json")
        assert r.returncode == 0, r.stdout + r.stderr
        rep = json_lines(r.stdout)[0]
        assert rep["kept_open"] == 1 and rep["kept_open_bytes"] == size
        assert rep["evicted"] == len(c.files) - 1 and rep["total_after"] == size
        assert rep["freed"] == rep["total_before"] - size
        assert cached_bytes(cli.cache) <= limit
        assert os.path.exists(cache_path(cli.cache, c.files[held_rel]))
        assert held.read() == origin.expected(c.files[held_rel])
        states = index_rows(cli.cache, "SELECT state, COUNT(*) AS n FROM assets GROUP BY state")
        assert {s["state"]: s["n"] for s in states}.get("completed") == 1
    finally:
        held.close()
    # Evicted files come back when read.
    for rel, url in c.files.items():
        with open(c.flat(m, rel), "rb") as f:
            assert f.read() == origin.expected(url), rel


def test_gc_under_a_file_opened_by_the_kernel(cli, mount, origin):
    """Where the kernel opens files, only a read in progress holds a file:
    gc may evict an open file, and its reader still reads the right bytes
    (from the kernel's pages, or downloaded again)."""
    m = mount(cache_dir=cli.cache, opts={"prefetch": "off"})
    c = costume(origin)
    for rel in c.files:
        read_file(c.flat(m, rel))
    wait_committed(cli.cache, len(c.files))
    with open(c.flat(m, TEX0), "rb") as held:
        r = cli("gc", "--max-size", 1, "--low-water", "10", "--json")
        assert r.returncode == 0, r.stdout + r.stderr
        rep = json_lines(r.stdout)[0]
        assert rep["kept_open"] == 0 and rep["evicted"] == len(c.files)
        assert not os.path.exists(cache_path(cli.cache, c.files[TEX0]))
        os.posix_fadvise(held.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        assert held.read() == origin.expected(c.files[TEX0])
    assert origin.count("GET", c.files[TEX0]) == 2


def test_gc_keeps_files_hardlinked_elsewhere(cli, origin, tmp_path):
    assert cli("pull", NAME, "--to", tmp_path / "out").returncode == 0
    assert cli("pull", "036_casual-2023", "--to", tmp_path / "copies", "--link", "copy").returncode == 0
    total = cached_bytes(cli.cache)
    r = cli("gc", "--max-size", "0", "--json")
    rep = json_lines(r.stdout)[0]
    assert r.returncode == 5  # the linked files hold it above the limit
    linked = {u for u in costume(origin).files.values()}
    assert rep["kept_hardlinked"] == len(linked) and rep["kept_open"] == 0
    assert rep["freed"] == total - rep["kept_hardlinked_bytes"] and rep["evicted"] > 0
    for url in linked:
        assert os.path.exists(cache_path(cli.cache, url))
    # Without the links, everything can go; the pulled copies stay whole.
    shutil.rmtree(tmp_path / "out")
    r = cli("gc", "--max-size", "0")
    assert r.returncode == 0 and cached_bytes(cli.cache) == 0, r.stdout
    c = costume(origin, "036_casual-2023")
    for rel, url in c.files.items():
        assert (tmp_path / "copies" / c.name / rel).read_bytes() == origin.expected(url)


def test_cache_max_holds_during_a_copy(cli, mount, origin, tmp_path):
    limit = 768 << 10
    m = mount(cache_dir=cli.cache, opts={"cache_max": "768K"})
    names = ["036_casual-2023", "036_dream_festival_3_ur", NAME, "037_live_default"]
    sizes = [len(origin.expected(u)) for n in names for u in costume(origin, n).files.values()]
    assert sum(sizes) > 3 * limit
    peak, stop = [0], threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], cached_bytes(cli.cache))
            stop.wait(0.005)

    t = threading.Thread(target=sample)
    t.start()
    try:
        for n in names:
            subprocess.run(["cp", "-r", os.path.join(m.path, "costumes", n), str(tmp_path / n)],
                           check=True, timeout=60)
    finally:
        stop.set()
        t.join()
    for n in names:
        for rel, url in costume(origin, n).files.items():
            assert (tmp_path / n / rel).read_bytes() == origin.expected(url), (n, rel)
    final = cached_bytes(cli.cache)
    assert final <= limit, final
    # A finished download may sit above the limit until its pass has run:
    # a few files (those committing at once) at the most.
    assert peak[0] <= limit + 4 * max(sizes), peak[0]
    assert "evicted" in m.log_text()


@pytest.fixture
def small_fs(tmp_path):
    d = tmp_path / "small"
    d.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(d)]).returncode:
        pytest.skip("cannot mount a tmpfs")
    yield d
    subprocess.run(["umount", "-l", str(d)])


def test_cache_max_makes_room_when_the_disk_is_full(l2dfs_bin, make_origin, mount, small_fs,
                                                    tmp_path):
    origin = make_origin("--texture-size", str(1 << 20))
    cache = small_fs / "cache"
    m = mount(origin=origin, cache_dir=str(cache), opts={"cache_max": "1G", "prefetch": "off"})
    names = origin.catalogue()["costumes"]
    read = 0
    for n in names:
        c = costume(origin, n)
        for rel, url in c.files.items():
            with open(c.flat(m, rel), "rb") as f:
                assert f.read() == origin.expected(url), (n, rel)
            read += len(origin.expected(url))
    assert read > 6 << 20
    assert temporaries(cache) == []
    assert "evicted" in m.log_text()
