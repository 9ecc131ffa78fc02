"""Proxies, mirrors and a shared nginx cache: where the mount's requests go.

  proxy=URL, http_proxy, no_proxy   every request through a forward proxy (or not)
  mirror=URL[,URL...]               the origin down or failing: a mirror serves,
                                    failing mirrors are skipped
  contrib/nginx-l2dfs-cache.conf    many mounts, one request per file upstream
"""

import http.client
import os
import re
import socket
import subprocess
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from helpers import REPO, TEX0, costume, read_file, wait_for

NGINX = "/usr/sbin/nginx"
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "te",
              "trailer", "transfer-encoding", "upgrade", "content-length"}
NO_PROXY_ENV = {"no_proxy": "", "NO_PROXY": ""}


class ForwardProxy:
    """An HTTP forward proxy on 127.0.0.1 that forwards only to 127.0.0.1 and
    records each request it forwarded as "METHOD absolute-URL"."""

    def __init__(self):
        self.seen = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def do_GET(self):
                self.forward("GET")

            def do_HEAD(self):
                self.forward("HEAD")

            def forward(self, method):
                u = urllib.parse.urlsplit(self.path)
                if u.scheme != "http" or u.hostname != "127.0.0.1":
                    self.send_error(403, "only http://127.0.0.1 here")
                    return
                proxy.seen.append("%s %s" % (method, self.path))
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                conn.request(method, u.path + ("?" + u.query if u.query else ""), headers=headers)
                resp = conn.getresponse()
                body = resp.read()
                conn.close()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in HOP_BY_HOP:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(body) if method == "GET" else
                                                       resp.getheader("Content-Length", "0")))
                self.end_headers()
                if method == "GET":
                    self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy():
    p = ForwardProxy()
    yield p
    p.close()


@pytest.fixture
def dead_url():
    """A URL on 127.0.0.1 that refuses connections (bound, never listening)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    yield "http://127.0.0.1:%d" % s.getsockname()[1]
    s.close()


def read_costume(m, c, rels=None):
    """Read the given files (all of the costume's by default); {rel: bytes}."""
    return {rel: read_file(c.path(m, rel)) for rel in (rels or c.files)}


def url_of(m, c, rel):
    return os.getxattr(c.path(m, rel), "user.l2dfs.url").decode()


# ---- proxies ----


def assert_all_through(proxy, origin):
    """The origin saw exactly what the proxy forwarded, nothing directly."""
    forwarded = {}
    for line in proxy.seen:
        method, url = line.split(" ", 1)
        assert url.startswith(origin.url + "/"), url
        key = "%s %s" % (method, url[len(origin.url):])
        forwarded[key] = forwarded.get(key, 0) + 1
    assert forwarded and forwarded == origin.requests()


def test_proxy_option_sends_every_request_through_the_proxy(mount, origin, proxy):
    m = mount(opts={"proxy": proxy.url}, env=NO_PROXY_ENV)
    c = costume(origin)
    assert read_file(c.path(m, TEX0)) == origin.expected(c.files[TEX0])
    read_file(c.path(m, "model.json"))
    assert wait_for(lambda: os.getxattr(c.path(m), "user.l2dfs.files_done") ==
                    os.getxattr(c.path(m), "user.l2dfs.files_total"), 10)
    assert_all_through(proxy, origin)
    assert "GET %s%s" % (origin.url, c.files[TEX0]) in proxy.seen
    # The URL is the origin's: the proxy is only the way there.
    assert url_of(m, c, TEX0) == origin.url + c.files[TEX0]


def test_http_proxy_environment(mount, origin, proxy):
    m = mount(env=dict(NO_PROXY_ENV, http_proxy=proxy.url), opts={"prefetch": "off"})
    c = costume(origin)
    assert read_file(c.path(m, TEX0)) == origin.expected(c.files[TEX0])
    assert_all_through(proxy, origin)


def test_no_proxy_environment_goes_direct(mount, origin, proxy):
    m = mount(env={"http_proxy": proxy.url, "no_proxy": "127.0.0.1", "NO_PROXY": "127.0.0.1"},
              opts={"prefetch": "off"})
    c = costume(origin)
    assert read_file(c.path(m, TEX0)) == origin.expected(c.files[TEX0])
    assert proxy.seen == [] and origin.count("GET", c.files[TEX0]) == 1


def test_no_proxy_environment_applies_with_the_proxy_option(mount, origin, proxy):
    """As the man page says: hosts in no_proxy are reached directly even with proxy=."""
    m = mount(opts={"proxy": proxy.url, "prefetch": "off"}, env={"no_proxy": "127.0.0.1"})
    c = costume(origin)
    assert read_file(c.path(m, TEX0)) == origin.expected(c.files[TEX0])
    assert proxy.seen == []


# ---- mirrors ----


def test_mirror_serves_while_the_origin_is_down(mount, origin, make_origin):
    mirror = make_origin()
    m = mount(opts={"mirror": mirror.url, "prefetch": "off"})
    c = costume(origin)
    origin.stop()
    assert read_file(c.path(m, TEX0)) == mirror.expected(c.files[TEX0])
    assert url_of(m, c, TEX0) == mirror.url + c.files[TEX0]
    assert mirror.count("GET", c.files[TEX0]) == 1
    assert os.getxattr(c.path(m, TEX0), "user.l2dfs.state") == b"completed"


def test_mirror_serves_when_the_origin_answers_503(mount, origin, make_origin):
    mirror = make_origin()
    origin.fault(path="^/", kind="status", status=503)
    m = mount(opts={"mirror": mirror.url, "prefetch": "off"})
    c = costume(origin)
    assert read_file(c.path(m, TEX0)) == mirror.expected(c.files[TEX0])
    assert url_of(m, c, TEX0) == mirror.url + c.files[TEX0]
    # The origin is still asked first (a 503 is not a network failure).
    assert origin.count("GET", c.files[TEX0]) >= 1
    assert mirror.count("GET", c.files[TEX0]) == 1


def test_failing_mirrors_are_skipped(mount, origin, make_origin, dead_url):
    """mirror=A,B,C: A answers 503, B refuses connections, C serves."""
    bad, good = make_origin(), make_origin()
    origin.fault(path="^/", kind="status", status=503)
    bad.fault(path="^/", kind="status", status=503)
    m = mount(opts={"mirror": "%s,%s,%s" % (bad.url, dead_url, good.url), "prefetch": "off",
                    "retries": "0"})
    c = costume(origin)
    assert read_file(c.path(m, TEX0)) == good.expected(c.files[TEX0])
    assert url_of(m, c, TEX0) == good.url + c.files[TEX0]
    assert bad.count("GET", c.files[TEX0]) == 1 and good.count("GET", c.files[TEX0]) == 1


def test_origin_404_is_not_asked_of_mirrors(mount, origin, make_origin):
    """A file the origin does not have is missing: mirrors are for failures."""
    mirror = make_origin()
    c = costume(origin)
    origin.fault(path=re.escape(c.files[TEX0]) + "$", kind="status", status=404)
    m = mount(opts={"mirror": mirror.url, "prefetch": "off"})
    with pytest.raises(OSError):
        read_file(c.path(m, TEX0))
    assert mirror.count("GET", c.files[TEX0]) == 0 and mirror.count("HEAD", c.files[TEX0]) == 0


# ---- a shared nginx cache in front of the origin ----


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def nginx_has(module):
    r = subprocess.run([NGINX, "-V"], capture_output=True, text=True)
    return "--without-http_%s_module" % module not in r.stderr


@pytest.fixture
def nginx(tmp_path, origin):
    """contrib/nginx-l2dfs-cache.conf in front of the origin, on a free port,
    everything it writes in a temporary folder. Yields its base URL."""
    if not os.access(NGINX, os.X_OK):
        pytest.skip("nginx is not installed (scripts/install-deps.sh installs nginx-light)")
    d = tmp_path / "nginx"
    d.mkdir()
    port = free_port()
    site = (REPO / "contrib" / "nginx-l2dfs-cache.conf").read_text()
    for old, new in (("https://bestdori.com", origin.url), ("/var/cache/nginx/l2dfs", str(d / "cache")),
                     ("listen 8080;", "listen 127.0.0.1:%d;" % port)):
        assert old in site
        site = site.replace(old, new)
    (d / "site.conf").write_text(site)
    temps = ["client_body", "proxy"] + [m for m in ("fastcgi", "uwsgi", "scgi") if nginx_has(m)]
    conf = [
        "user root;" if os.geteuid() == 0 else "",
        "daemon off;",
        "worker_processes 2;",
        "pid %s;" % (d / "nginx.pid"),
        "error_log %s info;" % (d / "error.log"),
        "events { worker_connections 256; }",
        "http {",
        "  access_log %s;" % (d / "access.log"),
    ] + ["  %s_temp_path %s;" % (t, d / (t + "_temp")) for t in temps] + [
        "  include %s;" % (d / "site.conf"),
        "}",
    ]
    (d / "nginx.conf").write_text("\n".join(conf) + "\n")
    log = open(d / "stderr", "wb")
    proc = subprocess.Popen([NGINX, "-p", str(d), "-c", str(d / "nginx.conf"), "-e", str(d / "error.log")],
                            stdout=log, stderr=subprocess.STDOUT)

    def up():
        if proc.poll() is not None:
            return True
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    wait_for(up, 10)
    if proc.poll() is not None:
        log.close()
        pytest.fail("nginx did not start:\n" + (d / "stderr").read_text() + (d / "error.log").read_text())
    yield "http://127.0.0.1:%d" % port
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


def test_nginx_cache_fetches_each_file_once_for_many_mounts(mount, origin, nginx):
    """Two mounts with separate caches read one costume at the same time
    through nginx: the origin serves every URL once."""
    c = costume(origin)
    origin.config(latency_ms=50)  # misses overlap: the cache lock must collapse them
    mounts = [mount(opts={"api_url": nginx + "/api", "assets_url": nginx + "/assets"}) for _ in range(2)]
    start = threading.Barrier(len(mounts))
    got, errors = {}, []

    def reader(i):
        try:
            start.wait(10)
            got[i] = read_costume(mounts[i], c)
        except Exception as e:  # reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(len(mounts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    want = {rel: origin.expected(url) for rel, url in c.files.items()}
    assert got[0] == want and got[1] == want
    for m in mounts:
        assert wait_for(lambda: os.getxattr(c.path(m), "user.l2dfs.files_done") ==
                        os.getxattr(c.path(m), "user.l2dfs.files_total"), 10)
        assert url_of(m, c, TEX0) == nginx + c.files[TEX0]
    seen = origin.requests()
    assets = {k: n for k, n in seen.items() if k.startswith("GET /assets/")}
    assert set(c.files.values()) <= {k[4:] for k in assets}
    assert all(n == 1 for n in seen.values()), {k: n for k, n in seen.items() if n != 1}
    assert not any(k.startswith("HEAD ") for k in seen)
