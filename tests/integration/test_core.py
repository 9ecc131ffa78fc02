"""The mount's core contract: a lazy tree, lazy reads, one download per file, the index."""

import errno
import hashlib
import json
import os
import shutil
import subprocess
import threading
import time

import pytest

from helpers import TEX0 as TEX, TEX1, costume, index_rows, asset_row, read_file, sha256, wait_for

DOCS = {"GET /api/characters/all.2.json": 1,
        "GET /api/explorer/jp/assets/_info.json": 1,
        "GET /api/costumes/all.5.json": 1}
ZH = {1: "户山 香澄", 2: "花园 多惠", 36: "高松 灯", 37: "千早 爱音"}
NO_PREFETCH = {"prefetch": "off"}


def build_data_key(name):
    return "GET /assets/jp/live2d/chara/%s_rip/buildData.asset" % name


def walk(root):
    """{relative path: 'dir' | size} of a tree, following nothing."""
    out = {}
    for d, dirs, files in os.walk(root):
        for n in dirs:
            out[os.path.relpath(os.path.join(d, n), root)] = "dir"
        for n in files:
            out[os.path.relpath(os.path.join(d, n), root)] = os.lstat(os.path.join(d, n)).st_size
    return out


def listing(m, costumes):
    """What a tour of the tree shows: root, characters, each character,
    costumes/ and the given costume folders (names only)."""
    out = {"/": sorted(os.listdir(m.path)), "characters": sorted(os.listdir(m["characters"])),
           "costumes": sorted(os.listdir(m["costumes"]))}
    for ch in out["characters"]:
        out[ch] = sorted(os.listdir(os.path.join(m["characters"], ch)))
    for c in costumes:
        for sub in ("", "textures", "motions", "expressions"):
            out[c.name + "/" + sub] = sorted(os.listdir(c.path(m, sub)))
    return out


def costume_tree(c):
    """Top-level names of a costume folder as the origin implies them."""
    top = {rel.split("/")[0] for rel in c.files} | {"model.json"}
    if any(c.info["description"] or []):
        top.add("name.txt")
    return sorted(top)


def test_help_and_version(l2dfs_bin):
    r = subprocess.run([l2dfs_bin, "--help"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and "server=" in r.stdout + r.stderr
    r = subprocess.run([l2dfs_bin, "--version"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and "l2dfs" in r.stdout + r.stderr


def test_listing_is_lazy(mount, origin):
    m = mount(opts=NO_PREFETCH)
    assert sorted(os.listdir(m.path)) == ["characters", "costumes"]
    assert sorted(os.listdir(m["characters"])) == sorted(ZH.values())
    cat = origin.catalogue()
    assert sorted(os.listdir(m["characters/高松 灯"])) == sorted(cat["characters"]["36"]["costumes"])
    assert sorted(os.listdir(m["costumes"])) == sorted(cat["costumes"])
    assert origin.requests() == DOCS

    c = costume(origin)
    assert sorted(os.listdir(c.path(m))) == costume_tree(c)
    for sub in ("textures", "motions", "expressions"):
        assert sorted(os.listdir(c.path(m, sub))) == sorted(r.split("/")[1] for r in c.files if r.startswith(sub))
    assert sorted(os.listdir(c.flat(m))) == costume_tree(c)
    req = origin.requests()
    assert {k: n for k, n in req.items() if k.startswith("GET ")} == dict(DOCS, **{build_data_key(c.name): 1})
    # Only optional files (icon, physics) may be probed to decide whether they are listed.
    optional = {"HEAD " + f["url"] for f in c.info["files"] if f["field"] in ("icon", "physics")}
    assert {k for k in req if k.startswith("HEAD ")} <= optional


def test_languages(mount, origin):
    m = mount(opts=dict(NO_PREFETCH, lang="en"))
    assert sorted(os.listdir(m["characters"])) == sorted(
        ["Kasumi Toyama", "Tae Hanazono", "Tomori Takamatsu", "Anon Chihaya"])
    assert read_file(costume(origin, lang="en").path(m, "name.txt")).decode().strip() == "A Lost Poem"
    m2 = mount(opts=dict(NO_PREFETCH, lang="ko"))
    # Korean is null for 36 and 37: Japanese instead.
    assert sorted(os.listdir(m2["characters"])) == sorted(["토야마 카스미", "하나조노 타에", "高松 燈", "千早 愛音"])


def test_second_mount_lists_from_cache_and_stale_copy_when_offline(mount, origin):
    m = mount(opts=NO_PREFETCH)
    costumes = [costume(origin, n) for n in ("036_live_event_307_ssr", "001_casual-2023")]
    first = listing(m, costumes)
    m.unmount()
    origin.reset()
    m2 = mount(cache_dir=m.cache, opts=NO_PREFETCH)
    assert listing(m2, costumes) == first
    assert origin.stats()["total"] == 0
    m2.unmount()
    origin.stop()
    m3 = mount(cache_dir=m.cache, opts=NO_PREFETCH, env={"L2DFS_TIME_OFFSET": "90000"})
    assert listing(m3, costumes) == first


def test_catalogue_older_than_a_day_is_refetched(mount, origin):
    m = mount(opts=NO_PREFETCH)
    os.listdir(m["characters"])
    m.unmount()
    origin.reset()
    m2 = mount(cache_dir=m.cache, opts=NO_PREFETCH, env={"L2DFS_TIME_OFFSET": "90000"})
    assert sorted(os.listdir(m2["characters"])) == sorted(ZH.values())
    assert origin.requests() == DOCS


def test_read_is_lazy_and_cached(mount, origin):
    m = mount(opts=NO_PREFETCH)
    c = costume(origin)
    rel = TEX
    url = c.files[rel]
    want = origin.expected(url)
    assert origin.asset_gets() == {}
    assert read_file(c.path(m, rel)) == want
    assert origin.count("GET", url) == 1
    assert origin.asset_gets() == {"GET " + url: 1}
    cached = c.cache_file(m.cache, rel)
    # The reader is served before the commit; the file lands right after.
    assert wait_for(lambda: os.path.exists(cached), 10)
    assert read_file(cached) == want
    assert [p for p in walk(m.cache) if ".tmp." in os.path.basename(p)] == []
    assert read_file(c.flat(m, rel)) == want
    assert origin.count("GET", url) == 1
    m.unmount()
    origin.reset()
    m2 = mount(cache_dir=m.cache, opts=NO_PREFETCH)
    assert read_file(c.path(m2, rel)) == want
    assert origin.stats()["total"] == 0


@pytest.mark.parametrize("name", ["036_live_event_307_ssr", "036_dream_festival_3_ur", "001_casual-2023",
                                  "002_live_event_310_sr", "037_casual-2023"])
def test_copy_a_costume(mount, origin, tmp_path, name):
    m = mount()
    c = costume(origin, name)
    dst = tmp_path / "copy"
    r = subprocess.run(["cp", "-r", c.path(m), str(dst)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    got = walk(dst)
    files = {p for p, v in got.items() if v != "dir"}
    want = set(c.files) | {"model.json"} | ({"name.txt"} if any(c.info["description"] or []) else set())
    assert files == want
    for rel, url in c.files.items():
        assert read_file(dst / rel) == origin.expected(url), rel
        assert origin.count("GET", url) == 1, rel
    assert json.loads(read_file(dst / "model.json")) == c.model_json
    if "name.txt" in want:
        desc = c.info["description"]
        assert read_file(dst / "name.txt").decode().strip() == (desc[3] or desc[0])


def test_model_json(mount, origin):
    m = mount(opts=NO_PREFETCH)
    c = costume(origin)
    mj = json.loads(read_file(c.path(m, "model.json")))
    assert mj["version"] == "3.1"
    assert mj["layout"] == {"center_x": 0, "center_y": 0, "width": 2}
    assert mj["hit_areas_custom"] == {"body_x": [-0.3, 0.2], "body_y": [0.3, -1.9],
                                      "head_x": [-0.25, 1], "head_y": [0.25, 0.2]}
    assert mj["model"] == "tomori_event307.moc"
    assert mj["physics"] == "tomori_event307.physics.json"
    assert mj["textures"] == ["textures/texture_00.png", "textures/texture_01.png"]
    assert mj["motions"]["live"] == [{"name": "live01", "file": "motions/live01.mtn"},
                                     {"name": "live02", "file": "motions/live02.mtn"}]
    assert mj["motions"]["special"] == [{"name": "special01", "file": "motions/special01.mtn"}]
    assert {"name": "default.exp", "file": "expressions/default.exp.json"} in mj["expressions"]
    assert mj == c.model_json
    assert origin.asset_gets() == {}
    for name in ("001_casual-2023", "002_live_event_310_sr"):
        mj = json.loads(read_file(costume(origin, name).path(m, "model.json")))
        assert "physics" not in mj


def test_name_txt_and_icon(mount, origin):
    m = mount(opts=NO_PREFETCH)
    c = costume(origin)
    assert read_file(c.path(m, "name.txt")) == "迷途之诗".encode()  # no newline
    assert read_file(c.path(m, "icon.png")) == origin.expected(c.files["icon.png"])
    winter = costume(origin, "036_school_winter-2023")  # no zh-hans description, no icon
    assert read_file(winter.path(m, "name.txt")) == "冬の制服（日服）".encode()
    with pytest.raises(FileNotFoundError):
        os.stat(winter.path(m, "icon.png"))
    plain = costume(origin, "037_casual-2023")  # not in the costume index
    assert "name.txt" not in os.listdir(plain.path(m)) and "icon.png" not in os.listdir(plain.path(m))
    with pytest.raises(FileNotFoundError):
        os.stat(plain.path(m, "name.txt"))


def test_sizes_without_downloads(mount, origin):
    m = mount(opts=NO_PREFETCH)
    c = costume(origin)
    for rel, url in c.files.items():
        st = os.stat(c.path(m, rel))
        assert st.st_size == len(origin.expected(url)), rel
        assert not st.st_mode & 0o222, rel
    st = os.stat(c.path(m, "model.json"))
    assert st.st_size == len(read_file(c.path(m, "model.json")))
    for d in ("", "textures", "motions", "expressions"):
        assert not os.stat(c.path(m, d)).st_mode & 0o222
    assert origin.asset_gets() == {}


def test_stat_of_one_file_fetches_no_other(mount, origin):
    m = mount(opts=NO_PREFETCH)
    c = costume(origin)
    rel = TEX1
    assert os.stat(c.path(m, rel)).st_size == len(origin.expected(c.files[rel]))
    assert origin.asset_gets() == {}
    others = [k for k in origin.requests() if k.startswith("HEAD ") and not k.endswith(c.files[rel])]
    assert len(others) <= len(c.files)


def test_one_download_for_many_readers(mount, origin):
    m = mount(opts=NO_PREFETCH)
    c = costume(origin)
    rel = TEX1
    url = c.files[rel]
    origin.fault(path=url + "$", kind="latency", ms=400, method="GET")
    barrier = threading.Barrier(16)
    results = [None] * 16

    def reader(i):
        barrier.wait()
        try:
            results[i] = read_file(c.path(m, rel))
        except OSError as e:
            results[i] = e

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    want = origin.expected(url)
    assert all(r == want for r in results), [type(r).__name__ if r != want else "ok" for r in results]
    assert origin.count("GET", url) == 1


def test_index_states_and_redownload(mount, origin):
    m = mount(opts=NO_PREFETCH)
    c = costume(origin)
    rel = TEX
    f = next(x for x in c.info["files"] if x["rel"] == rel)
    t0 = int(time.time())
    data = read_file(c.path(m, rel))
    # Served before its commit: the row says completed right after.
    assert wait_for(lambda: (asset_row(m.cache, f["bundle"], f["file"]) or {}).get("state") == "completed", 10)
    row = asset_row(m.cache, f["bundle"], f["file"])
    assert row["size"] == len(data) == row["bytes_done"]
    assert row["sha256"] == sha256(data)
    assert row["err"] == 0
    for k in ("created_at", "updated_at", "last_access"):
        assert t0 - 5 <= row[k] <= time.time() + 5, k
    other = next(x for x in c.info["files"] if x["rel"] == TEX1)
    assert asset_row(m.cache, other["bundle"], other["file"])["state"] == "pending"
    docs = index_rows(m.cache, "SELECT key, fetched_at FROM documents")
    assert len(docs) >= 3 and all(t0 - 5 <= d["fetched_at"] <= time.time() + 5 for d in docs)

    m.unmount()
    os.unlink(c.cache_file(m.cache, rel))
    m2 = mount(cache_dir=m.cache, opts=NO_PREFETCH)
    assert read_file(c.path(m2, rel)) == data
    assert origin.count("GET", f["url"]) == 2
    assert wait_for(lambda: os.path.exists(c.cache_file(m.cache, rel)), 10)
    assert read_file(c.cache_file(m.cache, rel)) == data
    assert wait_for(lambda: asset_row(m.cache, f["bundle"], f["file"])["state"] == "completed", 10)


def test_shared_files_are_cached_once(mount, origin):
    m = mount(opts=NO_PREFETCH)
    a, b = costume(origin, "036_live_event_307_ssr"), costume(origin, "036_casual-2023")
    shared = sorted((set(a.files) & set(b.files)) - {"icon.png"})
    shared = [r for r in shared if a.files[r] == b.files[r]]
    assert shared, "the two costumes share no _general file"
    rel = shared[0]
    assert read_file(a.path(m, rel)) == read_file(b.path(m, rel)) == origin.expected(a.files[rel])
    assert origin.count("GET", a.files[rel]) == 1


def test_background_mount(mount, origin):
    m = mount(foreground=False, opts=NO_PREFETCH)
    assert m.proc.returncode == 0 and m.pid != m.proc.pid and m.alive()
    assert sorted(os.listdir(m["characters"])) == sorted(ZH.values())
    c = costume(origin)
    assert read_file(c.path(m, TEX)) == origin.expected(c.files[TEX])
    m.unmount()
    assert not m.alive()


def test_cache_survives_a_crash(mount, origin):
    m = mount(opts=NO_PREFETCH)
    c = costume(origin)
    tex1 = TEX1
    data = read_file(c.path(m, TEX))
    origin.fault(path=c.files[tex1] + "$", kind="stall", seconds=5, method="GET")
    reader = threading.Thread(target=lambda: subprocess.run(["cat", c.path(m, tex1)], capture_output=True))
    reader.start()
    assert wait_for(lambda: origin.count("GET", c.files[tex1]) == 1, 5)
    m.kill9()
    reader.join(10)
    m.unmount()
    origin.reset()
    m2 = mount(cache_dir=m.cache, opts=NO_PREFETCH)
    assert read_file(c.path(m2, TEX)) == data
    assert origin.stats()["total"] == 0
    assert read_file(c.path(m2, tex1)) == origin.expected(c.files[tex1])
    assert wait_for(lambda: not [p for p in walk(m.cache) if ".tmp." in os.path.basename(p)], 5)


def test_open_model_json_keeps_its_size(mount, origin):
    """fstat of an open model.json gives the size of what it reads, even when
    a file named in it turns out missing meanwhile (web servers send fstat's
    size as Content-Length)."""
    import re
    m = mount(opts=NO_PREFETCH)
    c = costume(origin)
    origin.fault(path=re.escape(c.files[TEX]) + "$", method="GET", kind="html")
    with open(c.path(m, "model.json"), "rb") as f:
        assert TEX in json.loads(f.read())["textures"]
        try:
            read_file(c.path(m, TEX))
        except FileNotFoundError:
            pass
        f.seek(0)
        body = f.read()
        assert os.fstat(f.fileno()).st_size == len(body)
    assert TEX not in json.loads(read_file(c.path(m, "model.json")))["textures"]


def test_generated_files_can_be_mapped(mount, origin):
    """model.json and name.txt go through the page cache: mmap gives the bytes
    read() gives, and st_size is their length."""
    import mmap
    m = mount(opts=NO_PREFETCH)
    c = costume(origin)
    for rel in ("model.json", "name.txt"):
        body = read_file(c.path(m, rel))
        assert body and os.stat(c.path(m, rel)).st_size == len(body), rel
        with open(c.path(m, rel), "rb") as f:
            assert os.fstat(f.fileno()).st_size == len(body)
            with mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as mm:
                assert mm[:] == body, rel
    # A texture turns out missing: model.json changes, and a new open maps
    # the new text, not pages of the old one.
    import re
    old = read_file(c.path(m, "model.json"))
    origin.fault(path=re.escape(c.files[TEX]) + "$", method="GET", kind="html")
    with pytest.raises(FileNotFoundError):
        read_file(c.path(m, TEX))
    body = read_file(c.path(m, "model.json"))
    assert body != old and TEX not in json.loads(body)["textures"]
    with open(c.path(m, "model.json"), "rb") as f:
        assert os.fstat(f.fileno()).st_size == len(body)
        with mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as mm:
            assert mm[:] == body


def unknown_attributes_are_no_data(m, c):
    for path in (c.path(m, TEX), c.path(m), c.path(m, "model.json"), m.path):
        for name in ("user.other", "user.l2dfs.nope", "user.l2dfs.state.x"):
            with pytest.raises(OSError) as e:
                os.getxattr(path, name)
            assert e.value.errno == errno.ENODATA, (path, name)
        # No namespace but user.*: ls -l then stops asking for labels and ACLs.
        for name in ("security.selinux", "system.posix_acl_access", "trusted.x"):
            with pytest.raises(OSError) as e:
                os.getxattr(path, name)
            assert e.value.errno == errno.EOPNOTSUPP, (path, name)


def test_unknown_attribute_is_no_data(mount, origin):
    m = mount(opts=NO_PREFETCH)
    unknown_attributes_are_no_data(m, costume(origin))


@pytest.mark.skipif(not shutil.which("valgrind"), reason="needs valgrind")
def test_unknown_attribute_reads_nothing_unset(mount, origin, l2dfs_bin, tmp_path):
    """Under memcheck, a getxattr l2dfs has no value for decides nothing on
    memory it never wrote."""
    m = mount(opts=NO_PREFETCH, start=False)
    # A sanitizer build cannot run under valgrind; there the sanitizer
    # watches the same calls instead.
    with open(l2dfs_bin, "rb") as f:
        image = f.read()
    sanitized = b"__asan_init" in image or b"__tsan_init" in image
    vlog = tmp_path / "memcheck.log"
    if not sanitized:
        wrapper = tmp_path / "l2dfs-memcheck"
        wrapper.write_text('#!/bin/sh\nexec valgrind -q --log-file=%s "%s" "$@"\n'
                           % (vlog, os.path.abspath(l2dfs_bin)))
        wrapper.chmod(0o755)
        m.binary = str(wrapper)
    m.start(timeout=60)
    unknown_attributes_are_no_data(m, costume(origin))
    m.unmount()
    report = "" if sanitized else vlog.read_text()
    assert "getxattr" not in report, report
