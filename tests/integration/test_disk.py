"""A cache on a small filesystem: a download that does not fit fails cleanly,
and with cache_max below the filesystem's size older files make room."""

import errno
import os
import shutil
import subprocess

import pytest

from helpers import asset_row, costume, read_file, timed, wait_for
from soundness import assert_sound, cached_files, temps

TEXTURE = 1400000  # bytes; three of them do not fit in 4 MB beside the index
COSTUMES = ["036_live_event_307_ssr", "001_live_event_332_r", "036_dream_festival_3_ur"]


@pytest.fixture
def small_cache(tmp_path):
    """A 4 MB tmpfs to hold the cache; unmounted at the end."""
    path = tmp_path / "small-cache"
    path.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(path)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs: " + r.stderr)
    yield str(path)
    if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def textures(origin):
    """[(costume, rel)] of the big files, in reading order."""
    out = []
    for name in COSTUMES:
        c = costume(origin, name)
        out += [(c, rel) for rel in sorted(c.files) if rel.startswith("textures/")]
    return out


def row_of(cache, c, rel):
    f = next(x for x in c.info["files"] if x["rel"] == rel)
    return asset_row(cache, f["bundle"], f["file"])


def test_download_that_does_not_fit(mount, make_origin, small_cache):
    origin = make_origin("--texture-size", str(TEXTURE))
    m = mount(origin=origin, cache_dir=small_cache, opts={"prefetch": "off"})
    seen = None
    for c, rel in textures(origin):
        os.stat(c.path(m, rel))
        free = shutil.disk_usage(small_cache).free
        err, data, secs = timed(read_file, c.path(m, rel))
        if err == 0:
            assert data == origin.expected(c.files[rel])
            continue
        seen = (c, rel, err, free, secs)
        break
    assert seen, "every texture fitted: the filesystem is not small enough"
    c, rel, err, free, secs = seen
    assert err == errno.ENOSPC  # DESIGN §7: a full cache disk is ENOSPC
    assert free < TEXTURE
    assert temps(small_cache) == []
    assert not os.path.exists(c.cache_file(small_cache, rel))
    assert shutil.disk_usage(small_cache).free >= free - (64 << 10)  # the partial file is gone
    row = row_of(small_cache, c, rel)
    assert row["state"] == "failed" and row["err"] == errno.ENOSPC and "No space left" in row["error"], row
    assert "No space left" in m.log_text()
    # The mount goes on: a small file still fits and is served.
    small = next(r for r in sorted(c.files) if r.startswith("motions/"))
    assert read_file(c.path(m, small)) == origin.expected(c.files[small])
    print("FAULT | cache filesystem full (4 MB tmpfs)      | %-28s | %6.2f s | 0 bytes lost" %
          (errno.errorcode[err], secs))
    m.unmount()
    assert_sound(small_cache, origin)


def held_bytes(cache):
    """Bytes of the finished files in the cache (one evicted while counted
    counts 0)."""
    total = 0
    for p in cached_files(cache).values():
        try:
            total += os.path.getsize(p)
        except FileNotFoundError:
            pass
    return total


def test_cache_max_makes_room(mount, make_origin, small_cache):
    origin = make_origin("--texture-size", str(TEXTURE))
    m = mount(origin=origin, cache_dir=small_cache, opts={"prefetch": "off", "cache_max": "3M"})
    order = textures(origin)
    for c, rel in order:
        err, data, _ = timed(read_file, c.path(m, rel))
        assert err == 0 and data == origin.expected(c.files[rel]), (rel, err)
    # Eviction follows the commit, which follows the read.
    assert wait_for(lambda: held_bytes(small_cache) <= 3 << 20, 10), held_bytes(small_cache)
    first_c, first_rel = order[0]
    assert row_of(small_cache, first_c, first_rel)["state"] == "pending"
    assert not os.path.exists(first_c.cache_file(small_cache, first_rel))
    # Evicted means downloaded again when read again (past the kernel's
    # pages, which still hold the right bytes), never wrong.
    path = first_c.path(m, first_rel)
    fd = os.open(path, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
    assert read_file(path) == origin.expected(first_c.files[first_rel])
    # Once more, or twice when the first try ran out of space before room was made.
    assert origin.count("GET", first_c.files[first_rel]) in (2, 3)
    assert wait_for(lambda: temps(small_cache) == [], 10)  # the commit follows the read
    m.unmount()
    assert_sound(small_cache, origin)
