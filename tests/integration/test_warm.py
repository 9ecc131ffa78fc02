"""Warm reads: what a cached costume still costs the daemon. The kernel keeps
entries, attributes, listings and pages; the requests it still sends are
counted from libfuse's debug output (-d)."""

import collections
import errno
import json
import os
import re
import shutil
import sqlite3
import subprocess

from helpers import TEX0, TEX1, asset_row, costume, oserror, read_file, wait_for

OPCODE = re.compile(r"^unique: \d+, opcode: (\w+) \(\d+\), nodeid: (\d+)", re.M)
REPLY = re.compile(r"^\s*unique: (\d+), (?:success|error: (-?\d+))", re.M)


def requests(m, since=0):
    """Counter of the opcodes the daemon received after log offset since,
    once every file opened so far was released."""
    settled(m)
    return count(m.log_text()[since:])


def count(log):
    return collections.Counter(op for op, _ in OPCODE.findall(log))


def settled(m):
    """The log offset once every file opened so far was released: the kernel
    sends RELEASE after close() returned, so a release of the last run
    could otherwise be counted in the next."""
    def balanced():
        log = m.log_text()
        opens = {u for u, op in re.findall(r"^unique: (\d+), opcode: (\w+)", log, re.M) if op == "OPEN"}
        # An OPEN answered ENOSYS (the kernel opens files itself from then
        # on) has no RELEASE.
        ok = sum(1 for u, e in REPLY.findall(log) if u in opens and e in ("", "0"))
        return count(log)["RELEASE"] == ok
    assert wait_for(balanced, 30), dict(count(m.log_text()))
    return len(m.log_text())


def cached_mount(mount, origin, tmp_path, env=None):
    """Every costume of a character made whole in a cache, then a fresh
    mount of that cache (with libfuse's debug output)."""
    c = costume(origin)
    first = mount(opts={"prefetch": "off"})
    subprocess.run(["cp", "-r", os.path.join(first.path, "characters", c.character), str(tmp_path / "warmup")], check=True)
    first.unmount()
    shutil.rmtree(tmp_path / "warmup")
    return c, mount(cache_dir=first.cache, args=["-d"], opts={"prefetch": "off"}, env=env)


def test_second_cp_asks_only_for_generated_attributes(mount, origin, tmp_path):
    c, m = cached_mount(mount, origin, tmp_path)
    subprocess.run(["cp", "-r", c.path(m), str(tmp_path / "one")], check=True)
    mark = settled(m)
    subprocess.run(["cp", "-r", c.path(m), str(tmp_path / "two")], check=True)
    seen = requests(m, mark)
    print("second cp -r:", dict(seen))
    # The kernel opens files and folders itself and keeps every page: the
    # generated files' attributes (asked at each stat and read, so that a
    # changed text is seen) are all that is left.
    generated = ("model.json", "name.txt")
    assert set(seen) <= {"GETATTR"}, seen
    inos = {os.stat(c.path(m, rel)).st_ino for rel in generated}
    asked = [int(n) for op, n in OPCODE.findall(m.log_text()[mark:])]
    assert set(asked) <= inos, asked
    for rel in ("textures/texture_00.png",) + generated:
        assert read_file(os.path.join(tmp_path, "two", rel)) == read_file(c.path(m, rel))
    shutil.rmtree(tmp_path / "one")
    shutil.rmtree(tmp_path / "two")


def test_without_kernel_opens_each_open_asks_the_daemon(mount, origin, tmp_path):
    """As on kernels without no-open support: a handle per open."""
    c, m = cached_mount(mount, origin, tmp_path, env={"L2DFS_TEST_DAEMON_OPEN": "1"})
    subprocess.run(["cp", "-r", c.path(m), str(tmp_path / "one")], check=True)
    mark = settled(m)
    subprocess.run(["cp", "-r", c.path(m), str(tmp_path / "two")], check=True)
    seen = requests(m, mark)
    print("second cp -r:", dict(seen))
    assert seen["LOOKUP"] == 0 and seen["READDIR"] == 0 and seen["READDIRPLUS"] == 0
    assert seen["FLUSH"] == 0
    # Asset files keep their pages: only the generated files (rendered at
    # each open) are read again.
    files = sum(len(f) for _, _, f in os.walk(tmp_path / "one"))
    assert seen["READ"] <= 2 and seen["GETATTR"] <= 5 * 2
    assert seen["OPEN"] == files and seen["RELEASE"] == files
    assert read_file(os.path.join(tmp_path, "two", "model.json")) == read_file(c.path(m, "model.json"))


def test_ls_lR_of_a_cached_character(mount, origin, tmp_path):
    c, m = cached_mount(mount, origin, tmp_path)
    chara = os.path.join(m.path, "characters", c.character)
    mark = settled(m)
    subprocess.run(["ls", "-lR", chara], check=True, capture_output=True)
    first = requests(m, mark)
    print("first ls -lR:", dict(first))
    mark = settled(m)
    subprocess.run(["ls", "-lR", chara], check=True, capture_output=True)
    second = requests(m, mark)
    print("second ls -lR:", dict(second))
    # One opendir answers that the kernel opens folders itself.
    assert first["OPENDIR"] <= 1 and first["RELEASEDIR"] == 0
    # Listed names come with their attributes: only the path down to the
    # character and generated files (model.json, name.txt: their size is a
    # rendering) are looked up.
    assert first["LOOKUP"] <= 2 + 2 * len(os.listdir(chara))
    assert second["OPENDIR"] == 0 and second["READDIR"] + second["READDIRPLUS"] == 0
    assert second["LOOKUP"] == 0
    # ls -l asks security.selinux and the POSIX ACL of every file until
    # told the tree has no such attributes (EOPNOTSUPP), then no more on
    # that device: a few questions a listing, not one or two a file. What
    # is left is the attributes of generated files.
    assert first["GETXATTR"] <= 4 and second["GETXATTR"] <= 4
    assert second["GETATTR"] <= 2 * len(os.listdir(chara))


def bundle_of(c, rel):
    return next(f["bundle"] for f in c.info["files"] if f["rel"] == rel)


def file_of(c, rel):
    return next(f["file"] for f in c.info["files"] if f["rel"] == rel)


def set_last_access(cache, value):
    db = sqlite3.connect(os.path.join(cache, "index.db"), timeout=10)
    with db:
        db.execute("UPDATE assets SET last_access=?", (value,))
    db.close()


def test_reads_reach_last_access_in_batches(mount, origin, tmp_path):
    c = costume(origin)
    first = mount(opts={"prefetch": "off"})
    subprocess.run(["cp", "-r", c.path(first), str(tmp_path / "warmup")], check=True)
    first.unmount()
    set_last_access(first.cache, 1000)
    m = mount(cache_dir=first.cache, opts={"prefetch": "off"})

    def last_access(rel):
        return asset_row(m.cache, bundle_of(c, rel), file_of(c, rel))["last_access"]

    read_file(c.path(m, "textures/texture_00.png"))
    flushed = "last_access written" in m.log_text()
    # The open wrote nothing: the read is written later, in a batch.
    assert last_access("textures/texture_00.png") == 1000 or flushed
    assert wait_for(lambda: last_access("textures/texture_00.png") > 1000, 10)
    assert "last_access written" in m.log_text()
    # At unmount, what was read since the last batch is written too.
    read_file(c.path(m, "motions/bye01.mtn"))
    m.unmount()
    assert last_access("motions/bye01.mtn") > 1000
    assert last_access("expressions/default.exp.json") == 1000


def test_listed_sizes_are_right_and_cost_no_probe(mount, origin):
    """Listings carry attributes only where the index alone knows them: a
    plain listing probes nothing more than before (the optional files, to
    know whether they are listed), and a file whose size is not known yet
    is looked up (and probed) when stat asks, never shown with a wrong size."""
    c = costume(origin)
    m = mount(opts={"prefetch": "off"}, args=["-d"])
    mark = settled(m)
    for sub in ("", "textures", "motions", "expressions"):
        os.listdir(c.path(m, sub))
    optional = {"HEAD " + f["url"] for f in c.info["files"] if f["field"] in ("icon", "physics")}
    asked = {k for k in origin.requests() if k.startswith("HEAD ")}
    assert asked <= optional and origin.asset_gets() == {}
    listed = requests(m, mark)
    assert listed["READDIRPLUS"] + listed["READDIR"] > 0
    mark = settled(m)
    for rel, url in c.files.items():
        assert os.stat(c.path(m, rel)).st_size == len(origin.expected(url)), rel
    # None is cached: each was looked up, none shown from the listing.
    assert requests(m, mark)["LOOKUP"] == len(c.files)


def test_kept_pages_of_model_json_follow_its_text(mount, origin):
    """The kernel keeps model.json's pages; once a texture turns out to be
    missing at the origin, the next read gets the new text, not the kept
    pages of the old one."""
    c = costume(origin)
    m = mount(opts={"prefetch": "off"})
    path = c.path(m, "model.json")
    with open(path, "rb") as held:
        before = json.loads(held.read())
        assert before["textures"] == [TEX0, TEX1]
        origin.fault(path=c.files[TEX1] + "$", kind="html")
        assert oserror(read_file, c.path(m, TEX1)) == errno.ENOENT
        held.seek(0)
        assert json.loads(held.read()) == dict(c.model_json, textures=[TEX0])
    assert json.loads(read_file(path)) == dict(c.model_json, textures=[TEX0])


def resident_pages(path):
    out = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "PAGES", path],
                         check=True, capture_output=True, text=True).stdout
    return int(out.split()[0])


def test_a_read_leaves_the_cache_file_in_memory(mount, origin):
    """Bytes are copied into the mount's pages, never moved out of the cache
    file's: reading it again (another mount, `pull`) needs no disk."""
    c = costume(origin)
    first = mount(opts={"prefetch": "off"})
    read_file(c.path(first, TEX0))
    first.unmount()
    m = mount(cache_dir=first.cache, opts={"prefetch": "off"})
    cached = c.cache_file(m.cache, TEX0)
    pages = (os.path.getsize(cached) + 4095) // 4096
    # The kernel may reclaim a clean page at any time (this machine's does,
    # under load); pages moved into the mount would leave next to none.
    most = pages - max(2, pages // 10)
    assert read_file(cached) == origin.expected(c.files[TEX0])
    assert resident_pages(cached) >= most
    assert read_file(c.path(m, TEX0)) == origin.expected(c.files[TEX0])
    assert resident_pages(cached) >= most
