"""End to end: a real Cubism 2 viewer renders models served by the mount.

The fixture origin serves two real Cubism 2 models from npm packages (shizuku,
koharu) as Bestdori-shaped costumes; l2dfs mounts it with a cold cache; a
loopback HTTP server serves the mount; headless Chromium runs
pixi-live2d-display on the model.json the mount generated, loads every motion
and expression it lists and counts the pixels it drew (tests/viewer/). The
broken-file cases prove the same checks fail when the origin's files do.
scripts/viewer-deps.sh installs the viewer's parts (npm, Debian's chromium)."""

import base64
import http.server
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from helpers import REPO, reap

VIEWER = REPO / "tests" / "viewer"
DEPS = Path(os.environ.get("L2DFS_VIEWER_DEPS", str(VIEWER / ".deps")))
CHROMIUM = os.environ.get("L2DFS_CHROMIUM", "/usr/bin/chromium")
SHIZUKU, KOHARU = "036_viewer_shizuku", "037_viewer_koharu"
PACKAGES = {SHIZUKU: "live2d-widget-model-shizuku", KOHARU: "live2d-widget-model-koharu"}
VIEWER_TIMEOUT = 40  # seconds per model, for the page's report
MIN_NON_WHITE = 20000  # of 800x800 pixels
# What the healthy models draw (non-white pixels): shizuku, 6 textures, ~260k;
# koharu, 1 texture, ~140k. An idle motion picked at random moves it a little.
HEALTHY = {SHIZUKU: 260000, KOHARU: 140000}


@pytest.fixture(scope="session")
def viewer_deps():
    """Installs (once; quick when installed) what the viewer needs."""
    r = subprocess.run([str(REPO / "scripts" / "viewer-deps.sh")], capture_output=True, text=True,
                       timeout=900, env=dict(os.environ, L2DFS_VIEWER_DEPS=str(DEPS), L2DFS_CHROMIUM=CHROMIUM))
    assert r.returncode == 0, "scripts/viewer-deps.sh failed:\n" + r.stdout + r.stderr
    return DEPS


@pytest.fixture(scope="session")
def models_dir(viewer_deps, tmp_path_factory):
    """--models-dir for the fixture server: one folder per costume."""
    d = tmp_path_factory.mktemp("models")
    for name, package in PACKAGES.items():
        src = viewer_deps / "node_modules" / package / "assets"
        assert src.is_dir(), src
        os.symlink(src, d / name)
    return d


class MountServer:
    """A loopback HTTP server: the mount at /, the viewer page at /__viewer/
    (its installed parts at /__viewer/deps/). Records every (status, path)."""

    def __init__(self, mnt, deps):
        roots = [("/__viewer/deps/", str(deps)), ("/__viewer/", str(VIEWER)), ("/", mnt)]
        served = self.served = []

        class Handler(http.server.SimpleHTTPRequestHandler):
            def translate_path(self, path):
                for prefix, root in roots:
                    if path.split("?", 1)[0].startswith(prefix):
                        self.directory = root
                        return super().translate_path("/" + path[len(prefix):])
                raise AssertionError(path)

            def log_request(self, code="-", size="-"):
                served.append((int(code), self.path))

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def run_viewer(server, costumes, workdir):
    """The driver's report {costume: report} for the costumes' model.json,
    all in one headless Chromium. Every process started is ended by pid."""
    pid_file = workdir / "chromium.pid"
    cmd = ["node", str(VIEWER / "run.mjs"), "--deps", str(DEPS), "--base", server.url,
           "--chromium", CHROMIUM, "--timeout", str(VIEWER_TIMEOUT), "--pid-file", str(pid_file),
           "--shots", str(workdir / "shots")]
    cmd += ["/costumes/%s/model.json" % c for c in costumes]
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    with open(workdir / "driver.log", "wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, env=env)
        try:
            out, _ = proc.communicate(timeout=30 + VIEWER_TIMEOUT * len(costumes))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)  # playwright closes the browser on SIGTERM
            reap(proc, 10)
            out = b""
        finally:
            _end_browser(pid_file)
    assert proc.returncode == 0 and out, "viewer driver failed (%s):\n%s" % (
        proc.returncode, (workdir / "driver.log").read_text(errors="replace")[-4000:])
    got = json.loads(out)
    return {c: got["results"]["/costumes/%s/model.json" % c] for c in costumes}, got["launchMs"]


def _end_browser(pid_file):
    """Kill the browser the driver started if it outlived the driver."""
    try:
        pids = [int(x) for x in pid_file.read_text().split()]
    except (OSError, ValueError):
        return
    for pid in pids:
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                if b"chrom" in f.read().split(b"\0")[0]:
                    os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def expected_files(origin, name):
    """What buildData names for a costume: counts and the physics name."""
    info = origin.costume(name)
    n = {f: sum(1 for x in info["files"] if x["field"] == f) for f in ("textures", "motions", "expressions")}
    physics = [x["rel"] for x in info["files"] if x["field"] == "physics"]
    return dict(n, physics=physics[0] if physics else None)


NONE_LEFT_OUT = {"textures": 0, "motions": 0, "expressions": 0, "physics": 0}


def files_left_out(mj, expected):
    """How many of the files buildData names model.json does not list."""
    out = {k: expected[k] - mj[k] for k in ("textures", "motions", "expressions")}
    out["physics"] = int(bool(expected["physics"]) and not mj["physics"])
    return out


def failed_checks(r, expected):
    """The viewer checks a report fails, by name (empty: rendered fine)."""
    bad = []
    if not r.get("loaded"):
        bad.append("load")
    if r.get("badStatus") or any(code >= 400 for code, _ in r.get("served", [])):
        bad.append("http")
    if r.get("pageErrors"):
        bad.append("page_errors")
    mj = r.get("modelJson") or {}
    if mj and (files_left_out(mj, expected) != NONE_LEFT_OUT or mj["physics"] != expected["physics"]):
        bad.append("model_json")  # the mount left a file buildData names out
    if not r.get("loaded"):
        return bad
    if r["motions"]["failed"] or r["motions"]["loaded"] != mj["motions"]:
        bad.append("motions")
    if r["expressions"]["failed"] or r["expressions"]["loaded"] != mj["expressions"]:
        bad.append("expressions")
    if bool(mj["physics"]) != r["physicsPresent"]:
        bad.append("physics")
    px = r["pixels"]
    if px["nonWhite"] <= MIN_NON_WHITE:
        bad.append("pixels")
    if px["black"] >= 0.01 * max(px["nonWhite"], 1):
        bad.append("black")
    return bad


def summary(name, r):
    px = r.get("pixels") or {}
    t = r.get("timings") or {}
    return ("%s: loaded=%s nonWhite=%s black=%s motions=%s expressions=%s physics=%s "
            "load=%.0fms rendered=%.0fms wall=%sms bad=%s error=%s" % (
                name, r.get("loaded"), px.get("nonWhite"), px.get("black"),
                (r.get("motions") or {}).get("loaded"), (r.get("expressions") or {}).get("loaded"),
                r.get("physicsPresent"), t.get("loadMs") or 0, t.get("renderedMs") or 0, r.get("wallMs"),
                r.get("badStatus"), (r.get("error") or "")[:200])) + (
                "\nfailed checks: %s\npage errors: %s\nconsole: %s\nserved: %s" % (
                    r.get("failed"), r.get("pageErrors"),
                    [c for c in r.get("console", []) if "GPU stall" not in c][:10],
                    [x for x in r.get("served", []) if x[0] != 200]))


def view(make_origin, mount, models_dir, workdir, costumes, faults=()):
    """Origin (with faults), a cold mount, the HTTP server, the viewer:
    ({costume: report with 'served' and 'failed'}, expected, launch ms, origin)."""
    workdir.mkdir(parents=True, exist_ok=True)
    origin = make_origin("--models-dir", str(models_dir))
    expected = {c: expected_files(origin, c) for c in costumes}
    for f in faults:
        origin.fault(**f)
    m = mount(origin=origin)
    server = MountServer(m.path, DEPS)
    try:
        reports, launch_ms = run_viewer(server, costumes, workdir)
    finally:
        server.close()
    for c, r in reports.items():
        r["served"] = [(code, p) for code, p in server.served if p.startswith("/costumes/%s/" % c)]
        r["failed"] = failed_checks(r, expected[c])
    (workdir / "reports.json").write_text(json.dumps(reports, indent=1))
    for c, r in reports.items():
        print(summary(c, r).split("\n")[0])
    return reports, expected, launch_ms, origin


def test_viewer_renders_models_from_a_cold_mount(make_origin, mount, models_dir, tmp_path):
    t0 = time.monotonic()
    reports, expected, launch_ms, origin = view(make_origin, mount, models_dir, tmp_path / "ok", [SHIZUKU, KOHARU])
    print("viewer: browser launch %d ms, total %.1f s" % (launch_ms, time.monotonic() - t0))
    for name, r in reports.items():
        assert r["loaded"], "%s did not load: %s" % (name, r["error"])
        assert r["failed"] == [], summary(name, r)
        assert r["motions"]["loaded"] == expected[name]["motions"] > 0
        assert r["expressions"]["loaded"] == expected[name]["expressions"]
        assert r["physicsPresent"] and expected[name]["physics"]
        assert r["textures"] == expected[name]["textures"]
        assert abs(r["pixels"]["nonWhite"] - HEALTHY[name]) < 0.05 * HEALTHY[name]
        # Every file was read through the mount, and answered.
        assert all(code == 200 for code, _ in r["served"]), r["served"]
    assert expected[SHIZUKU]["expressions"] == 4 and expected[SHIZUKU]["textures"] == 6
    # A cold cache: each file came from the origin, once.
    gets = origin.requests()
    for name in reports:
        for f in origin.costume(name)["files"]:
            assert gets.get("GET " + f["url"]) == 1, (f["url"], gets.get("GET " + f["url"]))


def half_body(models_dir, name, file, path_re):
    """A fault serving the first half of a model file with a matching
    Content-Length: a well-formed response the mount cannot tell is cut."""
    raw = (models_dir / name / file).read_bytes()
    return dict(path=path_re, kind="body", content_type="application/octet-stream",
                body_b64=base64.b64encode(raw[:len(raw) // 2]).decode())


def asset_re(name, file):
    """A fault's path regex for one file of a costume's bundle."""
    return r"/live2d/chara/%s_rip/%s$" % (name, file.replace(".", r"\."))


# case: (costume, faults at the origin (from the models dir), the checks that
# must fail, and what model.json must then list less than buildData names).
BROKEN = {
    # The mount leaves a file missing at the origin out of model.json; the
    # viewer then draws the model with the wrong textures (fewer pixels).
    "texture_missing": (SHIZUKU, lambda d: [dict(path=asset_re(SHIZUKU, "texture_02.png"), kind="html")],
                        {"model_json"}, {"textures": 1}),
    "motion_missing": (SHIZUKU, lambda d: [dict(path=asset_re(SHIZUKU, "idle_01.mtn"), kind="html")],
                       {"model_json"}, {"motions": 1}),
    "expression_missing": (SHIZUKU, lambda d: [dict(path=asset_re(SHIZUKU, "f02.exp.json"), kind="html")],
                           {"model_json"}, {"expressions": 1}),
    # Physics missing is silent in the viewer: only model.json tells.
    "physics_missing": (KOHARU, lambda d: [dict(path=asset_re(KOHARU, "koharu.physics.json"), kind="html")],
                        {"model_json"}, {"physics": 1}),
    # Half a .moc in a well-formed response: cached as it is; the core fails.
    "moc_truncated": (SHIZUKU, lambda d: [half_body(d, SHIZUKU, "moc/shizuku.moc", asset_re(SHIZUKU, "shizuku.moc"))],
                      {"load"}, {}),
    # The origin closes mid-body: the download fails and the read fails (the
    # kernel opens files itself, so the open succeeded): the HTTP server
    # cuts its answer short and the model does not load.
    "moc_cut": (SHIZUKU, lambda d: [dict(path=asset_re(SHIZUKU, "shizuku.moc"), kind="short")],
                {"load"}, {}),
    # Half a PNG "loads" (texImage2D: bad image data) and draws black.
    "texture_truncated": (SHIZUKU, lambda d: [half_body(d, SHIZUKU, "moc/shizuku.1024/texture_02.png",
                                                        asset_re(SHIZUKU, "texture_02.png"))],
                          {"black"}, {}),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_viewer_catches_a_broken_file(make_origin, mount, models_dir, tmp_path, case):
    name, faults, checks, left_out = BROKEN[case]
    reports, expected, _, _ = view(make_origin, mount, models_dir, tmp_path / case, [name], faults(models_dir))
    r = reports[name]
    print("%s: failed checks %s" % (case, sorted(r["failed"])))
    assert set(r["failed"]) == checks, summary(name, r)
    if r["modelJson"]:
        assert files_left_out(r["modelJson"], expected[name]) == dict(NONE_LEFT_OUT, **left_out)
    if case == "texture_missing":
        assert abs(r["pixels"]["nonWhite"] - HEALTHY[name]) > 0.1 * HEALTHY[name]
    if case == "texture_truncated":
        assert r["loaded"] and r["pixels"]["black"] > 20000
