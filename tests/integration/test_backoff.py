"""Back-off per file (DESIGN §7): after a failed download the file is not
asked again until a back-off passes; reads in between get EIO at once.
`l2dfs retry` and a remount do not forget it unless cleared."""

import errno
import os
import re
import sqlite3
import subprocess
import time

from helpers import TEX0 as TEX, costume, file_row, read_file, timed, wait_for

NO_PREFETCH = {"prefetch": "off"}


def failing(mount, origin, env=None, cache_dir=None):
    m = mount(opts=NO_PREFETCH, env=env or {}, cache_dir=cache_dir)
    c = costume(origin)
    os.stat(c.path(m, TEX))
    return m, c


def row(m, c):
    return file_row(m, c, TEX)


def test_503_loop_is_not_asked_again(mount, origin):
    m, c = failing(mount, origin)
    url = c.files[TEX]
    origin.fault(path=re.escape(url) + "$", method="GET", kind="status", status=503)
    errs, t0 = [], time.monotonic()
    for _ in range(30):
        errs.append(timed(read_file, c.path(m, TEX))[0])
    secs = time.monotonic() - t0
    gets = origin.count("GET", url)
    print("BACKOFF | 30 reads of an always-503 file | %d GETs | %.2f s" % (gets, secs))
    assert errs == [errno.EIO] * 30
    assert gets <= 8
    r = row(m, c)
    assert r["state"] == "failed" and "HTTP 503" in r["error"] and r["failures"] == 1, r
    assert r["retry_at"] > time.time() * 1000
    assert re.search(r"texture_00\.png: download failed: HTTP 503.*not asked again for \d+ s",
                     m.log_text())


def test_asked_again_after_the_backoff(mount, origin):
    # Long enough that "at once" and "after the back-off" stay apart on a
    # loaded machine.
    m, c = failing(mount, origin, env={"L2DFS_RETRY_BACKOFF_MS": "1500"})
    url = c.files[TEX]
    fid = origin.fault(path=re.escape(url) + "$", method="GET", kind="status", status=503)
    assert timed(read_file, c.path(m, TEX))[0] == errno.EIO
    first = origin.count("GET", url)
    err, _, secs = timed(read_file, c.path(m, TEX))
    assert err == errno.EIO and secs < 1.0 and origin.count("GET", url) == first
    time.sleep(2.0)  # 1.5 s + 25 % jitter at most
    assert timed(read_file, c.path(m, TEX))[0] == errno.EIO
    assert origin.count("GET", url) > first
    assert row(m, c)["failures"] == 2
    origin.clear_fault(fid)
    time.sleep(3.9)  # the second back-off: 3 s + 25 %
    assert read_file(c.path(m, TEX)) == origin.expected(url)
    # Served before its commit (DESIGN §9): the row is cleared with it.
    assert wait_for(lambda: row(m, c)["failures"] == 0, 10)


def test_retry_asks_at_once_and_remount_remembers(mount, origin, tmp_path):
    m, c = failing(mount, origin)
    url = c.files[TEX]
    fid = origin.fault(path=re.escape(url) + "$", method="GET", kind="status", status=503)
    assert timed(read_file, c.path(m, TEX))[0] == errno.EIO
    m.unmount()
    # The back-off is in the index: a new mount does not ask either.
    m2 = mount(cache_dir=m.cache, opts=NO_PREFETCH)
    before = origin.count("GET", url)
    assert timed(read_file, c.path(m2, TEX))[0] == errno.EIO
    assert origin.count("GET", url) == before
    origin.clear_fault(fid)
    r = subprocess.run([m2.binary, "retry", "-o", "api_url=%s,assets_url=%s,cache_dir=%s" %
                        (origin.api, origin.assets, m.cache), c.name],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert origin.count("GET", url) == before + 1
    assert read_file(c.path(m2, TEX)) == origin.expected(url)


def test_index_without_backoff_columns_is_migrated(mount, origin):
    m, c = failing(mount, origin)
    m.unmount()
    db = sqlite3.connect(os.path.join(m.cache, "index.db"))
    db.execute("ALTER TABLE assets DROP COLUMN failures")
    db.execute("ALTER TABLE assets DROP COLUMN retry_at")
    db.commit()
    db.close()
    m2 = mount(cache_dir=m.cache, opts=NO_PREFETCH)
    assert read_file(c.path(m2, TEX)) == origin.expected(c.files[TEX])
    assert row(m2, c)["failures"] == 0


def test_backoff_covers_the_size_probe(mount, origin):
    """A file the origin answers 503 to, HEAD and GET alike, read cold: the
    first stat pays the engine's retries (its size probe, then its GET); the
    back-off then covers the size probe as much as the GET, so later stats
    and reads send nothing."""
    m = mount(opts=NO_PREFETCH)
    c = costume(origin)
    url = c.files[TEX]
    origin.fault(path=re.escape(url) + "$", kind="status", status=503)
    os.listdir(c.path(m))

    def asked():
        return origin.count("HEAD", url) + origin.count("GET", url)

    errs = [timed(read_file, c.path(m, TEX))[0]]
    first = asked()
    for _ in range(11):
        errs.append(timed(read_file, c.path(m, TEX))[0])
        errs.append(timed(os.stat, c.path(m, TEX))[0])
    assert errs == [errno.EIO] * 23
    assert asked() == first and first <= 8, (first, asked())
    r = row(m, c)
    assert r["state"] == "failed" and "HTTP 503" in r["error"], r
    assert r["retry_at"] > time.time() * 1000
