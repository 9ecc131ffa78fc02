"""The gallery of `l2dfs serve` in headless Chromium: icons, and a preview that renders."""

import functools
import http.server
import json
import os
import subprocess
import threading

from test_serve import serve  # noqa: F401 (fixture)
from test_viewer import CHROMIUM, DEPS, SHIZUKU, VIEWER, models_dir, viewer_deps  # noqa: F401


def test_gallery_shows_icons_and_renders_a_preview(serve, make_origin, models_dir, tmp_path):  # noqa: F811
    origin = make_origin("--models-dir", str(models_dir))
    # The viewer's parts from a loopback server of their own (no internet).
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(DEPS))
    handler.log_message = lambda *a: None
    libs = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=libs.serve_forever, daemon=True)
    t.start()
    lib = "http://127.0.0.1:%d/" % libs.server_address[1]
    try:
        s = serve(o=origin, args=["--cubism-core", lib + "live2d.core.classic.js",
                                  "--pixi", lib + "node_modules/pixi.js/dist/browser/pixi.min.js",
                                  "--pixi-live2d", lib + "node_modules/pixi-live2d-display/dist/cubism2.min.js"])
        shots = tmp_path / "shots"
        shots.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        r = subprocess.run(["node", str(VIEWER / "gallery.mjs"), "--deps", str(DEPS), "--base", s.url,
                            "--costume", SHIZUKU, "--character", "36", "--shots", str(shots),
                            "--chromium", CHROMIUM], capture_output=True, text=True, timeout=240, env=env)
    finally:
        libs.shutdown()
        libs.server_close()
    assert r.returncode == 0 and r.stdout, r.stderr[-4000:]
    rep = json.loads(r.stdout)
    print("gallery:", json.dumps(rep)[:600])
    assert rep["characters"] and rep["focused"] == "card"
    # Every costume shows its icon, but those the origin has none for (404).
    no_icon = [b for b in rep["bad"] if b.startswith("404 ") and b.endswith("/icon.png")]
    assert rep["bad"] == no_icon and rep["icons"] >= 3 and rep["icons"] + len(no_icon) == rep["costumes"]
    assert rep["lazy"]
    assert rep["preview"] == "ready", rep
    assert rep["pixels"] > 20000, rep
    assert rep["files"] > 10 and not rep["errors"], rep
    assert (shots / "costumes.png").stat().st_size > 10000
    if os.environ.get("L2DFS_KEEP_SHOTS"):
        for f in shots.iterdir():
            os.replace(f, os.path.join(os.environ["L2DFS_KEEP_SHOTS"], f.name))
