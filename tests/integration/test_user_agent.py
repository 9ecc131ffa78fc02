"""-o user_agent= is the User-Agent l2dfs sends (default l2dfs/<version>),
-o header= adds an app's headers, and the Python package's
BestdoriClient(user_agent=, session=) maps to them."""

import http.server
import subprocess
import sys
import threading

import pytest

from test_cli_helpers import Cli
from test_python_api import PACKAGE


class Seen(list):
    """The User-Agent of each request; .headers: all the headers of each."""

    def __init__(self):
        super().__init__()
        self.headers = []


class Recorder(http.server.ThreadingHTTPServer):
    daemon_threads = True


@pytest.fixture
def recorder():
    seen = Seen()
    headers = seen.headers

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers.get("User-Agent"))
            headers.append(dict(self.headers.items()))
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    srv = Recorder(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield "http://127.0.0.1:%d" % srv.server_address[1], seen
    srv.shutdown()
    srv.server_close()
    t.join()


def run(l2dfs_bin, url, tmp_path, extra):
    opts = "api_url=%s/api,assets_url=%s/assets,cache_dir=%s,retries=0%s" % (url, url, tmp_path / "c", extra)
    return subprocess.run([l2dfs_bin, "cat", "-o", opts, "036_x/model.json"], capture_output=True,
                          timeout=60, env=Cli.env())


def test_default_names_l2dfs_and_its_version(l2dfs_bin, recorder, tmp_path):
    url, seen = recorder
    run(l2dfs_bin, url, tmp_path, "")
    version = subprocess.run([l2dfs_bin, "--version"], capture_output=True, text=True).stdout.split()[-1]
    assert seen and set(seen) == {"l2dfs/" + version}, seen


def test_user_agent_option_and_the_package(l2dfs_bin, recorder, tmp_path):
    url, seen = recorder
    run(l2dfs_bin, url, tmp_path, ",user_agent=MyApp/2.0 (+https://example.org)")
    assert seen and set(seen) == {"MyApp/2.0 (+https://example.org)"}, seen
    seen.clear()
    code = ("from live2d_download import BestdoriClient, Live2dService\n"
            "c = BestdoriClient(base_assets_url=%r, user_agent='D_sakiko/1.0', options={'retries': 0},"
            " cache=__import__('live2d_download.bestdori_client').bestdori_client.CachePolicy(cache_dir=%r))\n"
            "try:\n    Live2dService(c).list_characters()\nexcept RuntimeError:\n    pass\n"
            % (url + "/assets", str(tmp_path / "c2")))
    env = dict(Cli.env(), PYTHONPATH=str(PACKAGE), L2DFS_BIN=l2dfs_bin)
    subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60, env=env)
    assert seen and set(seen) == {"D_sakiko/1.0"}, seen


def test_header_option(l2dfs_bin, recorder, tmp_path):
    """header= is sent with every request, repeatable, a comma escaped as
    \\,; the headers the engine sets itself are refused."""
    url, seen = recorder
    r = run(l2dfs_bin, url, tmp_path, ",header=X-App: D_sakiko,header=Accept-Language: ja\\, en;q=0.8")
    assert seen, r.stderr
    for h in seen.headers:
        assert h.get("X-App") == "D_sakiko" and h.get("Accept-Language") == "ja, en;q=0.8", h
    for bad in ("Accept-Encoding: gzip", "Range: bytes=0-1", "If-None-Match: x", "no colon", ": empty",
                "X-A: b\tc\x01"):
        n = len(seen)
        r = run(l2dfs_bin, url, tmp_path, ",header=" + bad.replace(",", "\\,"))
        assert r.returncode == 1 and b"header" in r.stderr and len(seen) == n, bad


def test_session_headers_in_the_package(l2dfs_bin, recorder, tmp_path):
    """BestdoriClient(session=): its User-Agent becomes user_agent= (unless
    user_agent is given, or it is requests' own), its other headers header=
    (not requests' transport defaults), its proxies proxy=."""
    url, seen = recorder
    code = ("import requests\n"
            "from live2d_download import BestdoriClient, Live2dService\n"
            "from live2d_download.bestdori_client import CachePolicy\n"
            "s = requests.Session()\n"
            "s.headers.update({'User-Agent': 'D_sakiko/2.0', 'X-Token': 'a,b', 'Referer': 'https://bestdori.com/'})\n"
            "for ua in (None, 'Given/1.0'):\n"
            "    c = BestdoriClient(base_assets_url=%r, session=s, user_agent=ua, options={'retries': 0},"
            " cache=CachePolicy(cache_dir=%r))\n"
            "    try:\n        Live2dService(c).list_characters()\n    except RuntimeError:\n        pass\n"
            "print(BestdoriClient(session=requests.Session()).options)\n"
            % (url + "/assets", str(tmp_path / "c2")))
    env = dict(Cli.env(), PYTHONPATH=str(PACKAGE), L2DFS_BIN=l2dfs_bin)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "{}"  # a plain session adds nothing
    assert "D_sakiko/2.0" in seen and "Given/1.0" in seen and set(seen) == {"D_sakiko/2.0", "Given/1.0"}, seen
    for h in seen.headers:
        assert h.get("X-Token") == "a,b" and h.get("Referer") == "https://bestdori.com/", h
        assert "python-requests" not in str(h) and h.get("Accept-Encoding") in (None, "deflate, gzip, br, zstd",
                                                                               "deflate, gzip, br", "deflate, gzip"), h
