"""-o user_agent= is the User-Agent l2dfs sends (default l2dfs/<version>),
and the Python package's BestdoriClient(user_agent=) maps to it."""

import http.server
import subprocess
import sys
import threading

import pytest

from test_cli_helpers import Cli
from test_python_api import PACKAGE


class Recorder(http.server.ThreadingHTTPServer):
    daemon_threads = True


@pytest.fixture
def recorder():
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers.get("User-Agent"))
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
