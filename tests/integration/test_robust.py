"""What the cache, the index and `pull` do when something is wrong on disk:
a pulled file changed in place, a destination with symlinks, an index
rebuilt over doubtful files, an index that cannot be written, odd things at
cache paths, a cache_dir too long for SQLite."""

import glob
import os
import re
import signal
import subprocess
import tempfile
import time

import pytest

from helpers import TEX0, costume, mount_fstype, read_file, wait_for
from soundness import assert_sound, cached_files, verify
from test_cli_helpers import Cli, cli, tree  # noqa: F401 (fixture)


def model_rel(c):
    return next(rel for rel in c.files if rel.endswith(".moc"))


def change_in_place(path, offset=1):
    """One byte written into the file's own inode, as an editor that keeps
    the file would (mode set writable first, as such a tool may)."""
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0xff]))


# ---- a pulled file changed in place ----

def test_pulled_file_changed_in_place(cli, mount, origin, tmp_path):
    c = costume(origin)
    moc = model_rel(c)
    want = origin.expected(c.files[moc])
    r = cli("pull", c.name, "--to", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    pulled = tmp_path / "out" / c.name / moc
    cached = c.cache_file(cli.cache, moc)
    assert os.stat(pulled).st_ino == os.stat(cached).st_ino, "not hardlinked: nothing to test"
    assert os.stat(cached).st_mode & 0o777 == 0o444
    change_in_place(str(pulled))
    assert read_file(cached) != want

    # l2dfs cat: the origin's bytes, downloaded again.
    r = subprocess.run(Cli(cli.binary, origin, cli.cache).argv("cat", "%s/%s" % (c.name, moc)),
                       capture_output=True, timeout=60, env=Cli.env())
    assert r.returncode == 0 and r.stdout == want, r.stderr
    assert origin.count("GET", c.files[moc]) == 2

    # The mount and the next pull: the origin's bytes.
    change_in_place(cached)
    m = mount(cache_dir=cli.cache, opts={"prefetch": "off"})
    assert read_file(c.path(m, moc)) == want
    m.unmount()
    change_in_place(cached)
    r = cli("pull", c.name, "--to", tmp_path / "again")
    assert r.returncode == 0, r.stderr
    assert read_file(str(tmp_path / "again" / c.name / moc)) == want
    r = cli("pull", c.name, "--to", tmp_path / "out", "--overwrite")
    assert r.returncode == 0, r.stderr
    assert read_file(str(pulled)) == want
    assert verify(cli.binary, cli.cache) == (0, [])


# ---- pull's destination ----

def test_pull_refuses_an_empty_or_unusable_destination(cli, tmp_path):
    before = set(os.listdir("/"))
    for to in ("", str(tmp_path / "a-file" / "below")):
        (tmp_path / "a-file").write_bytes(b"x")
        r = cli("pull", "036_live_event_307_ssr", "--to", to)
        assert r.returncode == 1, (to, r.stderr)
        assert "--to" in r.stderr
    r = cli("pull", "036_live_event_307_ssr")
    assert r.returncode == 1 and "--to" in r.stderr
    assert set(os.listdir("/")) == before
    assert not glob.glob("/036_*") and not os.path.exists(os.path.join(os.getcwd(), "036_live_event_307_ssr"))


@pytest.mark.parametrize("overwrite", [False, True])
def test_pull_never_follows_a_symlink_in_the_destination(cli, origin, tmp_path, overwrite):
    c = costume(origin)
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / c.name).mkdir(parents=True)
    os.symlink(str(elsewhere), str(out / c.name / "textures"))
    args = ["--overwrite"] if overwrite else []
    r = cli("pull", c.name, "--to", out, *args)
    assert r.returncode == 5, r.stderr
    assert "symlink" in r.stderr
    assert os.listdir(str(elsewhere)) == [], "written through the symlink"
    # model.json comes last, and only when every file is in place.
    assert not os.path.exists(str(out / c.name / "model.json"))
    assert os.path.islink(str(out / c.name / "textures"))
    # The symlink gone, the next run finishes the folder.
    os.unlink(str(out / c.name / "textures"))
    r = cli("pull", c.name, "--to", out, *args)
    assert r.returncode == 0, r.stderr
    files, _ = tree(out / c.name)
    for rel, url in c.files.items():
        assert files[rel] == origin.expected(url), rel
    assert "model.json" in files


def test_pull_writes_no_model_json_after_a_failure(cli, origin, tmp_path):
    c = costume(origin)
    origin.fault(path=re.escape(c.files[TEX0]) + "$", method="GET", kind="status", status=503)
    r = cli("pull", c.name, "--to", tmp_path / "out")
    assert r.returncode == 5, r.stderr
    assert "model.json: not written" in r.stderr
    assert not os.path.exists(str(tmp_path / "out" / c.name / "model.json"))


# ---- an index rebuilt over doubtful files ----

def test_rebuilt_index_trusts_no_byte_it_cannot_check(mount, origin, l2dfs_bin, tmp_path):
    m = mount(opts={"prefetch": "off"})
    c = costume(origin)
    moc = model_rel(c)
    for rel in c.files:
        read_file(c.path(m, rel))
    m.unmount()
    cache = m.cache
    for p in glob.glob(os.path.join(cache, "index.db*")):
        os.unlink(p)
    tex = c.cache_file(cache, TEX0)
    want_tex = origin.expected(c.files[TEX0])
    os.truncate(tex, len(want_tex) // 2)
    foreign = tmp_path / "foreign"
    foreign.write_bytes(b"not an asset, somebody else's file")
    os.unlink(c.cache_file(cache, moc))
    os.link(str(foreign), c.cache_file(cache, moc))
    origin.reset()

    m = mount(cache_dir=cache, opts={"prefetch": "off"})
    log = m.log_text()
    assert "1 hardlinked or unreadable files dropped" in log, log
    assert foreign.read_bytes() == b"not an asset, somebody else's file"
    assert os.stat(str(foreign)).st_nlink == 1
    r = subprocess.run(Cli(l2dfs_bin, origin, cache).argv("verify"), capture_output=True, text=True,
                       timeout=60, env=Cli.env())
    assert r.returncode == 0 and "%d files found by an index rebuild" % (len(c.files) - 1) in r.stdout, \
        r.stdout + r.stderr
    for rel, url in c.files.items():
        assert read_file(c.path(m, rel)) == origin.expected(url), rel
    gets = origin.asset_gets()
    # What was doubtful came again; what the origin's size vouched for did not.
    assert set(gets) == {"GET " + c.files[TEX0], "GET " + c.files[moc]}, gets
    m.unmount()
    assert verify(l2dfs_bin, cache) == (0, [])
    assert_sound(cache, origin)


def test_rebuilt_index_serves_no_found_file_to_cat(cli, origin):
    c = costume(origin)
    r = subprocess.run(cli.argv("cat", "%s/%s" % (c.name, TEX0)), capture_output=True, timeout=60,
                       env=Cli.env())
    assert r.returncode == 0
    for p in glob.glob(os.path.join(cli.cache, "index.db*")):
        os.unlink(p)
    tex = c.cache_file(cli.cache, TEX0)
    os.truncate(tex, 10)
    r = subprocess.run(cli.argv("cat", "%s/%s" % (c.name, TEX0)), capture_output=True, timeout=60,
                       env=Cli.env())
    assert r.returncode == 0 and r.stdout == origin.expected(c.files[TEX0])


# ---- an index that cannot be written ----

def test_read_only_index_is_reported_never_moved_aside(origin):
    """As the cache's owner (not root, whom modes do not stop)."""
    top = tempfile.mkdtemp(prefix="l2dfs-ro-")
    try:
        os.chmod(top, 0o755)
        cache = os.path.join(top, "cache")
        os.mkdir(cache, 0o700)
        os.chown(cache, 65534, 65534)
        binary = os.environ.get("L2DFS_BIN") or os.path.abspath("build/l2dfs")
        as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        c = Cli(binary, origin, cache)
        r = subprocess.run(as_nobody + c.argv("characters"), capture_output=True, text=True,
                           timeout=60, env=Cli.env())
        if r.returncode != 0 and "setpriv" in r.stderr:
            pytest.skip("cannot run as another user: " + r.stderr)
        assert r.returncode == 0, r.stderr
        db = os.path.join(cache, "index.db")
        before = read_file(db)
        os.chmod(db, 0o444)
        for cmd in ("characters", "verify", "retry"):
            r = subprocess.run(as_nobody + c.argv(cmd), capture_output=True, text=True, timeout=60,
                               env=Cli.env())
            assert r.returncode == 6, (cmd, r.returncode, r.stderr)
            assert "cannot be opened for writing" in r.stderr, r.stderr
        assert not glob.glob(db + ".corrupt-*")
        assert read_file(db) == before
    finally:
        subprocess.run(["rm", "-rf", top])


def test_cache_dir_too_long_for_sqlite_says_why(l2dfs_bin, origin, tmp_path):
    deep = str(tmp_path)
    while len(deep) < 560:
        deep = os.path.join(deep, "d" * 60)
    os.makedirs(deep)
    r = subprocess.run(Cli(l2dfs_bin, origin, deep).argv("costumes"), capture_output=True, text=True,
                       timeout=60, env=Cli.env())
    assert r.returncode == 6, r.stderr
    assert "path too long" in r.stderr, r.stderr


# ---- odd things at cache paths ----

def test_verify_repair_clears_a_folder_at_a_cache_path(cli, origin, tmp_path):
    c = costume(origin)
    r = cli("pull", c.name, "--to", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    tex = c.cache_file(cli.cache, TEX0)
    os.unlink(tex)
    os.makedirs(os.path.join(tex, "inner"))
    r = cli("verify")
    assert r.returncode == 5 and "not_file" in r.stdout, r.stdout
    r = cli("verify", "--repair")
    assert r.returncode == 5 and "1 repaired" in r.stdout, r.stdout
    assert not os.path.exists(tex)
    want = origin.expected(c.files[TEX0])
    r = subprocess.run(cli.argv("cat", "%s/%s" % (c.name, TEX0)), capture_output=True, timeout=60,
                       env=Cli.env())
    assert r.returncode == 0 and r.stdout == want
    assert cli("verify").returncode == 0


def test_folder_at_a_pending_files_path_is_replaced(cli, origin, tmp_path):
    """Nothing but our files belong at a cache path: a download replaces a
    folder there (cat and pull work without a repair)."""
    c = costume(origin)
    tex = c.cache_file(cli.cache, TEX0)
    os.makedirs(os.path.join(tex, "inner"))
    r = cli("pull", c.name, "--to", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    assert read_file(str(tmp_path / "out" / c.name / TEX0)) == origin.expected(c.files[TEX0])


def test_verify_while_gc_evicts_reports_nothing_missing(cli, origin):
    """gc marks a row before the file's name goes, and verify looks at the
    row again: evicted files are never reported missing."""
    names = sorted(origin.catalogue()["costumes"])[:6]
    for n in names:
        assert cli("pull", n, "--to", os.path.join(cli.cache, "..", "out")).returncode in (0, 5)
    # Pulled files are hardlinked: gc would keep them. Drop the pulled copies.
    subprocess.run(["rm", "-rf", os.path.join(cli.cache, "..", "out")])
    assert len(cached_files(cli.cache)) > 20
    for round_ in range(5):
        gc = cli.popen("gc", "--max-size", "1")
        v = cli("verify", "--json")
        gc.communicate(timeout=60)
        assert gc.returncode in (0, 5)  # 5: files verify held open were kept
        lines = [x for x in v.stdout.splitlines() if '"problem"' in x]
        assert lines == [], lines
        assert v.returncode == 0, v.stdout + v.stderr
        for n in names[:2]:
            cli("pull", n, "--to", os.path.join(cli.cache, "..", "again%d" % round_))
        subprocess.run(["rm", "-rf", os.path.join(cli.cache, "..", "again%d" % round_)])


# ---- signals ----

def test_a_burst_of_sighups_is_one_unmount(mount):
    """Fifty SIGHUPs 1 ms apart: the daemon unmounts once, cleanly, and is
    not killed by the ones that come during its teardown."""
    m = mount()
    assert os.listdir(m.path)
    for _ in range(50):
        try:
            os.kill(m.pid, signal.SIGHUP)
        except ProcessLookupError:
            break
        time.sleep(0.001)
    assert wait_for(lambda: not m.alive(), 30), "still running after the signals"
    assert m.proc.wait() == 0, m.log_text()
    assert "unmounted" in m.log_text()
    assert wait_for(lambda: mount_fstype(m.path) is None, 10)


# ---- a full disk ----

@pytest.fixture
def tiny_fs(tmp_path):
    d = tmp_path / "tiny"
    d.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(d)]).returncode:
        pytest.skip("cannot mount a tmpfs")
    yield d
    subprocess.run(["umount", "-l", str(d)])


def fill(path):
    """Take every free byte of path's filesystem with one file."""
    with open(path, "wb") as f:
        try:
            while True:
                f.write(b"\0" * (64 << 10))
                f.flush()
        except OSError:
            pass


def test_full_disk_leaves_a_usable_index(l2dfs_bin, make_origin, mount, tiny_fs):
    """The disk fills while the mount downloads and writes the index: reads
    fail (ENOSPC), nothing is moved aside, verify answers; once there is
    room, verify exits 0 and every read is right."""
    origin = make_origin("--texture-size", str(256 << 10))
    cache = str(tiny_fs / "cache")
    m = mount(origin=origin, cache_dir=cache, opts={"prefetch": "off"})
    names = sorted(origin.catalogue()["costumes"])
    fill(str(tiny_fs / "filler"))
    errors = 0
    for n in names[:6]:
        c = costume(origin, n)
        for rel, url in c.files.items():
            try:
                assert read_file(c.flat(m, rel)) == origin.expected(url), (n, rel)
            except OSError as e:
                errors += 1
                assert e.errno in (28, 5), e  # ENOSPC, or EIO for what the disk cut short
    assert errors, "the disk never filled: the test tested nothing"
    assert m.alive()
    m.unmount()
    # Still full (what the unmount gave back taken too): the index opens
    # and verify reads it, or says the disk is full; it is never moved.
    fill(str(tiny_fs / "filler2"))
    r = subprocess.run(Cli(l2dfs_bin, origin, cache).argv("verify"), capture_output=True, text=True,
                       timeout=60, env=Cli.env())
    assert r.returncode == 0 or (r.returncode == 6 and "disk is full" in r.stderr), r.stdout + r.stderr
    print("FULL DISK | verify while full: exit %d: %s" % (r.returncode, (r.stdout + r.stderr).strip()))
    assert not glob.glob(os.path.join(cache, "index.db.corrupt-*"))
    os.unlink(str(tiny_fs / "filler"))
    os.unlink(str(tiny_fs / "filler2"))
    status, problems = verify(l2dfs_bin, cache)
    assert (status, problems) == (0, [])
    m = mount(origin=origin, cache_dir=cache, opts={"prefetch": "off", "cache_max": "2M"})
    for n in names[:3]:
        c = costume(origin, n)
        for rel, url in c.files.items():
            assert read_file(c.flat(m, rel)) == origin.expected(url), (n, rel)
    m.unmount()
    assert verify(l2dfs_bin, cache) == (0, [])
