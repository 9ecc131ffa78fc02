"""`l2dfs serve`: the tree, the origin's layout and the JSON API over HTTP."""

import gzip
import hashlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import threading
import urllib.parse

import pytest

from helpers import TEX1 as TEX, costume, reap, sanitizer_report, wait_for
from test_cli_helpers import Cli

NAME = "036_live_event_307_ssr"


class Server:
    """`l2dfs serve -o ... --listen 127.0.0.1:0 ARGS`, stopped with SIGTERM."""

    def __init__(self, binary, origin_api, origin_assets, cache, workdir, args=()):
        self.log_path = os.path.join(str(workdir), "serve%d.log" % id(self))
        opts = "api_url=%s,assets_url=%s,cache_dir=%s,retry_base_ms=20,log_level=debug" % (
            origin_api, origin_assets, cache)
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([binary, "serve", "-o", opts, "--listen", "127.0.0.1:0"] + list(args),
                                     stdout=self.log, stderr=subprocess.STDOUT, env=Cli.env())
        found = []

        def listening():
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)/", self.text())
            if m:
                found.append(int(m.group(1)))
            return found or self.proc.poll() is not None

        assert wait_for(listening, 30), self.text()
        assert found, "l2dfs serve exited:\n" + self.text()
        self.port = found[0]
        self.url = "http://127.0.0.1:%d" % self.port

    def text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def request(self, method, path, headers=None, body=None, timeout=30):
        """(status, headers as a dict with lower-case keys, body)."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            c.close()

    def json(self, method, path):
        status, _, body = self.request(method, path)
        return status, json.loads(body)

    def raw(self, data, timeout=10):
        """The status of a request sent byte for byte (0: closed without one)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            s.sendall(data)
            got = b""
            try:
                while b"\r\n" not in got:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    got += chunk
            except ConnectionResetError:
                pass
        m = re.match(rb"HTTP/1\.[01] (\d+)", got)
        return int(m.group(1)) if m else 0

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            reap(self.proc, 20)
        self.log.close()
        return self.proc.returncode


@pytest.fixture
def serve(l2dfs_bin, origin, tmp_path):
    """serve(origin=..., cache=..., args=[]) -> a running Server; all stopped at the end,
    each having exited 0 on SIGTERM with no sanitizer report."""
    started = []

    def make(o=None, cache=None, args=(), api=None, assets=None):
        o = o or origin
        s = Server(l2dfs_bin, api or o.api, assets or o.assets,
                   cache or str(tmp_path / ("scache%d" % len(started))), tmp_path, args)
        started.append(s)
        return s

    yield make
    problems = []
    for s in started:
        rc = s.stop()
        report = sanitizer_report(s.text())
        if rc != 0 or report:
            problems.append("l2dfs serve exited %s %s:\n%s" % (rc, report or "", s.text()[-4000:]))
    assert not problems, "\n".join(problems)


def test_files_with_range_etag_304_cors_and_gzip(serve, origin):
    c = costume(origin)
    s = serve()
    body = origin.expected(c.files[TEX])
    digest = hashlib.sha256(body).hexdigest()
    path = "/costumes/%s/%s" % (NAME, TEX)

    st, h, got = s.request("GET", path)
    assert st == 200 and got == body
    assert h["etag"] == '"%s"' % digest
    assert h["content-type"] == "image/png"
    assert "immutable" in h["cache-control"]
    assert h["access-control-allow-origin"] == "*"
    assert h["accept-ranges"] == "bytes" and "last-modified" in h
    # The same file under the character's folder.
    st, _, got2 = s.request("GET", "/characters/%s/%s/%s" % (urllib.parse.quote(c.character), NAME, TEX))
    assert st == 200 and got2 == body

    st, h, got = s.request("GET", path, {"Range": "bytes=10-19"})
    assert st == 206 and got == body[10:20]
    assert h["content-range"] == "bytes 10-19/%d" % len(body)
    st, h, got = s.request("GET", path, {"Range": "bytes=-7"})
    assert st == 206 and got == body[-7:]
    st, h, got = s.request("GET", path, {"Range": "bytes=%d-" % (len(body) + 5)})
    assert st == 416 and h["content-range"] == "bytes */%d" % len(body)
    st, _, got = s.request("GET", path, {"Range": "bytes=0-1", "If-Range": '"other"'})
    assert st == 200 and got == body

    st, h, got = s.request("GET", path, {"If-None-Match": '"%s"' % digest})
    assert st == 304 and got == b"" and h["etag"] == '"%s"' % digest
    st, _, _ = s.request("GET", path, {"If-None-Match": '"nope"'})
    assert st == 200
    st, _, _ = s.request("GET", path, {"If-Modified-Since": h["last-modified"]})
    assert st == 304
    st, _, _ = s.request("GET", path, {"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})
    assert st == 200

    st, h, got = s.request("HEAD", path)
    assert st == 200 and got == b"" and int(h["content-length"]) == len(body)

    # Generated files: short-lived, hashed, JSON gzipped on request.
    st, h, mj = s.request("GET", "/costumes/%s/model.json" % NAME)
    assert st == 200 and h["content-type"] == "application/json"
    assert json.loads(mj) == c.model_json
    assert h["etag"] == '"%s"' % hashlib.sha256(mj).hexdigest()
    assert "max-age=30" in h["cache-control"] and "immutable" not in h["cache-control"]
    st, h, z = s.request("GET", "/costumes/%s/model.json" % NAME, {"Accept-Encoding": "gzip"})
    assert st == 200 and h["content-encoding"] == "gzip" and gzip.decompress(z) == mj
    assert "accept-encoding" in h["vary"].lower()

    st, h, _ = s.request("OPTIONS", path, {"Origin": "http://viewer.example",
                                             "Access-Control-Request-Method": "GET",
                                             "Access-Control-Request-Headers": "range"})
    assert st == 204 and "GET" in h["access-control-allow-methods"]
    assert "range" in h["access-control-allow-headers"].lower()
    assert h["access-control-allow-origin"] == "*"

    # Folders list their entries.
    st, names = s.json("GET", "/costumes/%s/" % NAME)
    assert st == 200 and "model.json" in names and "textures" in names
    st, names = s.json("GET", "/costumes")
    assert NAME in names


def test_cors_is_configurable(serve, origin):
    costume(origin)
    s = serve(args=["--cors", "https://app.example"])
    st, h, _ = s.request("GET", "/costumes/%s/name.txt" % NAME)
    assert st == 200 and h["access-control-allow-origin"] == "https://app.example"
    s2 = serve(args=["--cors", "none"])
    st, h, _ = s2.request("GET", "/costumes/%s/name.txt" % NAME)
    assert st == 200 and "access-control-allow-origin" not in h


TRAVERSALS = [
    # (request target, status)
    ("/costumes/../../../etc/passwd", 400),
    ("/costumes/%2e%2e/%2e%2e/etc/passwd", 400),
    ("/costumes/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd", 400),
    ("/costumes/..%2f..%2findex.db", 400),
    ("/costumes/" + NAME + "/textures/../../../index.db", 400),
    ("/costumes/" + NAME + "/..%5c..%5cindex.db", 400),
    ("/costumes/" + NAME + "/%00", 400),
    ("/costumes/" + NAME + "/model.json%00.png", 400),
    ("/costumes/" + NAME + "/%0a", 400),
    ("/costumes/" + NAME + "/x%zz", 400),
    ("/costumes/" + NAME + "/x%4", 400),
    ("/costumes/%252e%252e/%252e%252e/index.db", 404),  # decoded once: a name, not ".."
    ("/costumes/%c0%ae%c0%ae/index.db", 404),            # overlong UTF-8 is no dot
    ("/costumes/./" + NAME + "/model.json", 400),
    ("/costumes//" + NAME, 400),
    ("/assets/jp/../../index.db", 400),
    ("/assets/jp/live2d/chara/%2e%2e_rip/buildData.asset", 404),
    ("/assets/jp/live2d/chara/../../../index.db_rip/x", 400),
    ("/assets/kr/live2d/chara/x_rip/buildData.asset", 404),
    ("/api/../index.db", 400),
    ("/api/characters/all.2.json/..", 400),
    ("/api/nothing.json", 404),
    ("/costumes/no_such_costume/model.json", 404),
    ("/characters/nobody/x/model.json", 404),
    ("/status/no_such_costume", 404),
    ("/nothing", 404),
    ("/" + "a/" * 40, 400),
]


def test_hostile_requests_get_clear_answers(serve, origin):
    costume(origin)
    s = serve()
    for target, want in TRAVERSALS:
        got = s.raw(b"GET " + target.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert got == want, (target, got)
    assert s.raw(b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n") in (414, 0)
    assert s.raw(b"GET /" + b"a" * 3000 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") == 414
    assert s.raw(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 100000 + b"\r\n\r\n") in (431, 413, 400, 0)
    for method in ("DELETE", "PUT", "PATCH", "TRACE", "BREW"):
        st = s.raw(method.encode() + b" /costumes/" + NAME.encode() + b"/model.json HTTP/1.1\r\n"
                   b"Host: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        assert st in (405, 501), (method, st)
    st, _ = s.json("GET", "/download/" + NAME)
    assert st == 405
    st, _ = s.json("POST", "/costumes/" + NAME + "/model.json")
    assert st == 405
    # A stalled client holds its connection only until the timeout; others go on.
    stalled = [socket.create_connection(("127.0.0.1", s.port)) for _ in range(20)]
    for x in stalled:
        x.sendall(b"GET /costumes/")
    st, _, _ = s.request("GET", "/costumes/%s/name.txt" % NAME)
    assert st == 200
    for x in stalled:
        x.close()
    # Still serving, nothing outside the tree sent.
    st, _, body = s.request("GET", "/costumes/%s/name.txt" % NAME)
    assert st == 200 and b"SQLite" not in body


def test_a_second_l2dfs_and_the_downloader_use_the_server_as_origin(serve, origin, l2dfs_bin, tmp_path):
    c = costume(origin)
    s = serve()
    origin.reset()
    outs = []
    for i in range(2):
        cli = Cli(l2dfs_bin, origin, tmp_path / ("client%d" % i),
                  opts={"api_url": s.url + "/api", "assets_url": s.url + "/assets"})
        out = tmp_path / ("out%d" % i)
        r = cli("pull", NAME, "--to", out)
        assert r.returncode == 0, r.stderr
        outs.append(out / NAME)
    for rel, url in c.files.items():
        for out in outs:
            assert (out / rel).read_bytes() == origin.expected(url), rel
        # The real origin saw each file once, for the server and both clients.
        assert origin.count("GET", url) == 1, (rel, origin.requests())
    assert json.loads((outs[0] / "model.json").read_bytes()) == c.model_json
    # The catalogue documents came from the server's stored copies.
    assert origin.count("GET", "/api/costumes/all.5.json") <= 1
    st, h, body = s.request("GET", "/api/costumes/all.5.json", {"Accept-Encoding": "gzip"})
    assert st == 200 and h["content-encoding"] == "gzip"
    assert gzip.decompress(body) == origin.request("GET", "/api/costumes/all.5.json")[2]


def test_json_api_download_status_retry(serve, origin):
    c = costume(origin)
    s = serve()
    st, j = s.json("GET", "/status/" + NAME)
    assert st == 200 and j["status"] == "pending" and j["progress"] == 0 and j["error"] is None
    fid = origin.fault(path=c.files[TEX], kind="status", status=503)
    st, j = s.json("POST", "/download/" + NAME)
    assert st == 200 and j["success"] is True and j["cached"] is False
    assert wait_for(lambda: s.json("GET", "/status/" + NAME)[1]["status"] == "failed", 60)
    st, j = s.json("GET", "/status/" + NAME)
    assert TEX in j["error"] and "503" in j["error"] and 0 < j["progress"] < 100
    st, f = s.json("GET", "/status/%s/%s" % (NAME, TEX))
    assert st == 200 and f["status"] == "failed" and "503" in f["error"]
    origin.clear_fault(fid)
    st, j = s.json("POST", "/retry/%s" % NAME)
    assert st == 200 and j["success"] is True and j["queued"] >= 1
    assert wait_for(lambda: s.json("GET", "/status/" + NAME)[1]["status"] == "completed", 60)
    st, j = s.json("GET", "/status/" + NAME)
    assert j["progress"] == 100 and j["files_done"] == j["files_total"]
    st, j = s.json("POST", "/download/" + NAME)
    assert j["success"] is True and j["cached"] is True and j["queued"] == 0
    st, f = s.json("POST", "/download/%s/%s" % (NAME, TEX))
    assert f["cached"] is True and f["state"]["status"] == "completed"
    st, f = s.json("GET", "/status/%s/model.json" % NAME)
    assert f["status"] == "completed" and f["generated"] is True
    for bad in ("/status/%s/textures/nope.png" % NAME, "/download/nope", "/retry/nope"):
        assert s.json("POST" if "status" not in bad else "GET", bad)[0] == 404, bad

    # What the gallery reads.
    st, chars = s.json("GET", "/gallery/characters")
    me = next(x for x in chars if x["name"] == c.character)
    assert me["costumes"] >= 1
    st, cs = s.json("GET", "/gallery/characters/%d" % me["id"])
    entry = next(x for x in cs if x["name"] == NAME)
    assert entry["icon"] == "/costumes/%s/icon.png" % NAME and entry["description"]
    st, page = s.json("GET", "/gallery/costumes/" + NAME)
    assert page["status"] == "completed" and {f["path"] for f in page["files"]} >= set(c.files)
    st, h, html = s.request("GET", "/")
    assert st == 200 and h["content-type"].startswith("text/html") and b"/gallery/characters" in html


def test_400_requests_from_40_clients(serve, origin):
    c = costume(origin)
    s = serve()
    paths = ["/costumes/%s/%s" % (NAME, rel) for rel in c.files] + ["/costumes/%s/model.json" % NAME]
    want = {"/costumes/%s/%s" % (NAME, rel): origin.expected(u) for rel, u in c.files.items()}
    errors = []

    def client(k):
        conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=60)
        try:
            for i in range(10):
                p = paths[(k + i) % len(paths)]
                conn.request("GET", p)
                r = conn.getresponse()
                body = r.read()
                if r.status != 200 or (p in want and body != want[p]):
                    errors.append((p, r.status, len(body)))
        except Exception as e:  # noqa: BLE001 (any failure is a wrong answer)
            errors.append(("client %d" % k, repr(e)))
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(k,)) for k in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:5]
    for rel, url in c.files.items():
        assert origin.count("GET", url) == 1, rel
