"""What the mount does when things go wrong: missing files, a failing origin,
hostile or broken documents, writes, and bad start-up conditions."""

import errno
import json
import os
import subprocess
import time

import pytest

from helpers import TEX0, TEX1, costume, asset_row, mount_fstype, oserror, read_errno, read_file, sha256, wait_for

NO_PREFETCH = {"prefetch": "off"}


def files_named(root, needles):
    """Paths under root whose name contains any of needles."""
    hits = []
    for d, dirs, files in os.walk(root):
        hits += [os.path.join(d, n) for n in dirs + files if any(x in n for x in needles)]
    return hits


# ---- missing things ----

def test_missing_paths(mount, origin):
    m = mount(opts=NO_PREFETCH)
    c = costume(origin)
    for p in (m["nothing"], m["characters/nobody"], m["costumes/999_nothing"],
              os.path.join(m["characters/高松 灯"], "001_casual-2023"),
              c.path(m, "nothing.txt"), c.path(m, "textures/texture_09.png"), c.path(m, "motions/x.mtn")):
        assert oserror(os.stat, p) == errno.ENOENT, p


@pytest.mark.parametrize("kind", ["html", "status404"])
def test_missing_texture(mount, origin, kind):
    c = costume(origin)
    url = c.files[TEX1]
    if kind == "html":
        origin.fault(path=url + "$", kind="html")
    else:
        origin.fault(path=url + "$", kind="status", status=404)
    m = mount(opts=NO_PREFETCH)
    assert read_errno(c.path(m, TEX1)) == errno.ENOENT
    assert read_file(c.path(m, TEX0)) == origin.expected(c.files[TEX0])
    moc = c.model_json["model"]
    assert read_file(c.path(m, moc)) == origin.expected(c.files[moc])
    mj = json.loads(read_file(c.path(m, "model.json")))
    assert mj["textures"] == [TEX0]
    assert mj == dict(c.model_json, textures=[TEX0])
    # Not found is an answer: no retries.
    assert origin.count("GET", url) + origin.count("HEAD", url) <= 2
    assert read_errno(c.path(m, TEX1)) == errno.ENOENT


def test_optional_physics(mount, origin):
    m = mount(opts=NO_PREFETCH)
    missing = costume(origin, "002_live_event_310_sr")  # named in buildData, not on the origin
    phys = next(iter(missing.missing))
    assert phys.endswith(".physics.json")
    assert oserror(os.stat, missing.path(m, phys)) == errno.ENOENT
    assert "physics" not in json.loads(read_file(missing.path(m, "model.json")))
    assert phys not in os.listdir(missing.path(m))
    absent = costume(origin, "001_casual-2023")  # not in buildData
    assert [n for n in os.listdir(absent.path(m)) if "physics" in n] == []
    assert "physics" not in json.loads(read_file(absent.path(m, "model.json")))


def test_buildData_missing(mount, origin):
    origin.build_data("036_casual-2023", missing=True)
    m = mount(opts=NO_PREFETCH)
    c = costume(origin, "036_live_event_307_ssr")
    err = oserror(os.listdir, os.path.join(m["characters/高松 灯"], "036_casual-2023"))
    assert err == errno.ENOENT
    assert read_file(c.path(m, TEX0)) == origin.expected(c.files[TEX0])


# ---- a failing origin ----

def test_server_errors_then_recovery(mount, origin):
    m = mount(opts=NO_PREFETCH)
    c = costume(origin)
    url = c.files[TEX0]
    os.stat(c.path(m, TEX0))  # size known; what follows is the download alone
    fid = origin.fault(path=url + "$", kind="status", status=503, method="GET")
    t0 = time.monotonic()
    assert read_errno(c.path(m, TEX0)) == errno.EIO
    assert time.monotonic() - t0 < 10
    assert origin.count("GET", url) == 4
    f = next(x for x in c.info["files"] if x["rel"] == TEX0)
    row = asset_row(m.cache, f["bundle"], f["file"])
    assert row["state"] == "failed" and "503" in row["error"] and row["err"] != 0
    assert "texture_00.png" in m.log_text()
    assert not os.path.exists(c.cache_file(m.cache, TEX0))
    origin.clear_fault(fid)
    data = wait_for(lambda: read_file(c.path(m, TEX0)) if read_errno(c.path(m, TEX0)) == 0 else None, 10, 0.2)
    assert data == origin.expected(url)
    assert wait_for(lambda: asset_row(m.cache, f["bundle"], f["file"])["state"] == "completed", 10)


def test_retry_after(mount, origin):
    m = mount(opts=NO_PREFETCH)
    c = costume(origin)
    url = c.files[TEX0]
    os.stat(c.path(m, TEX0))
    origin.fault(path=url + "$", kind="status", status=429, retry_after=1, count=1, method="GET")
    t0 = time.monotonic()
    assert read_file(c.path(m, TEX0)) == origin.expected(url)
    assert time.monotonic() - t0 >= 1.0
    assert origin.count("GET", url) == 2


@pytest.mark.parametrize("kind", ["reset", "short", "long", "html"])
def test_broken_transfer_is_retried_or_refused(mount, origin, kind):
    m = mount(opts=NO_PREFETCH)
    c = costume(origin)
    url = c.files[TEX0]
    os.stat(c.path(m, TEX0))
    origin.fault(path=url + "$", kind=kind, count=1, method="GET")
    want = origin.expected(url)
    if kind == "html":  # the HTML page is "not found", never content
        assert read_errno(c.path(m, TEX0)) == errno.ENOENT
        assert not os.path.exists(c.cache_file(m.cache, TEX0))
        return
    assert read_file(c.path(m, TEX0)) == want
    # Served before its commit (DESIGN §9): the cache file follows.
    assert wait_for(lambda: os.path.exists(c.cache_file(m.cache, TEX0)), 10)
    assert sha256(read_file(c.cache_file(m.cache, TEX0))) == sha256(want)


def test_stalled_origin_times_out(mount, origin):
    m = mount(opts=dict(NO_PREFETCH, timeout=1, retries=0))
    c = costume(origin)
    url = c.files[TEX0]
    os.stat(c.path(m, TEX0))
    origin.fault(path=url + "$", kind="hang", seconds=30, method="GET")
    t0 = time.monotonic()
    assert read_errno(c.path(m, TEX0)) == errno.EIO
    assert time.monotonic() - t0 < 8


def test_origin_down(mount, origin):
    m = mount(opts=NO_PREFETCH)
    c = costume(origin)
    want = read_file(c.path(m, TEX0))
    os.listdir(c.path(m, "motions"))
    origin.stop()
    assert read_file(c.path(m, TEX0)) == want
    t0 = time.monotonic()
    assert read_errno(c.path(m, TEX1)) == errno.EIO
    assert time.monotonic() - t0 < 5
    assert "tomori_event307.moc" in os.listdir(c.path(m))
    origin.start()
    assert wait_for(lambda: read_errno(c.path(m, TEX1)) == 0, 10, 0.2)


def test_max_file_size(mount, origin):
    m = mount(opts=dict(NO_PREFETCH, max_file_size="100K"))
    c = costume(origin)
    # DESIGN §7: a file over max_file_size is EFBIG.
    assert read_errno(c.path(m, TEX0)) == errno.EFBIG
    assert not os.path.exists(c.cache_file(m.cache, TEX0))
    small = next(r for r in c.files if r.startswith("motions/"))
    assert read_file(c.path(m, small)) == origin.expected(c.files[small])


# ---- read-only ----

@pytest.mark.parametrize("daemon_open", [False, True])
def test_read_only(mount, origin, daemon_open):
    # The daemon has no handler for any change: the read-only mount makes
    # the kernel refuse them all, whoever opens files.
    m = mount(opts=NO_PREFETCH, env={"L2DFS_TEST_DAEMON_OPEN": "1"} if daemon_open else {})
    c = costume(origin)
    f = c.path(m, TEX0)
    d = c.path(m)
    os.stat(f)
    checks = {
        "open for writing": lambda: os.open(f, os.O_WRONLY),
        "create": lambda: os.open(os.path.join(d, "new.txt"), os.O_CREAT | os.O_WRONLY, 0o644),
        "create at the root": lambda: os.open(m["new.txt"], os.O_CREAT | os.O_WRONLY, 0o644),
        "mkdir": lambda: os.mkdir(os.path.join(d, "newdir")),
        "rename": lambda: os.rename(f, os.path.join(d, "renamed.png")),
        "unlink": lambda: os.unlink(f),
        "rmdir": lambda: os.rmdir(c.path(m, "textures")),
        "truncate": lambda: os.truncate(f, 0),
        "symlink": lambda: os.symlink("x", os.path.join(d, "link")),
        "chmod": lambda: os.chmod(f, 0o666),
        "utime": lambda: os.utime(f, (0, 0)),
        "link": lambda: os.link(f, os.path.join(d, "hard")),
        "mknod": lambda: os.mkfifo(os.path.join(d, "fifo")),
        "setxattr": lambda: os.setxattr(f, "user.x", b"1"),
        "removexattr": lambda: os.removexattr(f, "user.l2dfs.state"),
        "open read-write": lambda: os.open(f, os.O_RDWR),
    }
    got = {name: oserror(fn) for name, fn in checks.items()}
    assert got == {name: errno.EROFS for name in checks}
    assert read_file(f) == origin.expected(c.files[TEX0])


# ---- hostile and broken documents ----

def test_unsafe_names_in_buildData(mount, origin, tmp_path):
    name = "036_casual-2023"
    own = "live2d/chara/" + name
    doc = json.loads(origin.expected("/assets/jp/live2d/chara/%s_rip/buildData.asset" % name))
    base = doc["Base"]
    base["motions"] += [{"bundleName": own, "fileName": "../evil.mtn.bytes"},
                        {"bundleName": own, "fileName": "..\\evil2.mtn.bytes"}]
    base["textures"] += [{"bundleName": own, "fileName": "/abs.png"},
                         {"bundleName": "live2d/chara/../../../../../../evil_bundle", "fileName": "texture_09.png"}]
    base["expressions"] += [{"bundleName": own, "fileName": "ctl\u0001.exp.json"}]
    origin.build_data(name, json=doc)
    m = mount(opts=NO_PREFETCH)
    c = costume(origin, name)
    good = {r: u for r, u in c.files.items() if not any(x in u for x in ("evil", "abs.png", "\u0001"))}
    tree = os.listdir(c.path(m))
    assert "model.json" in tree and c.model_json["model"] in tree
    for sub in ("textures", "motions", "expressions"):
        assert sorted(os.listdir(c.path(m, sub))) == sorted(r.split("/")[1] for r in good if r.startswith(sub))
    r = subprocess.run(["cp", "-r", c.path(m), str(tmp_path / "copy")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    for rel, url in good.items():
        assert read_file(tmp_path / "copy" / rel) == origin.expected(url)
    mj = json.loads(read_file(c.path(m, "model.json")))
    assert "evil" not in json.dumps(mj) and "abs.png" not in json.dumps(mj)
    assert files_named(tmp_path, ["evil", "abs.png"]) == []
    assert [n for n in os.listdir(tmp_path.parent) if "evil" in n] == []
    assert [k for k in origin.requests() if "evil" in k or "abs.png" in k] == []
    log = m.log_text()
    assert "evil.mtn" in log and "abs.png" in log


def test_hostile_display_name(mount, origin):
    roster = json.loads(origin.expected("/api/characters/all.2.json"))
    roster["36"]["characterName"][3] = "../高松/灯"
    roster["37"]["characterName"][3] = ".."
    origin.document("/api/characters/all.2.json", json=roster)
    m = mount(opts=NO_PREFETCH)
    names = os.listdir(m["characters"])
    assert all("/" not in n and n not in (".", "..") for n in names)
    assert len(names) == 4
    tomori = next(n for n in names if "高松" in n)
    assert "036_live_event_307_ssr" in os.listdir(os.path.join(m["characters"], tomori))
    assert "千早 愛音" in names  # '..' is no name: the Japanese one instead


def test_malformed_buildData(mount, origin):
    origin.build_data("036_casual-2023", raw='{"Base": {"model": ')
    m = mount(opts=NO_PREFETCH)
    bad = os.path.join(m["characters/高松 灯"], "036_casual-2023")
    assert oserror(os.listdir, bad) == errno.EIO
    c = costume(origin)
    assert read_file(c.path(m, TEX0)) == origin.expected(c.files[TEX0])
    assert "036_casual-2023" in m.log_text()
    assert m.alive()


def test_malformed_roster_then_fixed(mount, origin):
    origin.document("/api/characters/all.2.json", raw='{"1": {"characterName": [')
    m = mount(opts=NO_PREFETCH)
    assert oserror(os.listdir, m["characters"]) == errno.EIO
    assert m.alive()
    origin.document("/api/characters/all.2.json", clear=True)
    names = wait_for(lambda: None if oserror(os.listdir, m["characters"]) else os.listdir(m["characters"]), 10, 0.2)
    assert sorted(names or []) == sorted(["户山 香澄", "花园 多惠", "高松 灯", "千早 爱音"])


def test_html_instead_of_a_document(mount, origin):
    origin.fault(path=r"^/api/costumes/all\.5\.json$", kind="html")
    m = mount(opts=NO_PREFETCH)
    assert oserror(os.listdir, m["characters"]) == errno.EIO
    assert m.alive()


# ---- start-up errors ----

def run_l2dfs(l2dfs_bin, *args, prefix=()):
    """Run l2dfs expecting it to refuse to start: (exit code, output)."""
    try:
        r = subprocess.run(list(prefix) + [l2dfs_bin, "-f"] + list(args), capture_output=True, text=True,
                           timeout=15, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        mp = args[-1]
        if mount_fstype(mp):
            subprocess.run(["fusermount3", "-u", mp])
        pytest.fail("l2dfs kept running instead of refusing to start")
    return r.returncode, r.stdout + r.stderr


def test_mount_point_missing(l2dfs_bin, tmp_path):
    mp = tmp_path / "nope"
    rc, out = run_l2dfs(l2dfs_bin, "-o", "cache_dir=%s" % (tmp_path / "c"), str(mp))
    assert rc == 2 and str(mp) in out


def test_mount_point_is_a_file(l2dfs_bin, tmp_path):
    mp = tmp_path / "file"
    mp.write_text("x")
    rc, out = run_l2dfs(l2dfs_bin, "-o", "cache_dir=%s" % (tmp_path / "c"), str(mp))
    assert rc == 2 and str(mp) in out


def test_cache_dir_not_creatable(l2dfs_bin, tmp_path):
    (tmp_path / "file").write_text("x")
    (tmp_path / "mnt").mkdir()
    cache = tmp_path / "file" / "cache"
    rc, out = run_l2dfs(l2dfs_bin, "-o", "cache_dir=%s" % cache, str(tmp_path / "mnt"))
    assert rc == 3 and str(cache) in out
    assert mount_fstype(tmp_path / "mnt") is None


@pytest.mark.parametrize("opt,words", [("server=xx", ["server", "jp|en|tw|cn|kr"]),
                                       ("lang=fr", ["lang", "zh-hans"]),
                                       ("log_level=loud", ["log_level"]),
                                       ("prefetch=maybe", ["prefetch"]),
                                       ("retries=-1", ["retries"]),
                                       ("max_file_size=lots", ["max_file_size"])])
def test_bad_option(l2dfs_bin, tmp_path, opt, words):
    (tmp_path / "mnt").mkdir()
    rc, out = run_l2dfs(l2dfs_bin, "-o", "cache_dir=%s,%s" % (tmp_path / "c", opt), str(tmp_path / "mnt"))
    assert rc == 1
    for w in words:
        assert w in out


def test_usage_errors(l2dfs_bin, tmp_path):
    assert run_l2dfs(l2dfs_bin)[0] == 1
    (tmp_path / "mnt").mkdir()
    assert run_l2dfs(l2dfs_bin, "--bogus", str(tmp_path / "mnt"))[0] == 1


def test_fuse_device_unusable(l2dfs_bin, tmp_path):
    if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
        pytest.skip("cannot make a private mount namespace here")
    (tmp_path / "mnt").mkdir()
    cmd = 'mount --bind /dev/null /dev/fuse && exec "$0" -f -o cache_dir="$1" "$2"'
    try:
        r = subprocess.run(["unshare", "-m", "sh", "-c", cmd, l2dfs_bin, str(tmp_path / "c"), str(tmp_path / "mnt")],
                           capture_output=True, text=True, timeout=15, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail("l2dfs kept running without a usable /dev/fuse")
    assert r.returncode == 4, r.stdout + r.stderr
    assert "/dev/fuse" in r.stdout + r.stderr
