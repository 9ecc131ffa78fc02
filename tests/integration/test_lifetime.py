"""A mount left up for weeks: catalogue refreshes reach it, and an inode
number never stands for two objects."""

import errno
import json
import os
import sqlite3
import statistics
import subprocess
import time

from helpers import PROXY_VARS, costume, index_rows, oserror, read_file, wait_for

NEW_CHARACTER = 3  # in the roster, without costumes in the small catalogue


class Changes:
    """The origin's catalogue, edited through document overrides."""

    def __init__(self, origin):
        self.origin = origin
        self.costumes = self.get("/api/costumes/all.5.json")
        self.info = self.get("/api/explorer/jp/assets/_info.json")
        self.roster = self.get("/api/characters/all.2.json")

    def get(self, path):
        status, _, raw = self.origin.request("GET", "/api" + path[4:])
        assert status == 200, path
        return json.loads(raw)

    def add(self, name, cid, chara):
        own = "live2d/chara/" + name
        self.costumes[str(cid)] = {"characterId": chara, "assetBundleName": name,
                                   "sdResourceName": "sd%03d%03d" % (chara, cid % 1000),
                                   "description": ["新衣装 %d" % cid] * 4 + [None],
                                   "publishedAt": [str(1700000000000 + cid)] * 4 + [None]}
        self.info["live2d"]["chara"][name] = 6
        # Every added costume has the same file names: only the bytes differ.
        base = {"model": {"bundleName": own, "fileName": "life.moc.bytes"},
                "physics": {"bundleName": own, "fileName": "life.physics.json"},
                "textures": [{"bundleName": own, "fileName": "texture_00.png"}],
                "motions": [{"bundleName": own, "fileName": "idle01.mtn.bytes"}],
                "expressions": [{"bundleName": own, "fileName": "default.exp.json"}]}
        self.origin.build_data(name, json={"Base": base})
        return self

    def remove(self, name):
        self.costumes = {k: v for k, v in self.costumes.items() if v["assetBundleName"] != name}
        self.info["live2d"]["chara"].pop(name, None)
        return self

    def publish(self):
        self.origin.document("/api/costumes/all.5.json", json=self.costumes)
        self.origin.document("/api/explorer/jp/assets/_info.json", json=self.info)

    def character(self, chara, lang=3):
        names = self.roster[str(chara)]["characterName"]
        return names[lang] or names[0]


def refresh(l2dfs_bin, origin, cache, *opts):
    o = ["api_url=" + origin.api, "assets_url=" + origin.assets, "cache_dir=" + str(cache),
         "retry_base_ms=20", "retries=1"] + list(opts)
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return subprocess.run([l2dfs_bin, "refresh", "-o", ",".join(o)], capture_output=True, text=True,
                          env=env, timeout=60)


def shows(path, name):
    try:
        return name in os.listdir(path)
    except OSError:
        return False


def own_files(root):
    """{relative path: bytes} of the asset-backed files under a costume folder."""
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            if f not in ("model.json", "name.txt", "icon.png"):
                out[os.path.relpath(os.path.join(d, f), root)] = read_file(os.path.join(d, f))
    return out


def expected_files(origin, name):
    return {rel: origin.expected("/assets/jp/live2d/chara/%s_rip/%s" % (name, os.path.basename(rel)))
            for rel in ("life.moc", "life.physics.json", "textures/texture_00.png",
                        "motions/idle01.mtn", "expressions/default.exp.json")}


def test_refresh_beside_a_mount_shows_added_and_hides_removed(mount, origin, l2dfs_bin):
    m = mount()
    cat = Changes(origin)
    costumes, characters = m["costumes"], m["characters"]
    gone = costume(origin, "002_casual-2023")
    new_char = cat.character(NEW_CHARACTER)
    assert sorted(os.listdir(characters)) and new_char not in os.listdir(characters)
    assert os.path.isdir(gone.path(m)) and os.path.isdir(gone.flat(m))
    delays = []
    for i in range(3):
        name = "%03d_life_added_%d" % (NEW_CHARACTER, i)
        # A negative entry the kernel keeps for an hour otherwise.
        assert oserror(os.stat, os.path.join(costumes, name)) == errno.ENOENT
        cat.add(name, 5000 + i, NEW_CHARACTER)
        if i == 0:
            cat.remove(gone.name)
        cat.publish()
        r = refresh(l2dfs_bin, origin, m.cache)
        assert r.returncode == 0, r.stderr
        t0 = time.monotonic()
        assert wait_for(lambda: os.path.isdir(os.path.join(costumes, name)) and shows(costumes, name), 10)
        delays.append(time.monotonic() - t0)
        assert wait_for(lambda: shows(characters, new_char), 5)
        assert shows(os.path.join(characters, new_char), name)
        assert "name.txt" in os.listdir(os.path.join(costumes, name))
    assert not shows(costumes, gone.name)
    assert not shows(os.path.join(characters, gone.character), gone.name)
    assert oserror(os.stat, gone.flat(m)) == errno.ENOENT
    assert oserror(os.stat, gone.path(m)) == errno.ENOENT
    print("\nnew costume visible %.2f s after l2dfs refresh returned (median of %s)"
          % (statistics.median(delays), ", ".join("%.2f" % d for d in delays)))
    assert statistics.median(delays) < 5


def test_a_removed_costume_never_lends_its_identity(mount, origin, l2dfs_bin):
    m = mount()
    cat = Changes(origin)
    os.listdir(m["costumes"])
    old, new = "001_life_old", "001_life_new"
    cat.add(old, 6000, 1).publish()
    assert refresh(l2dfs_bin, origin, m.cache).returncode == 0
    old_dir = os.path.join(m["costumes"], old)
    assert wait_for(lambda: shows(m["costumes"], old), 10)
    assert own_files(old_dir) == expected_files(origin, old)
    old_model = read_file(os.path.join(old_dir, "model.json"))
    old_inos = {rel: os.stat(os.path.join(old_dir, rel)).st_ino for rel in expected_files(origin, old)}
    old_inos["."] = os.stat(old_dir).st_ino

    cat.remove(old).publish()
    assert refresh(l2dfs_bin, origin, m.cache).returncode == 0
    assert wait_for(lambda: not shows(m["costumes"], old), 10)
    cat.add(new, 6001, 1).publish()
    assert refresh(l2dfs_bin, origin, m.cache).returncode == 0
    new_dir = os.path.join(m["costumes"], new)
    assert wait_for(lambda: shows(m["costumes"], new), 10)

    want = expected_files(origin, new)
    assert want != expected_files(origin, old)
    assert own_files(new_dir) == want
    for rel, data in want.items():
        assert os.stat(os.path.join(new_dir, rel)).st_size == len(data)
        assert os.stat(os.path.join(new_dir, rel)).st_ino != old_inos[rel]
    assert os.stat(new_dir).st_ino != old_inos["."]
    assert sorted(os.listdir(new_dir)) == ["expressions", "life.moc", "life.physics.json", "model.json",
                                           "motions", "name.txt", "textures"]
    model = json.loads(read_file(os.path.join(new_dir, "model.json")))
    assert model["model"] == "life.moc" and model["textures"] == ["textures/texture_00.png"]
    assert read_file(os.path.join(new_dir, "name.txt")) == "新衣装 6001".encode()
    assert read_file(os.path.join(new_dir, "model.json")) == old_model  # same names, other bytes
    rows = index_rows(m.cache, "SELECT id, live2d_name FROM costumes WHERE live2d_name IN (?, ?)", (old, new))
    assert [r["live2d_name"] for r in rows] == [new]


def test_the_mount_refreshes_by_itself(mount, origin):
    m = mount(opts={"catalogue_ttl": "2s"})
    cat = Changes(origin)
    assert not shows(m["costumes"], "001_life_ttl")
    cat.add("001_life_ttl", 7000, 1).remove("001_casual-2023").publish()
    assert wait_for(lambda: shows(m["costumes"], "001_life_ttl"), 15)
    assert wait_for(lambda: not shows(m["costumes"], "001_casual-2023"), 5)
    assert oserror(os.stat, os.path.join(m["costumes"], "001_casual-2023")) == errno.ENOENT


def test_refresh_without_a_mount(origin, l2dfs_bin, tmp_path):
    cache = tmp_path / "cache"
    r = refresh(l2dfs_bin, origin, cache)
    assert r.returncode == 0, r.stderr
    assert "refreshed" in r.stdout
    before = {x["live2d_name"] for x in index_rows(cache, "SELECT live2d_name FROM costumes")}
    assert "037_live_default" in before
    Changes(origin).add("037_life_cron", 8000, 37).remove("037_live_default").publish()
    assert refresh(l2dfs_bin, origin, cache).returncode == 0
    after = {x["live2d_name"] for x in index_rows(cache, "SELECT live2d_name FROM costumes")}
    assert after == before - {"037_live_default"} | {"037_life_cron"}


def test_refresh_with_the_origin_down(make_origin, l2dfs_bin, tmp_path):
    origin = make_origin()
    cache = tmp_path / "cache"
    origin.stop()
    r = refresh(l2dfs_bin, origin, cache, "connect_timeout=2")
    assert r.returncode == 5
    assert "no copy is stored" in r.stderr
    origin.start()
    assert refresh(l2dfs_bin, origin, cache).returncode == 0
    before = index_rows(cache, "SELECT id, live2d_name FROM costumes ORDER BY id")
    fid = origin.fault(path=r"^/api/costumes/", kind="status", status=503)
    r = refresh(l2dfs_bin, origin, cache)
    assert r.returncode == 5
    assert "/costumes/all.5.json" in r.stderr and "stays in use" in r.stderr
    assert index_rows(cache, "SELECT id, live2d_name FROM costumes ORDER BY id") == before
    origin.clear_fault(fid)
    origin.stop()
    r = refresh(l2dfs_bin, origin, cache, "connect_timeout=2")
    assert r.returncode == 5 and "stays in use" in r.stderr
    assert index_rows(cache, "SELECT id, live2d_name FROM costumes ORDER BY id") == before


def test_inode_numbers_survive_a_remount(mount, origin, tmp_path):
    c = costume(origin)
    cache, mnt = str(tmp_path / "cache"), str(tmp_path / "mnt")

    def inos(m):
        texture = sorted(os.listdir(c.flat(m, "textures")))[0]
        paths = [p(m, rel) for p in (c.path, c.flat) for rel in ("", "model.json", "textures",
                                                                  "textures/" + texture)]
        return [os.stat(p).st_ino for p in paths + [os.path.dirname(c.path(m, "").rstrip("/"))]]

    m1 = mount(cache_dir=cache, mountpoint=mnt)
    first = inos(m1)
    assert len(set(first)) == len(first)
    assert m1.unmount() == 0
    assert inos(mount(cache_dir=cache, mountpoint=mnt)) == first


def test_an_old_index_is_migrated_keeping_ids(origin, l2dfs_bin, tmp_path, mount):
    cache = tmp_path / "cache"
    assert refresh(l2dfs_bin, origin, cache).returncode == 0
    db = sqlite3.connect(str(cache / "index.db"))
    for table in ("costume_files", "costumes"):
        sql = db.execute("SELECT sql FROM sqlite_master WHERE name=?", (table,)).fetchone()[0]
        assert "AUTOINCREMENT" in sql
    # Make it the schema without AUTOINCREMENT, as older versions wrote it.
    db.execute("PRAGMA foreign_keys=OFF")
    for table in ("costume_files", "costumes"):
        sql = db.execute("SELECT sql FROM sqlite_master WHERE name=?", (table,)).fetchone()[0]
        db.execute("ALTER TABLE %s RENAME TO old_%s" % (table, table))
        db.execute(sql.replace(" AUTOINCREMENT", ""))
        db.execute("INSERT INTO %s SELECT * FROM old_%s" % (table, table))
    db.execute("DROP TABLE old_costume_files")
    db.execute("DROP TABLE old_costumes")
    db.commit()
    db.close()
    ids = index_rows(cache, "SELECT id, live2d_name FROM costumes ORDER BY id")
    m = mount(cache_dir=str(cache))
    assert os.listdir(m["costumes"])
    assert index_rows(cache, "SELECT id, live2d_name FROM costumes ORDER BY id") == ids
    sql = index_rows(cache, "SELECT sql FROM sqlite_master WHERE name IN ('costumes', 'costume_files')")
    assert len(sql) == 2 and all("AUTOINCREMENT" in r["sql"] for r in sql)


def test_catalogue_ttl_values(l2dfs_bin, tmp_path):
    for bad in ("0", "-1s", "10x", "h"):
        r = subprocess.run([l2dfs_bin, "refresh", "-o", "catalogue_ttl=%s,cache_dir=%s" % (bad, tmp_path)],
                           capture_output=True, text=True)
        assert r.returncode == 1 and "catalogue_ttl" in r.stderr
