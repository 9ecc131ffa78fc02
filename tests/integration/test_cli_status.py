"""`l2dfs status` and `l2dfs retry`, and the mount's status attributes."""

import json
import os
import subprocess

from helpers import TEX1 as TEX, costume, sha256
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
