"""`l2dfs pull`: costumes into folders, as the mount shows them, from the cache."""

import json
import os
import signal
import subprocess
import time

import pytest

from helpers import costume, index_rows, wait_for
from test_cli_helpers import cache_path, cli, json_lines, temporaries, tree  # noqa: F401 (fixture)

TOMORI = ["036_casual-2023", "036_school_winter-2023", "036_dream_festival_3_ur",
          "036_live_event_307_ssr"]


def expected_tree(origin, name):
    """{rel: bytes} the origin implies for a costume's asset-backed files."""
    c = costume(origin, name)
    return {rel: origin.expected(url) for rel, url in c.files.items()}


def test_shared_general_files_are_fetched_once(cli, origin, tmp_path):
    origin.config(latency_ms=30)  # both costumes' requests overlap
    out = tmp_path / "out"
    r = cli("pull", "036_live_event_307_ssr", "036_casual-2023", "--to", out)
    assert r.returncode == 0, r.stderr
    gets = origin.asset_gets()
    assert gets and max(gets.values()) == 1, {k: n for k, n in gets.items() if n > 1}
    shared = [k for k in gets if "036_general_rip/" in k]
    both = set(costume(origin, "036_live_event_307_ssr").files.values()) & \
        set(costume(origin, "036_casual-2023").files.values())
    assert both and all(url.startswith("/assets/jp/live2d/chara/036_general_rip/") for url in both)
    assert {"GET " + u for u in both} <= set(shared)
    for name in ("036_live_event_307_ssr", "036_casual-2023"):
        files, _ = tree(out / name)
        for rel, body in expected_tree(origin, name).items():
            assert files[rel] == body, (name, rel)


@pytest.mark.parametrize("names", [["036_live_event_307_ssr", "002_live_event_310_sr",
                                    "036_school_winter-2023", "037_casual-2023"]])
def test_pulled_folder_equals_the_mount(cli, mount, origin, tmp_path, names):
    m = mount(cache_dir=cli.cache)
    out = tmp_path / "out"
    r = cli("pull", *names, "--to", out)
    assert r.returncode == 0, r.stderr
    for name in names:
        pulled_files, pulled_dirs = tree(out / name)
        mounted_files, mounted_dirs = tree(os.path.join(m.path, "costumes", name))
        assert pulled_dirs == mounted_dirs, name
        assert sorted(pulled_files) == sorted(mounted_files), name
        for rel in mounted_files:
            assert pulled_files[rel] == mounted_files[rel], (name, rel)
        assert json.loads(pulled_files["model.json"]) == costume(origin, name).model_json
    # Missing physics left out; no icon and no name where the origin has none.
    assert not any(p.endswith(".physics.json") for p in tree(out / "002_live_event_310_sr")[0])
    assert "icon.png" not in tree(out / "036_school_winter-2023")[0]
    assert "name.txt" not in tree(out / "037_casual-2023")[0]
    assert (out / "036_live_event_307_ssr" / "name.txt").read_bytes() == "迷途之诗".encode()


def test_hardlinks_share_the_cache_inode(cli, origin, tmp_path):
    out = tmp_path / "out"
    assert cli("pull", "036_live_event_307_ssr", "--to", out).returncode == 0
    c = costume(origin)
    for rel, url in c.files.items():
        pulled = os.stat(out / c.name / rel)
        cached = os.stat(cache_path(cli.cache, url))
        assert pulled.st_ino == cached.st_ino and pulled.st_dev == cached.st_dev, rel
        assert pulled.st_nlink >= 2, rel


def test_link_copy_gives_new_inodes(cli, origin, tmp_path):
    out = tmp_path / "out"
    r = cli("pull", "036_live_event_307_ssr", "--to", out, "--link", "copy", "--json")
    assert r.returncode == 0, r.stderr
    events = {e["event"] for e in json_lines(r.stdout)}
    assert "copied" in events and "linked" not in events
    c = costume(origin)
    for rel, url in c.files.items():
        pulled = os.stat(out / c.name / rel)
        assert pulled.st_ino != os.stat(cache_path(cli.cache, url)).st_ino, rel
        assert pulled.st_nlink == 1


@pytest.fixture
def other_fs(tmp_path):
    """A folder on another filesystem than tmp_path: /dev/shm, or a small tmpfs."""
    if os.path.isdir("/dev/shm") and os.stat("/dev/shm").st_dev != os.stat(tmp_path).st_dev:
        d = "/dev/shm/l2dfs-test-%d" % os.getpid()
        os.makedirs(d, exist_ok=True)
        yield d
        subprocess.run(["rm", "-rf", d])
        return
    d = tmp_path / "tmpfs"
    d.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(d)]).returncode:
        pytest.skip("no filesystem other than the cache's to test with")
    yield str(d)
    subprocess.run(["umount", str(d)])


def test_hardlink_across_filesystems_fails_clearly(cli, origin, other_fs):
    out = os.path.join(other_fs, "out")
    r = cli("pull", "036_live_event_307_ssr", "--to", out, "--link", "hardlink")
    assert r.returncode == 5
    assert "EXDEV" in r.stderr and "another filesystem" in r.stderr
    assert not os.path.exists(os.path.join(out, "036_live_event_307_ssr"))
    # auto falls back to copies there.
    r = cli("pull", "036_live_event_307_ssr", "--to", out, "--json")
    assert r.returncode == 0, r.stderr
    events = {e["event"] for e in json_lines(r.stdout)}
    assert "copied" in events and "linked" not in events
    files, _ = tree(os.path.join(out, "036_live_event_307_ssr"))
    for rel, body in expected_tree(origin, "036_live_event_307_ssr").items():
        assert files[rel] == body, rel


def test_existing_files_are_kept_unless_overwrite(cli, origin, tmp_path):
    out = tmp_path / "out"
    name = "036_live_event_307_ssr"
    assert cli("pull", name, "--to", out).returncode == 0
    moc = next(rel for rel in costume(origin).files if rel.endswith(".moc"))
    mine = {moc: b"my own moc", "model.json": b"{}", "textures/texture_00.png": b"png"}
    for rel, body in mine.items():
        tmp = out / name / (rel + ".new")
        tmp.write_bytes(body)
        os.replace(tmp, out / name / rel)  # a new inode: the cache stays intact
    r = cli("pull", name, "--to", out, "--json")
    assert r.returncode == 0, r.stderr
    skipped = {e["rel_path"] for e in json_lines(r.stdout) if e["event"] == "skipped"}
    assert set(mine) <= skipped
    for rel, body in mine.items():
        assert (out / name / rel).read_bytes() == body
    r = cli("pull", name, "--to", out, "--overwrite")
    assert r.returncode == 0, r.stderr
    files, _ = tree(out / name)
    for rel, body in expected_tree(origin, name).items():
        assert files[rel] == body, rel
    assert json.loads(files["model.json"]) == costume(origin).model_json


def test_json_events(cli, origin, tmp_path):
    out = tmp_path / "out"
    r = cli("pull", "002_live_event_310_sr", "--to", out, "--json")
    assert r.returncode == 0, r.stderr
    events = json_lines(r.stdout)
    kinds = [e["event"] for e in events]
    for k in ("download", "downloaded", "linked", "missing_optional", "model", "written"):
        assert k in kinds, k
    assert kinds[-1] == "done" and events[-1]["status"] == "ok"
    c = costume(origin, "002_live_event_310_sr")
    done = {e["rel_path"]: e for e in events if e["event"] == "downloaded"}
    for rel, url in c.files.items():
        size = len(origin.expected(url))
        assert done[rel]["bytes_done"] == done[rel]["bytes_total"] == size, rel
        assert done[rel]["live2d_name"] == c.name
    missing = [e["rel_path"] for e in events if e["event"] == "missing_optional"]
    assert missing == list(c.missing)
    models = [e for e in events if e["event"] == "model"]
    # A line with files_done 0 opens the costume, one follows each file.
    assert [m["files_done"] for m in models] == list(range(len(models)))
    assert models[-1]["files_total"] == len(c.files) + len(c.missing)
    # Its character's shared files now come from the cache.
    r = cli("pull", "002_casual-2023", "--to", out, "--json")
    kinds = {e["event"] for e in json_lines(r.stdout)}
    assert r.returncode == 0 and "cache_hit" in kinds and "download" in kinds


def test_names_resolve_to_costumes_or_characters(cli, origin, tmp_path):
    out = tmp_path / "out"
    r = cli("pull", "高松 灯", "--to", out, "--json")
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(out)) == sorted(TOMORI)
    r = cli("pull", "爱音", "--to", tmp_path / "out2")  # fuzzy, in -o lang (zh-hans)
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(tmp_path / "out2")) == sorted(costume_names(origin, "37"))
    r = cli("pull", "036_live_event_307", "--to", tmp_path / "out3")
    assert r.returncode == 1
    assert "036_live_event_307_ssr" in r.stderr and "nearest" in r.stderr
    assert not os.path.exists(tmp_path / "out3")


def costume_names(origin, chara):
    return origin.catalogue()["characters"][chara]["costumes"]


def test_interrupted_pull_leaves_nothing_partial(cli, origin, tmp_path):
    out = tmp_path / "out"
    # Slow bodies: a texture takes over a second, so transfers are cut mid-body.
    origin.config(latency_ms=200, bandwidth=200000)
    p = cli.popen("pull", "高松 灯", "--to", out, "-j", "4", "--json")
    try:
        # Wait until files are landing, then interrupt mid-download.
        first = p.stdout.readline()
        assert first, p.stderr.read()
        assert wait_for(lambda: sum(len(f) for _, _, f in os.walk(out)) >= 3, 20)
        assert wait_for(lambda: temporaries(cli.cache), 10)  # bodies on their way
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        rc = p.wait(10)
        elapsed = time.monotonic() - t0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    stdout, stderr = p.communicate()
    assert rc == 130, stderr
    assert elapsed < 1.0, elapsed
    assert json_lines(stdout)[-1]["status"] == "interrupted"
    assert temporaries(out) == [] and temporaries(cli.cache) == []
    assert index_rows(cli.cache, "SELECT id FROM assets WHERE state='downloading'") == []
    expected = {name: expected_tree(origin, name) for name in TOMORI}
    placed = 0
    for d, _, fn in os.walk(out):
        for n in fn:
            name, rel = os.path.relpath(os.path.join(d, n), out).split(os.sep, 1)
            if rel in expected[name]:
                assert (out / name / rel).read_bytes() == expected[name][rel], rel
                placed += 1
    total = sum(len(e) for e in expected.values())
    assert 0 < placed < total
    # The next run finishes the job.
    origin.config(latency_ms=0, bandwidth=0)
    r = cli("pull", "高松 灯", "--to", out)
    assert r.returncode == 0, r.stderr
    for name in TOMORI:
        files, _ = tree(out / name)
        for rel, body in expected[name].items():
            assert files[rel] == body, (name, rel)
        assert json.loads(files["model.json"]) == costume(origin, name).model_json
    r = cli("verify")
    assert r.returncode == 0 and "all sound" in r.stdout, r.stdout + r.stderr


def test_without_j_as_many_at_once_as_the_engine_allows(cli, origin, tmp_path):
    origin.config(latency_ms=400)  # every download overlaps the others
    r = cli("pull", "户山 香澄", "花园 多惠", "高松 灯", "千早 爱音", "--to", tmp_path / "all",
            "--json", opts={"max_connections": "100"})
    assert r.returncode == 0, r.stderr
    downloads = [e for e in json_lines(r.stdout) if e["event"] == "downloaded"]
    # More at once than one per worker thread: all of them, up to the
    # engine's connections (HTTP/1.1).
    assert len(downloads) > 64 and origin.stats()["max_concurrent"] > 64
    origin.reset()
    r = cli("pull", "002_casual-2023", "--to", tmp_path / "three", "-j", "3")
    assert r.returncode == 0, r.stderr
    assert origin.stats()["max_concurrent"] <= 3
