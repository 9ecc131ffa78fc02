"""The fixture origin itself: layout, determinism, knobs and faults."""

import concurrent.futures
import hashlib
import http.client
import json
import os
import signal
import socket
import struct
import sys
import time
import zlib
from pathlib import Path

import pytest

from helpers import FIXTURE_SERVER, Origin, costume, wait_for

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"
TEX = "/assets/jp/live2d/chara/036_live_event_307_ssr_rip/texture_00.png"
DOCS = ["/api/characters/all.2.json", "/api/explorer/jp/assets/_info.json", "/api/costumes/all.5.json"]


def get(origin, path, method="GET", timeout=10):
    status, headers, body = origin.request(method, path, timeout=timeout)
    return status, headers, body


def raw_get(origin, path, timeout=10):
    """GET over a plain socket: (head bytes, body bytes, how it ended)."""
    s = socket.create_connection(("127.0.0.1", origin.port), timeout=timeout)
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode())
    data, end = b"", "eof"
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        end = "reset"
    except socket.timeout:
        end = "timeout"
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return head, body, end


def content_length(head):
    for line in head.split(b"\r\n"):
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            return int(v)
    return None


def test_starts_fast_and_stops_cleanly(tmp_path):
    t0 = time.monotonic()
    o = Origin(tmp_path)
    assert time.monotonic() - t0 < 5.0  # well under a second on a quiet machine
    proc = o.proc
    o.stop()
    assert proc.returncode == 0


def test_catalogue_documents(origin):
    roster = json.loads(get(origin, DOCS[0])[2])
    assert roster["36"]["characterName"][3] == "高松 灯"
    assert roster["37"]["characterName"] == ["千早 愛音", "Anon Chihaya", "千早 愛音", "千早 爱音", None]
    assert {"1", "2", "36", "37"} <= set(roster)
    info = json.loads(get(origin, DOCS[1])[2])
    chara = info["live2d"]["chara"]
    assert "036_general" in chara and "036_live_event_307_ssr" in chara and "sound" in info
    assert all(isinstance(v, int) and v > 0 for v in chara.values())
    costumes = json.loads(get(origin, DOCS[2])[2])
    by_name = {c["assetBundleName"]: c for c in costumes.values()}
    assert by_name["036_live_event_307_ssr"]["characterId"] == 36
    assert len(by_name["036_live_event_307_ssr"]["description"]) == 5
    assert None in by_name["036_school_winter-2023"]["description"]
    assert "037_casual-2023" not in by_name and "037_casual-2023" in chara
    for server in ("en", "tw", "cn", "kr"):
        assert get(origin, "/api/explorer/%s/assets/_info.json" % server)[0] == 200


def test_every_costume_is_complete(origin):
    cat = origin.catalogue()
    assert sorted(cat["characters"]) == ["1", "2", "36", "37"]
    physics = {}
    for name in cat["costumes"]:
        c = costume(origin, name)
        rels = [f["rel"] for f in c.info["files"]]
        assert len(rels) == len(set(rels)), name
        assert [r for r in c.missing if not r.endswith(".physics.json")] == [], name
        assert any(r.endswith(".moc") for r in c.files) and any(r.startswith("textures/") for r in c.files)
        assert any(f["bundle"].endswith("_general") for f in c.info["files"] if f["field"] == "motions")
        for rel, url in c.files.items():
            body = get(origin, url)[2]
            assert body == origin.expected(url) and not body.startswith(b"<!doctype"), url
        physics[name] = "present" if "physics" in c.model_json else "missing" if c.missing else "absent"
    assert physics["001_casual-2023"] == "absent"
    assert physics["002_live_event_310_sr"] == "missing"
    assert physics["036_live_event_307_ssr"] == "present"
    assert costume(origin, "036_school_winter-2023").info["icon"] is None
    assert costume(origin, "037_casual-2023").info["icon"] is None
    tex = costume(origin, "036_dream_festival_3_ur").files["textures/texture_00.png"]
    assert "/036_general_rip/" in tex


def test_file_shapes(origin):
    c = costume(origin)
    assert c.model_json["model"] == "tomori_event307.moc"
    assert c.model_json["physics"] == "tomori_event307.physics.json"
    tex = get(origin, c.files["textures/texture_00.png"])[2]
    assert len(tex) == 256 * 1024
    assert tex[:8] == b"\x89PNG\r\n\x1a\n" and tex[12:16] == b"IHDR"
    assert struct.unpack(">I", tex[29:33])[0] == zlib.crc32(tex[12:29])
    assert tex[-12:] == b"\x00\x00\x00\x00IEND\xaeB`\x82"
    moc = get(origin, c.files["tomori_event307.moc"])[2]
    assert moc.startswith(b"moc") and 100_000 < len(moc) < 300_000
    for rel, url in c.files.items():
        if rel.startswith("motions/"):
            body = get(origin, url)[2]
            assert 2048 <= len(body) <= 16 * 1024 and body.decode().startswith("# Live2D")
        if rel.startswith("expressions/") or rel.endswith(".physics.json"):
            json.loads(get(origin, url)[2])
    assert get(origin, c.files["icon.png"])[2][:8] == b"\x89PNG\r\n\x1a\n"
    motions = c.model_json["motions"]
    assert motions["live"] == [{"name": "live01", "file": "motions/live01.mtn"},
                               {"name": "live02", "file": "motions/live02.mtn"}]
    assert {"name": "default.exp", "file": "expressions/default.exp.json"} in c.model_json["expressions"]


def test_deterministic_by_seed(make_origin):
    a, b, c = make_origin(), make_origin(), make_origin("--seed", "2")
    assert get(a, TEX)[2] == get(b, TEX)[2] != get(c, TEX)[2]
    mtn = "/assets/jp/live2d/chara/036_general_rip/idle01.mtn"
    assert get(a, mtn)[2] == get(b, mtn)[2]


def test_missing_is_an_html_page(origin):
    for path in ("/assets/jp/live2d/chara/036_live_event_307_ssr_rip/tomori_event307.moc.bytes",
                 "/assets/jp/live2d/chara/036_live_event_307_ssr_rip/nothing.png",
                 "/assets/jp/live2d/chara/999_nobody_rip/buildData.asset",
                 "/assets/jp/live2d/chara/002_live_event_310_sr_rip/tae_event310.physics.json",
                 "/api/characters/12345.json", "/api/nothing.json", "/elsewhere"):
        status, headers, body = get(origin, path)
        assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8", path
        assert body.startswith(b"<!doctype html>")
    with pytest.raises(KeyError):
        origin.expected("/api/nothing.json")


def test_head_and_keep_alive(origin):
    conn = http.client.HTTPConnection("127.0.0.1", origin.port, timeout=5)
    conn.request("HEAD", TEX)
    r = conn.getresponse()
    assert r.status == 200 and r.getheader("Content-Length") == str(256 * 1024) and r.read() == b""
    conn.request("GET", TEX)
    r = conn.getresponse()
    assert r.read() == origin.expected(TEX)
    conn.request("GET", DOCS[0])
    assert json.loads(conn.getresponse().read())
    conn.close()
    req = origin.requests()
    assert req["HEAD " + TEX] == 1 and req["GET " + TEX] == 1 and origin.stats()["total"] == 3


def test_stats_and_reset(origin):
    get(origin, TEX)
    get(origin, TEX)
    get(origin, TEX, "HEAD")
    origin.expected(TEX)
    assert origin.count("GET", TEX) == 2 and origin.count("HEAD", TEX) == 1
    assert origin.stats()["total"] == 3
    origin.fault(path="texture", kind="html")
    origin.reset()
    assert origin.stats() == {"requests": {}, "total": 0, "max_concurrent": 0, "in_flight": 0}
    assert get(origin, TEX)[2] == origin.expected(TEX)


def test_max_concurrent(origin):
    # Long enough for 8 threads to start on a busy machine.
    origin.config(latency_ms=2000)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: get(origin, TEX), range(8)))
    # A response is read before its server thread counts it ended.
    assert wait_for(lambda: origin.stats()["in_flight"] == 0, 10), origin.stats()
    st = origin.stats()
    assert st["max_concurrent"] == 8 and st["total"] == 8


def test_in_flight_stays_right_across_a_reset(origin):
    origin.fault(path="texture", kind="stall", seconds=1)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        done = [pool.submit(get, origin, TEX) for _ in range(4)]
        assert wait_for(lambda: origin.stats()["in_flight"] == 4, 10), origin.stats()
        origin.reset()
        seen = []
        while not all(f.done() for f in done):
            seen.append(origin.stats()["in_flight"])
        for f in done:
            assert f.result()[0] == 200
    # The requests begun before the reset end uncounted: never below 0.
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        seen.append(origin.stats()["in_flight"])
    assert min(seen) == 0 and max(seen) == 0, seen


def test_fault_status_count_and_method(origin):
    origin.fault(path="texture_00", kind="status", status=429, retry_after=1, count=1, method="GET")
    status, headers, _ = get(origin, TEX, "HEAD")
    assert status == 200
    status, headers, _ = get(origin, TEX)
    assert status == 429 and headers["Retry-After"] == "1"
    assert get(origin, TEX)[0] == 200
    fid = origin.fault(path=r"texture_0\d", kind="status", status=503)
    assert [get(origin, TEX)[0] for _ in range(3)] == [503] * 3
    origin.clear_fault(fid)
    assert get(origin, TEX)[0] == 200
    assert origin.count("GET", TEX) == 6


def test_fault_probability(origin):
    origin.fault(path="texture", kind="status", status=500, probability=0)
    assert get(origin, TEX)[0] == 200
    origin.fault(path="texture", kind="status", status=500, probability=1)
    assert get(origin, TEX)[0] == 500


def test_fault_bodies(origin):
    origin.fault(path="texture_00", kind="html", count=1)
    status, headers, body = get(origin, TEX)
    assert headers["Content-Type"].startswith("text/html") and body.startswith(b"<!doctype html>")
    origin.fault(path="buildData", kind="badjson", count=1)
    with pytest.raises(ValueError):
        json.loads(get(origin, "/assets/jp/live2d/chara/036_casual-2023_rip/buildData.asset")[2])
    origin.fault(path="texture_00", kind="body", body="hello", content_type="text/plain", count=1)
    status, headers, body = get(origin, TEX)
    assert body == b"hello" and headers["Content-Type"] == "text/plain"
    origin.fault(path="texture_00", kind="body", body_b64="AAEC", count=1)
    assert get(origin, TEX)[2] == b"\x00\x01\x02"
    origin.fault(path="texture_00", kind="size", size=3_000_000, count=1)
    body = get(origin, TEX)[2]
    assert len(body) == 3_000_000 and body != get(origin, TEX)[2]
    origin.fault(path="texture_00", kind="redirect", location="/api/costumes/all.5.json", count=1)
    conn = http.client.HTTPConnection("127.0.0.1", origin.port, timeout=5)
    conn.request("GET", TEX)
    r = conn.getresponse()
    assert r.status == 302 and r.getheader("Location") == "/api/costumes/all.5.json"
    conn.close()


def test_fault_reset_short_long(origin):
    full = origin.expected(TEX)
    origin.fault(path="texture_00", kind="reset", count=1)
    head, body, end = raw_get(origin, TEX)
    assert end == "reset" and len(body) < len(full)
    origin.fault(path="texture_00", kind="short", count=1)
    head, body, end = raw_get(origin, TEX)
    assert end == "eof" and content_length(head) == len(full) and body == full[:len(full) // 2]
    origin.fault(path="texture_00", kind="long", count=1)
    head, body, end = raw_get(origin, TEX)
    assert content_length(head) == len(full) and len(body) > len(full) and body.startswith(full)
    assert raw_get(origin, TEX)[1] == full


def test_fault_stall_hang_latency(origin):
    origin.fault(path="texture_00", kind="stall", seconds=0.5, count=1)
    t0 = time.monotonic()
    assert get(origin, TEX)[2] == origin.expected(TEX)
    assert time.monotonic() - t0 >= 0.5
    origin.fault(path="texture_00", kind="hang", seconds=20, count=1)
    t0 = time.monotonic()
    head, body, end = raw_get(origin, TEX, timeout=0.5)
    assert end == "timeout" and head == b"" and time.monotonic() - t0 < 10
    origin.fault(path="texture_00", kind="latency", ms=400, count=1)
    t0 = time.monotonic()
    get(origin, TEX)
    assert time.monotonic() - t0 >= 0.4


def test_bandwidth(origin):
    origin.config(bandwidth=200_000)
    t0 = time.monotonic()
    assert get(origin, TEX)[2] == origin.expected(TEX)
    slowed = time.monotonic() - t0
    assert slowed >= 1.2  # 256 KiB at 200 kB/s
    origin.config(bandwidth=0)
    t0 = time.monotonic()
    get(origin, TEX)
    assert time.monotonic() - t0 < slowed / 2


def test_overrides(origin):
    doc = {"Base": {"model": {"bundleName": "live2d/chara/036_casual-2023", "fileName": "new.moc.bytes"},
                    "textures": [{"bundleName": "live2d/chara/036_casual-2023", "fileName": "tex"}],
                    "motions": [], "expressions": []}}
    origin.build_data("036_casual-2023", json=doc)
    url = "/assets/jp/live2d/chara/036_casual-2023_rip/buildData.asset"
    assert json.loads(get(origin, url)[2]) == doc
    assert get(origin, "/assets/jp/live2d/chara/036_casual-2023_rip/new.moc")[2].startswith(b"moc")
    c = costume(origin, "036_casual-2023")
    assert c.files == {"new.moc": "/assets/jp/live2d/chara/036_casual-2023_rip/new.moc",
                       "textures/tex.png": "/assets/jp/live2d/chara/036_casual-2023_rip/tex",
                       "icon.png": "/assets/jp/thumb/costume/group35_rip/036_casual-2023.png"}
    origin.build_data("036_casual-2023", raw="{not json", server="jp")
    assert get(origin, url)[2] == b"{not json"
    assert json.loads(get(origin, url.replace("/jp/", "/en/"))[2]) == doc
    origin.document("/api/characters/all.2.json", raw="[1,")
    assert get(origin, "/api/characters/all.2.json")[2] == b"[1,"
    origin.document("/api/characters/all.2.json", missing=True)
    assert get(origin, "/api/characters/all.2.json")[2].startswith(b"<!doctype")
    origin.document("/api/characters/all.2.json", clear=True)
    assert "36" in json.loads(get(origin, "/api/characters/all.2.json")[2])


def conditional(origin, path, **headers):
    conn = http.client.HTTPConnection("127.0.0.1", origin.port, timeout=10)
    conn.request("GET", path, headers=headers)
    r = conn.getresponse()
    out = r.status, r.getheader("ETag"), r.getheader("Last-Modified"), r.read()
    conn.close()
    return out


def test_conditional_requests(origin):
    status, etag, modified, body = conditional(origin, TEX)
    assert status == 200 and etag == '"%s"' % hashlib.sha256(body).hexdigest() and modified
    assert conditional(origin, TEX, **{"If-None-Match": etag})[0::3] == (304, b"")
    assert conditional(origin, TEX, **{"If-Modified-Since": modified})[0] == 304
    assert conditional(origin, TEX, **{"If-None-Match": '"other"', "If-Modified-Since": modified})[0] == 200
    origin.document(TEX, raw="changed")
    status, etag2, modified2, body = conditional(origin, TEX, **{"If-None-Match": etag})
    assert (status, body) == (200, b"changed") and etag2 != etag
    assert conditional(origin, TEX, **{"If-Modified-Since": modified})[0] == 200
    assert conditional(origin, TEX, **{"If-Modified-Since": modified2})[0] == 304
    assert origin.count("GET", TEX) == 7


def test_restart_on_same_port(origin):
    port = origin.port
    origin.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1)
    origin.start()
    assert origin.port == port and get(origin, TEX)[0] == 200


def test_models_dir(make_origin, tmp_path):
    d = tmp_path / "models" / "shizuku"
    (d / "moc" / "tex").mkdir(parents=True)
    (d / "moc" / "shizuku.moc").write_bytes(b"moc\x0a" + os.urandom(100))
    (d / "moc" / "tex" / "texture_00.png").write_bytes(b"\x89PNG" + os.urandom(50))
    (d / "idle_00.mtn").write_text("# Live2D Animator Motion Data\n")
    (d / "f01.exp.json").write_text("{}")
    (d / "shizuku.physics.json").write_text("{}")
    (d / "shizuku.model.json").write_text(json.dumps({
        "model": "moc/shizuku.moc", "textures": ["moc/tex/texture_00.png"], "physics": "shizuku.physics.json",
        "motions": {"idle": [{"file": "idle_00.mtn"}]}, "expressions": [{"name": "f01", "file": "f01.exp.json"}]}))
    o = make_origin("--models-dir", str(tmp_path / "models"))
    info = json.loads(get(o, "/api/explorer/jp/assets/_info.json")[2])
    assert "036_shizuku" in info["live2d"]["chara"]
    c = costume(o, "036_shizuku")
    assert sorted(c.files) == ["expressions/f01.exp.json", "motions/idle_00.mtn", "shizuku.moc",
                               "shizuku.physics.json", "textures/texture_00.png"]
    assert get(o, c.files["shizuku.moc"])[2] == (d / "moc" / "shizuku.moc").read_bytes()
    assert c.model_json["motions"] == {"idle": [{"name": "idle_00", "file": "motions/idle_00.mtn"}]}


def test_samples_catalogue(make_origin):
    o = make_origin("--catalogue", "samples")
    assert get(o, "/api/characters/all.2.json")[2] == (SAMPLES / "api_characters_all.2.json").read_bytes()
    assert get(o, "/api/costumes/all.5.json")[2] == \
        (SAMPLES / "api_costumes_all.5.EXCERPT_ids_1837-1907.json").read_bytes()
    raw = (SAMPLES / "jp_live2d_chara_001_live_event_332_r_rip_buildData.asset.json").read_bytes()
    assert get(o, "/assets/jp/live2d/chara/001_live_event_332_r_rip/buildData.asset")[2] == raw
    c = costume(o, "001_live_event_332_r")
    assert not c.missing and "motions/nf_left01.mtn" in c.files
    assert get(o, c.files["motions/hukumi01.mtn"])[2].startswith(b"# Live2D")
    info = json.loads(get(o, "/api/explorer/jp/assets/_info.json")[2])
    assert len(info["live2d"]["chara"]) == 3639


def test_big_catalogue(make_origin):
    o = make_origin("--catalogue", "big", "--texture-size", "2000000")
    info = json.loads(get(o, "/api/explorer/jp/assets/_info.json")[2])
    assert len(info["live2d"]["chara"]) == 3639
    c = costume(o, "036_live_event_235_ur")
    assert len(get(o, c.files["textures/texture_00.png"])[2]) == 2_000_000
    assert len(json.loads(get(o, "/api/costumes/all.5.json")[2])) > 3000


def test_big_without_samples_says_why(tmp_path):
    import subprocess
    r = subprocess.run([sys.executable, str(FIXTURE_SERVER), "--catalogue", "big", "--samples-dir",
                        str(tmp_path)], capture_output=True, text=True, timeout=10)
    assert r.returncode != 0 and "samples" in r.stderr


def test_sigterm_with_a_request_in_flight(origin):
    origin.fault(path="texture", kind="hang", seconds=30)
    s = socket.create_connection(("127.0.0.1", origin.port))
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % TEX).encode())
    assert wait_for(lambda: origin.stats()["in_flight"] == 1, 30)
    t0 = time.monotonic()
    origin.proc.send_signal(signal.SIGTERM)
    assert origin.proc.wait(30) == 0 and time.monotonic() - t0 < 10  # not the 30 s hang
    s.close()
