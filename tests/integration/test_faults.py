"""Every fault the origin can commit, one at a time: the reader gets the right
bytes or the right errno in bounded time, the log and the index say what
happened, the cache never keeps a partial or wrong byte, and the next access
after the fault clears succeeds."""

import errno
import json
import os
import re
import shutil
import ssl
import stat
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from helpers import TEX0 as TEX, TEX1, costume, file_row, errname, read_file as read_bytes, sha256, timed, wait_for
from soundness import assert_sound, temps, wrong_bytes

NO_PREFETCH = {"prefetch": "off"}
RETRIES = 3  # the default: every failing answer is asked retries + 1 times
ZH = ["户山 香澄", "花园 多惠", "高松 灯", "千早 爱音"]


def report(kind, saw, seconds, lost):
    """One row of the fault table (pytest -rA shows it)."""
    print("FAULT | %-34s | %-28s | %6.2f s | %d bytes lost" % (kind, saw, seconds, lost))


def prepared(mount, origin, **opts):
    """A mount whose texture size is known: what follows is its GET alone."""
    m = mount(opts=dict(NO_PREFETCH, **opts))
    c = costume(origin)
    os.stat(c.path(m, TEX))
    return m, c


def tex_row(m, c):
    return file_row(m, c, TEX)


def recovers(m, c, origin, within=10):
    """Seconds until a read of the texture gives the origin's bytes."""
    want, t0 = origin.expected(c.files[TEX]), time.monotonic()
    ok = wait_for(lambda: timed(read_bytes, c.path(m, TEX))[1] == want, within, 0.1)
    assert ok, "no recovery after the fault cleared:\n" + m.log_text()[-3000:]
    return time.monotonic() - t0


# ---- one bad answer, then good ones: the right bytes after a retry ----

FIRST_ANSWER = {
    "500": dict(kind="status", status=500),
    "502": dict(kind="status", status=502),
    "503": dict(kind="status", status=503),
    "504": dict(kind="status", status=504),
    "429": dict(kind="status", status=429),
    "429 Retry-After: 1": dict(kind="status", status=429, retry_after=1),
    "reset mid-body": dict(kind="reset"),
    "body shorter than Content-Length": dict(kind="short"),
    "body longer than Content-Length": dict(kind="long"),
    "stall (headers, then silence)": dict(kind="stall", seconds=4),
    "accepts, never answers": dict(kind="hang", seconds=6),
    "redirect within the origin": dict(kind="redirect"),
}


@pytest.mark.parametrize("name", list(FIRST_ANSWER))
def test_first_answer_bad_then_good(mount, origin, name):
    m, c = prepared(mount, origin, timeout=2)
    url = c.files[TEX]
    spec = dict(FIRST_ANSWER[name])
    if spec["kind"] == "redirect":
        spec["location"] = origin.assets + url[len("/assets"):]
    origin.fault(path=re.escape(url) + "$", method="GET", count=1, **spec)
    err, data, secs = timed(read_bytes, c.path(m, TEX))
    want = origin.expected(url)
    assert err == 0 and data == want
    # One more request after the bad one, except where the bad one held the
    # whole body (the excess past Content-Length is dropped).
    assert origin.count("GET", url) == (1 if spec["kind"] == "long" else 2)
    if "retry_after" in spec:
        assert secs >= 1.0
    if spec["kind"] in ("stall", "hang"):
        assert 1.5 <= secs < 2 + 3
    # Served before its commit (DESIGN §9): the row follows.
    assert wait_for(lambda: tex_row(m, c)["state"] == "completed", 10)
    row = tex_row(m, c)
    assert row["sha256"] == sha256(want) and row["size"] == len(want)
    assert read_bytes(c.cache_file(m.cache, TEX)) == want
    lost, what = wrong_bytes(m.cache, origin)
    assert lost == 0, what
    report(name + " (first answer)", "right bytes", secs, lost)


# ---- every answer bad: EIO after retries + 1 attempts, nothing kept ----

EVERY_ANSWER = {
    "500": (dict(kind="status", status=500), "HTTP 500"),
    "502": (dict(kind="status", status=502), "HTTP 502"),
    "503": (dict(kind="status", status=503), "HTTP 503"),
    "504": (dict(kind="status", status=504), "HTTP 504"),
    "429": (dict(kind="status", status=429), "HTTP 429"),
    "429 Retry-After: 1": (dict(kind="status", status=429, retry_after=1), "HTTP 429"),
    "reset mid-body": (dict(kind="reset"), "reset"),
    "body shorter than Content-Length": (dict(kind="short"), "shorter"),
}


@pytest.mark.parametrize("name", list(EVERY_ANSWER))
def test_every_answer_bad(mount, origin, name):
    spec, words = EVERY_ANSWER[name]
    m, c = prepared(mount, origin)
    url = c.files[TEX]
    fid = origin.fault(path=re.escape(url) + "$", method="GET", **spec)
    err, _, secs = timed(read_bytes, c.path(m, TEX))
    assert err == errno.EIO
    gets = origin.count("GET", url)
    assert gets == RETRIES + 1
    if "retry_after" in spec:
        assert secs >= RETRIES * 1.0
    assert secs < 10
    row = tex_row(m, c)
    assert row["state"] == "failed" and row["err"] == errno.EIO and words in row["error"], row
    assert url in row["url"]
    assert re.search(r"texture_00\.png: download failed: .*%s" % re.escape(words), m.log_text())
    assert not os.path.exists(c.cache_file(m.cache, TEX)) and temps(m.cache) == []
    lost, what = wrong_bytes(m.cache, origin)
    assert lost == 0, what
    report(name + " (every answer)", "EIO after %d GETs" % gets, secs, lost)
    origin.clear_fault(fid)
    report(name + " (cleared)", "right bytes", recovers(m, c, origin), 0)
    assert_sound(m.cache, origin)


def test_body_longer_than_content_length_every_answer(mount, origin):
    m, c = prepared(mount, origin)
    url = c.files[TEX]
    origin.fault(path=re.escape(url) + "$", method="GET", kind="long")
    err, data, secs = timed(read_bytes, c.path(m, TEX))
    assert err == 0 and data == origin.expected(url)
    assert_sound(m.cache, origin)
    report("body longer than Content-Length (every)", "right bytes (excess dropped)", secs, 0)


@pytest.mark.parametrize("kind", ["stall", "hang"])
def test_silent_origin_times_out(mount, origin, kind):
    """timeout=2, retries=1: EIO within (1 + retries) * timeout and a little."""
    m, c = prepared(mount, origin, timeout=2, retries=1)
    url = c.files[TEX]
    fid = origin.fault(path=re.escape(url) + "$", method="GET", kind=kind, seconds=30)
    err, _, secs = timed(read_bytes, c.path(m, TEX))
    assert err == errno.EIO
    assert 2 * 2 <= secs < 2 * 2 + 2
    assert origin.count("GET", url) == 2
    row = tex_row(m, c)
    assert row["state"] == "failed" and "timed out" in row["error"] or "no data" in row["error"], row
    assert not os.path.exists(c.cache_file(m.cache, TEX)) and temps(m.cache) == []
    report({"stall": "stall after headers", "hang": "accepts, never answers"}[kind] + " (every)",
           "EIO (timeout=2, retries=1)", secs, 0)
    origin.clear_fault(fid)
    report(kind + " (cleared)", "right bytes", recovers(m, c, origin), 0)
    assert_sound(m.cache, origin)


def test_stall_reason_names_the_timeout(mount, origin):
    m, c = prepared(mount, origin, timeout=2, retries=0)
    origin.fault(path=re.escape(c.files[TEX]) + "$", method="GET", kind="stall", seconds=30)
    assert timed(read_bytes, c.path(m, TEX))[0] == errno.EIO
    assert "no data for 2 s" in tex_row(m, c)["error"]


def test_one_broken_file_does_not_take_the_origin_down(mount, origin):
    m, c = prepared(mount, origin)
    other = TEX1
    os.stat(c.path(m, other))
    origin.fault(path=re.escape(c.files[TEX]) + "$", method="GET", kind="reset")
    assert timed(read_bytes, c.path(m, TEX))[0] == errno.EIO
    err, data, _ = timed(read_bytes, c.path(m, other))
    assert err == 0 and data == origin.expected(c.files[other])


def test_html_page_with_status_200(mount, origin):
    """The site's "not found" page is an answer: ENOENT, asked once, kept
    out of the cache; trusted for a while, then asked again."""
    m, c = prepared(mount, origin)
    url = c.files[TEX]
    fid = origin.fault(path=re.escape(url) + "$", method="GET", kind="html")
    err, _, secs = timed(read_bytes, c.path(m, TEX))
    assert err == errno.ENOENT
    assert origin.count("GET", url) == 1
    row = tex_row(m, c)
    assert row["state"] == "failed" and row["err"] == errno.ENOENT and "HTML" in row["error"], row
    assert "texture_00.png: not on the origin" in m.log_text()
    assert not os.path.exists(c.cache_file(m.cache, TEX)) and temps(m.cache) == []
    report("HTML page, status 200", "ENOENT after 1 GET", secs, 0)
    origin.clear_fault(fid)
    m.unmount()
    # Ten minutes later (the clock moved by the test) it is asked again.
    m2 = mount(cache_dir=m.cache, opts=NO_PREFETCH, env={"L2DFS_TIME_OFFSET": "700"})
    assert timed(read_bytes, c.path(m2, TEX))[1] == origin.expected(url)
    assert_sound(m.cache, origin)


def test_redirect_loop(mount, origin):
    m, c = prepared(mount, origin)
    url = c.files[TEX]
    fid = origin.fault(path=re.escape(url) + "$", method="GET", kind="redirect",
                       location=origin.assets + url[len("/assets"):])
    err, _, secs = timed(read_bytes, c.path(m, TEX))
    assert err == errno.EIO and secs < 5
    assert 2 <= origin.count("GET", url) <= 11
    row = tex_row(m, c)
    assert row["state"] == "failed" and "redirect" in row["error"], row
    assert temps(m.cache) == [] and not os.path.exists(c.cache_file(m.cache, TEX))
    report("redirect loop", "EIO after %d GETs" % origin.count("GET", url), secs, 0)
    origin.clear_fault(fid)
    recovers(m, c, origin)
    assert_sound(m.cache, origin)


def test_redirect_to_another_host_is_not_followed(mount, origin, make_origin):
    other = make_origin()
    m, c = prepared(mount, origin)
    url = c.files[TEX]
    fid = origin.fault(path=re.escape(url) + "$", method="GET", kind="redirect",
                       location=other.assets + url[len("/assets"):])
    err, _, secs = timed(read_bytes, c.path(m, TEX))
    assert err == errno.EIO
    assert other.stats()["total"] == 0
    row = tex_row(m, c)
    assert row["state"] == "failed" and "redirect to 127.0.0.1:%d refused" % other.port in row["error"], row
    assert "refused" in m.log_text()
    assert temps(m.cache) == [] and not os.path.exists(c.cache_file(m.cache, TEX))
    report("redirect to another host", "EIO, not followed", secs, 0)
    origin.clear_fault(fid)
    recovers(m, c, origin)
    assert_sound(m.cache, origin)


def test_max_file_size(mount, origin):
    m, c = prepared(mount, origin, max_file_size="100K")
    url = c.files[TEX]
    err, _, secs = timed(read_bytes, c.path(m, TEX))
    assert err == errno.EFBIG  # DESIGN §7: over max_file_size is EFBIG
    row = tex_row(m, c)
    assert row["state"] == "failed" and row["err"] == errno.EFBIG and "limit" in row["error"], row
    assert "texture_00.png: download failed" in m.log_text()
    assert origin.count("GET", url) == 1
    assert not os.path.exists(c.cache_file(m.cache, TEX)) and temps(m.cache) == []
    small = next(r for r in c.files if r.startswith("motions/"))
    assert read_bytes(c.path(m, small)) == origin.expected(c.files[small])
    assert_sound(m.cache, origin)
    report("asset over max_file_size=100K", errname(err), secs, 0)


def test_origin_down(mount, origin):
    """Cached files and the cached catalogue keep working; uncached reads
    fail, and after the first failures each one fails well under a second."""
    m = mount(opts=NO_PREFETCH)
    c = costume(origin)
    cached = {rel: read_bytes(c.path(m, rel)) for rel in (TEX, c.model_json["model"])}
    uncached = [r for r in sorted(c.files) if r.startswith(("motions/", "expressions/"))]
    other = costume(origin, "001_casual-2023")
    origin.stop()
    for rel, data in cached.items():
        assert read_bytes(c.path(m, rel)) == data
    assert sorted(os.listdir(m["characters"])) == sorted(ZH)
    times = []
    for rel in uncached[:6]:
        err, _, secs = timed(read_bytes, c.path(m, rel))
        assert err == errno.EIO
        times.append(secs)
    assert times[0] < 10
    assert max(times[2:]) < 0.5, times
    # A costume never opened: its listing needs the origin.
    assert timed(os.listdir, other.path(m))[0] == errno.EIO
    report("origin down (fixture stopped)", "cached: right bytes; else EIO", max(times[2:]), 0)
    assert "unreachable" in m.log_text() or "refused" in m.log_text()
    origin.start()
    rel = uncached[0]
    assert wait_for(lambda: timed(read_bytes, c.path(m, rel))[0] == 0, 70, 0.2)
    assert read_bytes(c.path(m, rel)) == origin.expected(c.files[rel])
    assert_sound(m.cache, origin)


# ---- broken documents: EIO on what needed them, a log line, the rest works ----

ROSTER = "/api/characters/all.2.json"
ASSET_INDEX = "/api/explorer/jp/assets/_info.json"
COSTUME_INDEX = "/api/costumes/all.5.json"
BUILD_NAME = "036_casual-2023"
BUILD = "/assets/jp/live2d/chara/%s_rip/buildData.asset" % BUILD_NAME
HUGE = 50 << 20  # the library takes documents of up to 16 MiB


def nested(depth):
    return '{"Base": ' + '{"a": ' * depth + "1" + "}" * (depth + 1)


def broken(origin, path, how):
    """Make the origin serve path broken in the way named; the fault's id or None."""
    good = origin.expected(path).decode()
    raw = {"malformed": good[:-1] + ",,}", "truncated": good[:len(good) // 2], "empty": "",
           "nested": nested(100000), "wrong root type": "[%s]" % good}.get(how)
    if how == "huge":
        return origin.fault(path=re.escape(path) + "$", kind="size", size=HUGE)
    if raw is None:
        raise ValueError(how)
    origin.document(path, raw=raw)
    return None


def repair(origin, path, fid):
    if fid is None:
        origin.document(path, clear=True)
    else:
        origin.clear_fault(fid)


DOC_FAULTS = ["malformed", "truncated", "empty", "huge", "nested", "wrong root type"]


@pytest.mark.parametrize("how", DOC_FAULTS)
@pytest.mark.parametrize("path", [ROSTER, ASSET_INDEX, COSTUME_INDEX])
def test_broken_catalogue_document(mount, origin, path, how):
    fid = broken(origin, path, how)
    m = mount(opts=NO_PREFETCH)
    err, _, secs = timed(os.listdir, m["characters"])
    assert err == errno.EIO and secs < 5
    assert timed(os.listdir, m["costumes"])[0] == errno.EIO
    log = m.log_text()
    assert "catalogue" in log or path in log, log[-2000:]
    assert m.alive()
    report("%s %s" % (os.path.basename(path), how), "EIO", secs, 0)
    repair(origin, path, fid)
    names = wait_for(lambda: timed(os.listdir, m["characters"])[1], 10, 0.2)
    assert sorted(names or []) == sorted(ZH)
    c = costume(origin)
    assert read_bytes(c.path(m, TEX)) == origin.expected(c.files[TEX])
    assert_sound(m.cache, origin)


@pytest.mark.parametrize("how", DOC_FAULTS + ["model not an object", "textures not a list",
                                              "Base not an object"])
def test_broken_buildData(mount, origin, how):
    doc = json.loads(origin.expected(BUILD))
    fid = None
    if how == "model not an object":
        doc["Base"]["model"] = 5
    elif how == "textures not a list":
        doc["Base"]["textures"] = "texture_00.png"
    elif how == "Base not an object":
        doc["Base"] = [doc["Base"]]
    else:
        fid = broken(origin, BUILD, how)
    if fid is None and how not in DOC_FAULTS:
        origin.build_data(BUILD_NAME, raw=json.dumps(doc), server="jp")
    m = mount(opts=NO_PREFETCH)
    bad = os.path.join(m["costumes"], BUILD_NAME)
    err, names, secs = timed(os.listdir, bad)
    if how == "textures not a list":
        # Only that list is dropped (logged); the rest of the costume is served.
        assert err == 0 and "textures" not in names and "motions" in names
        assert re.search(r"%s: left out textures" % BUILD_NAME, m.log_text())
        c = costume(origin, BUILD_NAME)
        assert read_bytes(c.path(m, c.model_json["model"])) == origin.expected(c.files[c.model_json["model"]])
        report("buildData " + how, "costume without textures", secs, 0)
        return
    assert err == errno.EIO and secs < 5
    assert BUILD_NAME in m.log_text()
    good = costume(origin)
    assert read_bytes(good.path(m, TEX)) == origin.expected(good.files[TEX])
    assert m.alive()
    report("buildData " + how, "EIO on that costume", secs, 0)
    repair(origin, BUILD, fid)
    c = costume(origin, BUILD_NAME)
    names = wait_for(lambda: timed(os.listdir, bad)[1], 10, 0.2)
    assert "model.json" in (names or [])
    assert json.loads(read_bytes(c.path(m, "model.json"))) == c.model_json
    assert_sound(m.cache, origin)


def test_wrong_types_in_catalogue_entries(mount, origin):
    """A wrong type inside one entry drops that entry (logged), not the catalogue."""
    roster = json.loads(origin.expected(ROSTER))
    roster["2"]["characterName"] = 5
    origin.document(ROSTER, json=roster)
    info = json.loads(origin.expected(ASSET_INDEX))
    info["live2d"]["chara"]["001_casual-2023"] = {"count": "many"}
    origin.document(ASSET_INDEX, json=info)
    costumes = json.loads(origin.expected(COSTUME_INDEX))
    cid = next(k for k, v in costumes.items() if v["assetBundleName"] == "036_casual-2023")
    costumes[cid]["description"] = "not a list"
    origin.document(COSTUME_INDEX, json=costumes)
    m = mount(opts=NO_PREFETCH)
    names = os.listdir(m["characters"])
    assert "高松 灯" in names and "户山 香澄" in names
    assert "left out" in m.log_text()
    c = costume(origin)
    assert read_bytes(c.path(m, TEX)) == origin.expected(c.files[TEX])
    assert m.alive()


# ---- hostile names: never a path outside the cache, the rest served ----

def outside_entries(tmp_path, cache):
    """Files under the test's folder that are neither the cache's nor the
    test's own (mount points, logs, origins)."""
    stray = []
    for d, dirs, files in os.walk(str(tmp_path)):
        if d.startswith(str(cache)) or "/origin" in d:
            dirs[:] = []
            continue
        dirs[:] = [x for x in dirs if not x.startswith(("mnt", "copy"))]
        stray += [os.path.join(d, n) for n in files if not n.endswith(".log")]
    return stray


def test_hostile_names_in_buildData(mount, origin, tmp_path):
    own = "live2d/chara/" + BUILD_NAME
    good = costume(origin, BUILD_NAME).files
    doc = json.loads(origin.expected(BUILD))
    base = doc["Base"]
    good_motion = base["motions"][0]
    hostile = [("motions", own, "../evil1.mtn.bytes"), ("motions", own, "..\\evil2.mtn.bytes"),
               ("textures", own, "/tmp/evil3.png"), ("textures", own, "sub/../../evil4.png"),
               ("textures", "live2d/chara/../../../../../../evil5", "texture_09.png"),
               ("textures", "/abs/evil6", "texture_09.png"),
               ("expressions", own, "evil7\u0001.exp.json"), ("expressions", own, "evil8\u007f.exp.json"),
               ("motions", own, "evil9" + "x" * 4096 + ".mtn.bytes"),
               ("motions", own, ".tmp.evil10"), ("expressions", own, "."), ("expressions", own, "..")]
    for field, bundle, name in hostile:
        base[field].append({"bundleName": bundle, "fileName": name})
    # Entries that land on one path once ".bytes" is dropped: the first wins.
    base["motions"].append({"bundleName": good_motion["bundleName"],
                            "fileName": good_motion["fileName"][:-len(".bytes")]})
    base["motions"] += [dict(good_motion) for _ in range(1000)]
    origin.build_data(BUILD_NAME, json=doc)
    m = mount(opts=NO_PREFETCH)
    c = costume(origin, BUILD_NAME)
    t0 = time.monotonic()
    for sub in ("textures", "motions", "expressions"):
        want = sorted({r.split("/", 1)[1] for r in good if r.startswith(sub + "/")})
        assert sorted(os.listdir(c.path(m, sub))) == want
    copy = tmp_path / "copy"
    r = subprocess.run(["cp", "-r", c.path(m), str(copy)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    for rel, url in good.items():
        assert read_bytes(copy / rel) == origin.expected(url)
    assert "evil" not in read_bytes(c.path(m, "model.json")).decode()
    assert [k for k in origin.requests() if "evil" in k] == []
    assert outside_entries(tmp_path, m.cache) == []
    assert [p for p in wrong_bytes(m.cache, origin)[1]] == []
    for f in cached_names(m.cache):
        assert "evil" not in f
    log = m.log_text()
    for word in ("evil1", "evil2", "evil3", "evil4", "evil5", "evil6", "evil9", "same path"):
        assert word in log, word
    report("hostile names in buildData", "left out, costume served", time.monotonic() - t0, 0)


def test_nul_byte_in_names(mount, origin):
    """"a\\u0000b" must be left out, not become the name "a"."""
    doc = json.loads(origin.expected(BUILD))
    doc["Base"]["motions"].append({"bundleName": "live2d/chara/" + BUILD_NAME, "fileName": "nul\u0000x.mtn.bytes"})
    origin.build_data(BUILD_NAME, json=doc)
    info = json.loads(origin.expected(ASSET_INDEX))
    info["live2d"]["chara"]["036_nul\u0000x"] = 5
    origin.document(ASSET_INDEX, json=info)
    m = mount(opts=NO_PREFETCH)
    assert not [n for n in os.listdir(m["costumes"]) if n.startswith("036_nul")]
    names = os.listdir(os.path.join(m["costumes"], BUILD_NAME, "motions"))
    assert not [n for n in names if n.startswith("nul")]


def cached_names(cache):
    out = []
    for d, dirs, files in os.walk(str(cache)):
        out += dirs + files
    return out


def test_many_distinct_entries_in_buildData(mount, origin):
    """100,000 entries: more files than any costume has. Refused with a clear
    reason before it is parsed or any file probed, and not asked again."""
    own = "live2d/chara/" + BUILD_NAME
    doc = json.loads(origin.expected(BUILD))
    doc["Base"]["motions"] = [{"bundleName": own, "fileName": "m%06d.mtn.bytes" % i} for i in range(100000)]
    origin.build_data(BUILD_NAME, raw=json.dumps(doc))  # served as is: no file made per entry
    m = mount(opts=NO_PREFETCH)
    folder = os.path.join(m["costumes"], BUILD_NAME)
    errs = []
    for _ in range(3):
        errs.append(timed(os.listdir, folder, timeout=60)[0])
        errs.append(timed(os.stat, os.path.join(folder, "model.json"), timeout=60)[0])
    assert errs == [errno.EIO] * 6
    assert origin.count("GET", BUILD) == 1
    assert [k for k in origin.requests() if k.startswith("HEAD")] == []
    assert re.search(r"buildData lists 1000\d\d files, more than any costume has \(2000\): refused",
                     m.log_text())
    assert "model.json" in os.listdir(costume(origin).path(m))  # others are unaffected
    assert m.alive()


def test_hostile_names_in_the_catalogue(mount, origin, tmp_path):
    info = json.loads(origin.expected(ASSET_INDEX))
    chara = info["live2d"]["chara"]
    hostile = ["../evil1", "/evil2", "036_evil3\\x", "036_evil4\u0001", "036_evil5" + "x" * 4096, "..", ".",
               "036_evil6/../../x", ""]
    for n in hostile:
        chara[n] = 5
    for i in range(100000):
        chara["036_bulk%06d" % i] = 3
    origin.document(ASSET_INDEX, json=info)
    costumes = json.loads(origin.expected(COSTUME_INDEX))
    costumes["90001"] = {"characterId": 36, "assetBundleName": "../../evil8",
                         "description": ["../a/b", "\u0001", None, "x" * 5000, None]}
    origin.document(COSTUME_INDEX, json=costumes)
    roster = json.loads(origin.expected(ROSTER))
    roster["1"]["characterName"] = ["..", "a/b", "\u0001", "x" * 5000, None]
    origin.document(ROSTER, json=roster)
    m = mount(opts=NO_PREFETCH)
    err, names, secs = timed(os.listdir, m["costumes"], timeout=60)
    assert err == 0
    assert not [n for n in names if "evil" in n or "/" in n or n in (".", "..", "")]
    assert sum(n.startswith("036_bulk") for n in names) == 100000
    chars = os.listdir(m["characters"])
    assert all("/" not in n and n not in (".", "..") and "\u0001" not in n for n in chars)
    assert len(chars) == 4
    c = costume(origin)
    assert read_bytes(c.path(m, TEX)) == origin.expected(c.files[TEX])
    assert [k for k in origin.requests() if "evil" in k] == []
    assert outside_entries(tmp_path, m.cache) == []
    assert "left out" in m.log_text()
    report("hostile names + 100,000 bundles in catalogue", "left out, rest listed", secs, 0)


# ---- security ----

def super_options(path):
    want = os.path.realpath(path).encode()
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            left, _, right = line.partition(b" - ")
            if left.split(b" ")[4] == want:
                return right.split()[2].decode().split(",")
    raise AssertionError("%s is not mounted" % path)


def test_kernel_checks_modes(mount, origin):
    """Without the kernel's ACL support the mount takes default_permissions:
    the kernel still checks the 0444/0555 modes (no file runs, not even as
    root)."""
    m = mount(opts=NO_PREFETCH)
    c = costume(origin)
    assert "default_permissions" in super_options(m.path)
    assert os.access(c.path(m, "model.json"), os.R_OK)
    assert not os.access(c.path(m, "model.json"), os.X_OK)
    assert os.access(c.path(m), os.X_OK)


def test_not_allow_other_unless_asked(mount):
    m = mount(opts=NO_PREFETCH)
    assert "allow_other" not in super_options(m.path)
    m2 = mount(opts=dict(NO_PREFETCH, allow_other=True))
    assert "allow_other" in super_options(m2.path)


def test_cache_root_is_private(mount, origin):
    m = mount(opts=NO_PREFETCH)
    c = costume(origin)
    read_bytes(c.path(m, TEX))
    assert stat.S_IMODE(os.stat(m.cache).st_mode) == 0o700
    d = os.path.dirname(c.cache_file(m.cache, TEX))
    while d != m.cache:
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o700, d
        d = os.path.dirname(d)


def test_planted_symlinks_are_never_followed(mount, origin, tmp_path):
    m = mount(opts=NO_PREFETCH)
    c = costume(origin)
    want = read_bytes(c.path(m, TEX))
    tex1 = TEX1
    m.unmount()
    outside = tmp_path / "outside"
    outside.mkdir()
    decoy = b"x" * len(want)
    (outside / "texture_00.png").write_bytes(decoy)
    # The bundle's folder swapped for a symlink to a folder outside the cache.
    folder = os.path.dirname(c.cache_file(m.cache, TEX))
    shutil.rmtree(folder)
    os.symlink(str(outside), folder)
    m2 = mount(cache_dir=m.cache, opts=NO_PREFETCH)
    for rel in (TEX, tex1):
        err, data, _ = timed(read_bytes, c.path(m2, rel))
        assert err == errno.EIO and data is None, (rel, err)
    assert sorted(os.listdir(outside)) == ["texture_00.png"]
    assert (outside / "texture_00.png").read_bytes() == decoy
    assert "texture_01.png: " in m2.log_text()
    m2.unmount()
    # A cached file swapped for a symlink to one of the same size.
    os.unlink(folder)
    os.makedirs(folder)
    m3 = mount(cache_dir=m.cache, opts=NO_PREFETCH)
    assert read_bytes(c.path(m3, TEX)) == want
    m3.unmount()
    os.unlink(c.cache_file(m.cache, TEX))
    os.symlink(str(outside / "texture_00.png"), c.cache_file(m.cache, TEX))
    m4 = mount(cache_dir=m.cache, opts=NO_PREFETCH)
    assert read_bytes(c.path(m4, TEX)) == want
    assert (outside / "texture_00.png").read_bytes() == decoy
    assert not os.path.islink(c.cache_file(m.cache, TEX))
    assert_sound(m.cache, origin)


class _TLSProxy(BaseHTTPRequestHandler):
    """HTTPS in front of the fixture origin (which speaks plain HTTP)."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def relay(self, method):
        req = urllib.request.Request(self.server.upstream + self.path, method=method)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            r = opener.open(req, timeout=10)
        except urllib.error.HTTPError as e:
            r = e
        body = r.read()
        self.send_response(r.status if hasattr(r, "status") else r.code)
        self.send_header("Content-Type", r.headers.get("Content-Type", "application/octet-stream"))
        self.send_header("Content-Length", r.headers.get("Content-Length", str(len(body))))
        self.end_headers()
        if method == "GET":
            self.wfile.write(body)

    def do_GET(self):
        self.relay("GET")

    def do_HEAD(self):
        self.relay("HEAD")


@pytest.fixture
def tls_origin(origin, tmp_path):
    """An HTTPS origin with a self-signed certificate: its URL."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", str(key), "-out", str(cert)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("openssl cannot make a certificate: " + r.stderr)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TLSProxy)
    server.daemon_threads = True
    server.upstream = origin.url
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield "https://127.0.0.1:%d" % server.server_address[1]
    server.shutdown()
    server.server_close()


def test_tls_is_verified_unless_insecure(mount, origin, tls_origin):
    urls = {"api_url": tls_origin + "/api", "assets_url": tls_origin + "/assets"}
    m = mount(opts=dict(NO_PREFETCH, **urls))
    err, _, secs = timed(os.listdir, m["characters"])
    assert err == errno.EIO
    assert re.search(r"certificate|SSL", m.log_text())
    m2 = mount(opts=dict(NO_PREFETCH, insecure=True, **urls))
    assert sorted(os.listdir(m2["characters"])) == sorted(ZH)
    c = costume(origin)
    assert read_bytes(c.path(m2, TEX)) == origin.expected(c.files[TEX])
    report("self-signed TLS origin", "EIO without -o insecure", secs, 0)


def test_a_two_second_origin_outage_is_covered_by_the_retries(mount, origin, tmp_path):
    """The origin is killed in the middle of a cold copy and back 2 s later:
    the engine's retries (0.5 + 1 + 2 s here, as by default) cover the gap,
    also for requests that find the origin marked down; every file copies."""
    # With prefetch, many downloads are in flight when the origin goes:
    # their failures mark it down, which must not fail the rest at once.
    m = mount(opts={"retry_base_ms": "500"})
    c = costume(origin)
    os.listdir(c.path(m))
    origin.config(bandwidth=300000)  # a copy that lasts a few seconds
    cp = subprocess.Popen(["cp", "-r", c.path(m), str(tmp_path / "copy")],
                          stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: any(k.startswith("GET") and "_rip/" in k and "buildData" not in k
                                    for k in origin.requests()), 30)
        origin.proc.kill()
        origin.proc.wait()
        origin.stop()
        time.sleep(2)  # the outage itself
        origin.start()
        origin.config(bandwidth=300000)
        _, err = cp.communicate(timeout=120)
    finally:
        if cp.poll() is None:
            cp.kill()
            cp.wait()
    assert cp.returncode == 0, err
    for rel, url in c.files.items():
        assert read_bytes(tmp_path / "copy" / rel) == origin.expected(url), rel
