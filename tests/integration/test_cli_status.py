"""`l2dfs status` and `l2dfs retry`, and the mount's status attributes."""

import json
import os
import subprocess

from helpers import TEX1 as TEX, costume, sha256, wait_for
from test_cli_helpers import cache_path, cli, json_lines  # noqa: F401 (fixture)

NAME = "036_live_event_307_ssr"


def fields(text):
    """{"key": "value"} of "key: value" lines."""
    out = {}
    for line in text.splitlines():
        k, sep, v = line.partition(":")
        if sep:
            out.setdefault(k.strip(), v.strip())
    return out


def test_status_of_a_file_and_a_costume_without_a_mount(cli, origin, tmp_path):
    c = costume(origin)
    r = cli("status", NAME)
    assert r.returncode == 1 and "no catalogue yet" in r.stderr
    # Only the catalogue so far: the costume's files are not listed.
    assert cli("costumes", "高松 灯").returncode == 0
    r = cli("status", NAME)
    assert r.returncode == 0 and "not listed yet" in r.stdout, r.stdout + r.stderr
    assert cli("pull", NAME, "--to", tmp_path / "out").returncode == 0
    body = origin.expected(c.files[TEX])
    total = sum(len(origin.expected(u)) for u in c.files.values())
    origin.stop()  # status needs no network
    for path in ("%s/%s" % (NAME, TEX), "/no/mount/here/costumes/%s/%s" % (NAME, TEX),
                 "mnt/characters/高松 灯/%s/%s" % (NAME, TEX)):
        r = cli("status", path)
        assert r.returncode == 0, r.stderr
        f = fields(r.stdout)
        assert f["state"] == "completed" and f["progress"] == "100", r.stdout
        assert f["size"] == str(len(body))
        assert f["sha256"] == sha256(body)
        assert f["cache_path"] == cache_path(cli.cache, c.files[TEX])
        assert f["url"] == origin.url + c.files[TEX]
        assert f["error"] == ""
    j = json_lines(cli("status", "--json", "%s/%s" % (NAME, TEX)).stdout)[0]
    assert (j["state"], j["progress"], j["size"]) == ("completed", 100, len(body))
    assert j["sha256"] == sha256(body) and j["rel_path"] == TEX
    r = cli("status", "/x/costumes/%s/model.json" % NAME)
    assert fields(r.stdout)["state"] == "generated"

    r = cli("status", "/x/costumes/%s" % NAME)
    n = len(c.files) + len(c.missing)
    assert "files:   %d/%d done, 0 failed" % (n, n) in r.stdout, r.stdout
    j = json_lines(cli("status", "--json", NAME).stdout)[0]
    assert (j["files_done"], j["files_total"], j["bytes_done"], j["bytes_total"]) == (n, n, total, total)
    assert j["failed"] == [] and j["listed"] is True

    for bad in ("no_such_costume", "%s/textures/nope.png" % NAME, "%s/motions" % NAME):
        r = cli("status", bad)
        assert r.returncode == 1 and r.stdout == "", bad


def test_retry_after_a_fault_clears(cli, origin, tmp_path):
    c = costume(origin)
    fid = origin.fault(path=c.files[TEX], kind="status", status=503)
    out = tmp_path / "out"
    r = cli("pull", NAME, "--to", out, "--json")
    assert r.returncode == 5
    failed = [e for e in json_lines(r.stdout) if e["event"] == "failed"]
    assert [e["rel_path"] for e in failed] == [TEX] and "503" in failed[0]["error"]
    assert not (out / NAME / TEX).exists()

    r = cli("status", NAME)
    assert "1 failed" in r.stdout and "failed:  %s: HTTP 503" % TEX in r.stdout, r.stdout
    j = json_lines(cli("status", "--json", NAME).stdout)[0]
    assert j["files_failed"] == 1 and j["failed"][0]["rel_path"] == TEX
    assert j["failed"][0]["url"].endswith(c.files[TEX])
    f = json_lines(cli("status", "--json", "%s/%s" % (NAME, TEX)).stdout)[0]
    assert f["state"] == "failed" and "503" in f["error"] and f["progress"] == 0

    # Still failing: retry says so.
    r = cli("retry", NAME)
    assert r.returncode == 5 and r.stdout.startswith("failed") and TEX in r.stdout, r.stdout
    origin.clear_fault(fid)
    before = origin.count("GET", c.files[TEX])
    r = cli("retry", NAME)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "ok       %s/%s\n" % (NAME, TEX)
    assert origin.count("GET", c.files[TEX]) == before + 1
    f = json_lines(cli("status", "--json", "%s/%s" % (NAME, TEX)).stdout)[0]
    assert f["state"] == "completed" and f["error"] == ""
    assert cli("pull", NAME, "--to", out).returncode == 0
    assert (out / NAME / TEX).read_bytes() == origin.expected(c.files[TEX])
    # Nothing failed any more on the server.
    r = cli("retry", "--json")
    assert r.returncode == 0 and json_lines(r.stdout)[-1]["retried"] == 0


def test_retry_of_the_whole_server(cli, origin, tmp_path):
    a, b = costume(origin, "001_casual-2023"), costume(origin, "037_live_default")
    fids = [origin.fault(path=x.files[t], kind="status", status=500)
            for x, t in ((a, "textures/texture_00.png"), (b, "textures/texture_00.png"))]
    r = cli("pull", a.name, b.name, "--to", tmp_path / "out")
    assert r.returncode == 5
    for fid in fids:
        origin.clear_fault(fid)
    r = cli("retry", "--json")
    assert r.returncode == 0, r.stderr
    events = json_lines(r.stdout)
    assert sorted(e["status"] for e in events if e["event"] == "retried") == ["ok", "ok"]
    assert events[-1] == {"event": "done", "retried": 2, "ok": 2, "failed": 0, "missing": 0,
                          "interrupted": False}


def getfattr(path):
    r = subprocess.run(["getfattr", "-d", "-m", "-", "--absolute-names", path],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    out = {}
    for line in r.stdout.splitlines():
        k, sep, v = line.partition("=")
        if sep:
            out[k] = json.loads(v) if v.startswith('"') else v
    return out


def test_mount_status_attributes(cli, mount, origin):
    m = mount(cache_dir=cli.cache, opts={"prefetch": "off"})
    c = costume(origin)
    path = c.flat(m, TEX)
    before = getfattr(path)
    assert before["user.l2dfs.state"] == "pending" and before["user.l2dfs.progress"] == "0"
    with open(path, "rb") as f:
        body = f.read()
    # Served before its commit (DESIGN §9): the state follows.
    assert wait_for(lambda: getfattr(path)["user.l2dfs.state"] == "completed", 10)
    a = getfattr(path)
    assert a["user.l2dfs.state"] == "completed" and a["user.l2dfs.progress"] == "100"
    assert a["user.l2dfs.size"] == str(len(body))
    assert a["user.l2dfs.sha256"] == sha256(body)
    assert a["user.l2dfs.cache_path"] == cache_path(cli.cache, c.files[TEX])
    assert a["user.l2dfs.url"] == origin.url + c.files[TEX]
    assert a.get("user.l2dfs.error", "") == ""
    # The same answers from the command line, the mount running.
    j = json_lines(cli("status", "--json", path).stdout)[0]
    assert (j["state"], j["sha256"], j["url"]) == ("completed", a["user.l2dfs.sha256"],
                                                     a["user.l2dfs.url"])
    d = getfattr(c.flat(m))
    n = len(c.files) + len(c.missing)
    assert d["user.l2dfs.files_total"] == str(n) and d["user.l2dfs.files_done"] == "1"


def test_costume_state_leaves_absent_files_out(cli, origin, tmp_path):
    """A costume whose optional files (an icon, physics) the origin lacks is
    completed once the rest is cached; those are absent, not counted."""
    winter = "036_school_winter-2023"  # no icon on the origin
    r = cli("costumes", "高松 灯")
    assert r.returncode == 0, r.stderr
    assert fields(cli("status", winter).stdout)["state"] == "pending"
    assert cli("pull", winter, "--to", tmp_path / "out").returncode == 0
    n = len(costume(origin, winter).files)
    r = cli("status", winter)
    f = fields(r.stdout)
    assert f["state"] == "completed", r.stdout
    assert f["files"] == "%d/%d done, 0 failed, 1 absent" % (n, n), r.stdout
    assert "absent:  icon.png (not on the origin)" in r.stdout
    j = json_lines(cli("status", "--json", winter).stdout)[0]
    assert (j["state"], j["files_done"], j["files_total"], j["files_absent"]) == ("completed", n, n, 1)
    assert [a["rel_path"] for a in j["absent"]] == ["icon.png"] and j["failed"] == []

    tae = costume(origin, "002_live_event_310_sr")  # names a physics file the origin lacks
    assert cli("pull", tae.name, "--to", tmp_path / "out").returncode == 0
    j = json_lines(cli("status", "--json", tae.name).stdout)[0]
    assert j["state"] == "completed" and j["files_done"] == j["files_total"] == len(tae.files)
    assert [a["rel_path"] for a in j["absent"]] == sorted(tae.missing)


def test_costume_state_failed_and_partial(cli, origin, tmp_path):
    c = costume(origin)
    fid = origin.fault(path=c.files[TEX], kind="status", status=503)
    assert cli("pull", NAME, "--to", tmp_path / "out").returncode == 5
    j = json_lines(cli("status", "--json", NAME).stdout)[0]
    assert j["state"] == "failed" and j["files_failed"] == 1, j
    assert fields(cli("status", NAME).stdout)["state"] == "failed"
    origin.clear_fault(fid)
    assert cli("retry", NAME).returncode == 0
    assert json_lines(cli("status", "--json", NAME).stdout)[0]["state"] == "completed"
    # One file of another costume cached: partial.
    other = costume(origin, "037_live_default")
    assert cli("status", "%s/%s" % (other.name, TEX)).returncode == 1
    assert cli("pull", other.name, "--to", tmp_path / "o2").returncode == 0
    os.unlink(cache_path(cli.cache, other.files[TEX]))
    assert cli("verify", "--repair").returncode in (0, 5)
    j = json_lines(cli("status", "--json", other.name).stdout)[0]
    assert j["state"] == "partial" and j["files_done"] == j["files_total"] - 1, j


def test_costume_state_attribute(cli, mount, origin):
    m = mount(cache_dir=cli.cache, opts={"prefetch": "off"})
    c = costume(origin)
    assert os.getxattr(c.flat(m), "user.l2dfs.state") == b"pending"
    assert "user.l2dfs.state" in os.listxattr(c.flat(m))
    with open(c.flat(m, TEX), "rb") as f:
        f.read()
    # Readers are served before the commit (DESIGN §9): the state follows.
    assert wait_for(lambda: os.getxattr(c.path(m), "user.l2dfs.state") == b"partial", 10)
    for rel in c.files:
        with open(c.flat(m, rel), "rb") as f:
            f.read()
    # Readers are served before the commit (DESIGN §9): the state follows.
    assert wait_for(lambda: os.getxattr(c.flat(m), "user.l2dfs.state") == b"completed", 10)
    assert json_lines(cli("status", "--json", c.flat(m)).stdout)[0]["state"] == "completed"
    winter = costume(origin, "036_school_winter-2023")
    for rel in winter.files:
        with open(winter.flat(m, rel), "rb") as f:
            f.read()
    assert wait_for(lambda: getfattr(winter.flat(m))["user.l2dfs.state"] == "completed", 10)
    d = getfattr(winter.flat(m))
    assert d["user.l2dfs.state"] == "completed", d
    assert d["user.l2dfs.files_done"] == d["user.l2dfs.files_total"] == str(len(winter.files))


def test_a_retry_beside_the_mount_reaches_its_model_json(cli, mount, origin):
    """model.json leaves out a file missing at the origin; once `l2dfs retry`
    (another process) brings it, the mount lists it again."""
    c = costume(origin)
    fid = origin.fault(path=c.files[TEX] + "$", kind="html")
    m = mount(cache_dir=cli.cache, opts={"prefetch": "off"})
    path = c.path(m, "model.json")
    assert TEX not in json.loads(open(path, "rb").read())["textures"]
    assert TEX not in json.loads(open(path, "rb").read())["textures"]
    origin.clear_fault(fid)
    r = cli("retry", NAME)
    assert r.returncode == 0 and "ok" in r.stdout, r.stdout + r.stderr
    assert json.loads(open(path, "rb").read()) == c.model_json
