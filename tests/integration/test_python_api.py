"""The live2d_download Python package (python/): the API documented for the
Python downloader, done by l2dfs. The documented examples run as scripts
with only the package on the path, against the fixture origin."""

import json
import os
import re
import subprocess
import sys
import textwrap
import time

from helpers import REPO, costume, wait_for
from test_cli_helpers import Cli, cache_path, json_lines, temporaries, tree

PACKAGE = REPO / "python"
NAME = "036_live_event_307_ssr"
SLOW = "036_dream_festival_3_ur"

# The documented examples, verbatim but for the client's settings (SETTINGS,
# the fixture origin and a cache of the test) and the lines after "# --".
BASIC = '''
from pathlib import Path
from live2d_download.models import FileProgress, ModelProgress, ProgressCallback
from live2d_download.bestdori_client import BestdoriClient
from live2d_download.live2d_downloader import Live2dDownloader

client = BestdoriClient(**SETTINGS)
downloader = Live2dDownloader(client)

class ProgressPrinter(ProgressCallback):
    def __call__(self, *, file: FileProgress | None = None, model: ModelProgress | None = None) -> None:
        if file is not None:
            print(f"File[{file.event}] {file.live2d_name} - {file.rel_path}: {file.bytes_done}/{file.bytes_total}")
        if model is not None:
            print(f"Model {model.live2d_name}: {model.files_done}/{model.files_total} files done")

downloader.download_live2d_name(
    live2d_name="036_live_event_307_ssr",
    root_dir=Path("./models"),
    progress=ProgressPrinter()
)
'''

SEARCH = '''
from pathlib import Path
from live2d_download.live2d_downloader import Live2dDownloader
from live2d_download.live2d_service import Live2dService
from live2d_download.bestdori_client import BestdoriClient
from live2d_download.models import Language, Server

client = BestdoriClient(server = Server.JAPANESE, **SETTINGS)
service = Live2dService(client, language=Language.SIMPLIFIED_CHINESE)
downloader = Live2dDownloader(client)

characters = service.list_characters()
print(characters)
character = service.search_character("Tomori")
print(character)
character = service.search_character("灯")
print(character)
if character:
    print(f"找到角色: {character['name']} (ID: {character['id']})")
    costumes = service.search_costumes(int(character["id"]), include_live_event=True)
    print(f"服装列表: {costumes}")
    if costumes:
        print("正在下载服装:", costumes[0])
        downloader.download_live2d_name(
            live2d_name=costumes[0],
            root_dir=Path("./models")
        )
        print("下载完成")
'''

CANCEL = '''
from pathlib import Path
import time
from live2d_download.bestdori_client import BestdoriClient
from live2d_download.live2d_downloader import Live2dDownloader
from live2d_download.models import CancelToken, CancelledError
import threading

cancel = CancelToken.new()
client = BestdoriClient(**SETTINGS)
downloader = Live2dDownloader(client)

def download_task():
    try:
        downloader.download_live2d_name(
            live2d_name="036_dream_festival_3_ur",
            root_dir=Path("./models"),
            cancel=cancel
        )
    except CancelledError:
        print("下载已取消")

thread = threading.Thread(target=download_task)
thread.start()

time.sleep(0.5)
cancel.cancel()
time.sleep(1)
# --
print("thread ended within 1 s:", not thread.is_alive())
'''


def settings(origin, cache):
    return ("from live2d_download.bestdori_client import CachePolicy as _CP\n"
            "SETTINGS = dict(base_assets_url=%r, base_api_url=%r, cache=_CP(cache_dir=%r),"
            " options={'retry_base_ms': 20})\n" % (origin.assets, origin.api, str(cache)))


def run_script(l2dfs_bin, cwd, code, timeout=60, env=None):
    """code in a fresh interpreter, cwd as its folder, only the package on its path."""
    cwd.mkdir(parents=True, exist_ok=True)
    script = cwd / "example.py"
    script.write_text(code)
    e = Cli.env()
    e.pop("L2DFS_OPTIONS", None)
    e.pop("PYTHONPATH", None)
    e.update({"PYTHONPATH": str(PACKAGE), "L2DFS_BIN": l2dfs_bin})
    e.update(env or {})
    return subprocess.run([sys.executable, "-B", str(script)], cwd=str(cwd),
                          capture_output=True, text=True, timeout=timeout, env=e)


def example(l2dfs_bin, origin, cache, cwd, code, **kw):
    return run_script(l2dfs_bin, cwd, settings(origin, cache) + textwrap.dedent(code), **kw)


def pulled(l2dfs_bin, origin, tmp_path, name):
    """{rel: bytes} of `l2dfs pull NAME` into a folder of its own, on a cache of its own."""
    cli = Cli(l2dfs_bin, origin, tmp_path / "pull-cache")
    out = tmp_path / "pull-out"
    r = cli("pull", name, "--to", out)
    assert r.returncode == 0, r.stderr
    return tree(out / name)


def site_order(names):
    """DESIGN §4's costume order (the Python downloader's search_costumes key)."""
    def key(n):
        tail = n.split("_", 1)[1] if "_" in n else n
        m = re.search(r"\d+", tail)
        return (n.endswith("live_event"), float(m.group(0)) if m else float("inf"), n)
    return sorted(names, key=key)


def file_lines(stdout):
    """[(event, rel, done, total)] of the printer's File[...] lines."""
    return [(m[0], m[1], int(m[2]), int(m[3]))
            for m in re.findall(r"^File\[(\w+)\] \S+ - (\S+): (\d+)/(\d+)$", stdout, re.M)]


def test_basic_example_downloads_with_progress(l2dfs_bin, origin, tmp_path):
    r = example(l2dfs_bin, origin, tmp_path / "cache", tmp_path / "app", BASIC)
    assert r.returncode == 0, r.stderr
    folder = tmp_path / "app" / "models" / NAME
    files, dirs = tree(folder)
    want_files, want_dirs = pulled(l2dfs_bin, origin, tmp_path, NAME)
    assert sorted(files) == sorted(want_files) and dirs == want_dirs
    for rel in want_files:
        assert files[rel] == want_files[rel], rel
    assert json.loads(files["model.json"]) == costume(origin).model_json
    # Hardlinked from the cache given to the client.
    c = costume(origin)
    for rel, url in c.files.items():
        assert os.stat(folder / rel).st_ino == os.stat(cache_path(tmp_path / "cache", url)).st_ino, rel
    # The events of each file, in order, and the model's count.
    events = file_lines(r.stdout)
    for rel, url in c.files.items():
        size = len(origin.expected(url))
        mine = [(e, d, t) for e, f, d, t in events if f == rel]
        kinds = [e for e, _, _ in mine]
        # "download" repeats with the bytes done while a file downloads.
        kinds = [k for i, k in enumerate(kinds) if i == 0 or k != kinds[i - 1]]
        assert kinds == ["download", "downloaded", "linked"], (rel, mine)
        assert mine[-1][1:] == (size, size), rel
    models = re.findall(r"^Model %s: (\d+)/(\d+) files done$" % NAME, r.stdout, re.M)
    total = int(models[0][1])
    assert [int(d) for d, _ in models] == list(range(total + 1))
    assert total == len(c.files) + len(c.missing)
    assert not any(f in ("model.json", "name.txt") for _, f, _, _ in events)


def test_basic_example_again_comes_from_the_cache(l2dfs_bin, origin, tmp_path):
    cache = tmp_path / "cache"
    assert example(l2dfs_bin, origin, cache, tmp_path / "a", BASIC).returncode == 0
    gets = origin.requests()
    r = example(l2dfs_bin, origin, cache, tmp_path / "b", BASIC)
    assert r.returncode == 0, r.stderr
    assert {e for e, _, _, _ in file_lines(r.stdout)} == {"cache_hit", "linked"}
    assert {k: n for k, n in origin.requests().items() if k.startswith("GET /assets/")} == \
        {k: n for k, n in gets.items() if k.startswith("GET /assets/")}
    # The folder filled already: skipped, nothing placed again.
    r = example(l2dfs_bin, origin, cache, tmp_path / "b", BASIC)
    assert r.returncode == 0 and {e for e, _, _, _ in file_lines(r.stdout)} == {"skipped"}


def test_name_txt_is_the_design_bytes(l2dfs_bin, origin, tmp_path):
    """DESIGN §3: the description in the chosen language, no trailing newline."""
    assert example(l2dfs_bin, origin, tmp_path / "cache", tmp_path / "app", BASIC).returncode == 0
    want = costume(origin).info["description"][3]
    assert (tmp_path / "app" / "models" / NAME / "name.txt").read_bytes() == want.encode()


def test_search_example(l2dfs_bin, origin, tmp_path):
    r = example(l2dfs_bin, origin, tmp_path / "cache", tmp_path / "app", SEARCH)
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    cli = Cli(l2dfs_bin, origin, tmp_path / "cache")
    # Every roster entry, as the original (not only the mount's characters).
    roster = json.loads(origin.expected("/api/characters/all.2.json"))
    listed = [{"id": k, "name": v["characterName"][3] or v["characterName"][0]} for k, v in roster.items()]
    assert out[0] == repr(listed) and {"id": "36", "name": "高松 灯"} in listed
    assert out[1] == "None"
    assert out[2] == repr({"id": "36", "name": "高松 灯"})
    assert out[3] == "找到角色: 高松 灯 (ID: 36)"
    binary = [x["live2d_name"] for x in json_lines(cli("costumes", "--id", "36", "--json").stdout)]
    assert out[4] == "服装列表: %r" % binary
    first = binary[0]
    assert out[5:] == ["正在下载服装: %s" % first, "下载完成"]
    files, _ = tree(tmp_path / "app" / "models" / first)
    want, _ = pulled(l2dfs_bin, origin, tmp_path, first)
    assert files == want


def test_search_costumes_in_the_design_order(l2dfs_bin, origin, tmp_path):
    """DESIGN §4 (the Python downloader's sort key)."""
    code = ("from live2d_download import BestdoriClient, Live2dService\n"
            "print(Live2dService(BestdoriClient(**SETTINGS)).search_costumes(36))\n")
    r = example(l2dfs_bin, origin, tmp_path / "cache", tmp_path / "app", code)
    assert r.returncode == 0, r.stderr
    names = eval(r.stdout)
    assert len(names) >= 4 and all(n.startswith("036_") for n in names)
    assert names == site_order(names)


def test_cancel_example(l2dfs_bin, origin, tmp_path):
    # About 1 s per texture: the download is under way when cancelled.
    origin.config(bandwidth=256 * 1024)
    cache = tmp_path / "cache"
    r = example(l2dfs_bin, origin, cache, tmp_path / "app", CANCEL)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["下载已取消", "thread ended within 1 s: True"]
    folder = tmp_path / "app" / "models" / SLOW
    # Nothing partial: whatever landed is whole, model.json is not written yet.
    c = costume(origin, SLOW)
    files, _ = tree(folder) if folder.exists() else ({}, set())
    assert "model.json" not in files
    assert set(files) < set(c.files) | {"name.txt"}
    for rel in set(files) & set(c.files):
        assert files[rel] == origin.expected(c.files[rel]), rel
    assert not temporaries(str(folder.parent)) and not temporaries(str(cache))
    # The next call finishes the job.
    origin.config(bandwidth=0)
    r = example(l2dfs_bin, origin, cache, tmp_path / "app", CANCEL.split("# --")[0].replace(
        "time.sleep(0.5)\ncancel.cancel()", "thread.join()"))
    assert r.returncode == 0 and "下载已取消" not in r.stdout, r.stderr
    files, _ = tree(folder)
    want, _ = pulled(l2dfs_bin, origin, tmp_path, SLOW)
    assert files == want


def test_progress_streams_while_downloading(l2dfs_bin, make_origin, tmp_path):
    """Callbacks come as the download runs (not at the end), download lines
    repeating with the bytes done."""
    origin = make_origin("--texture-size", str(3 << 20))
    origin.config(bandwidth=3 << 20)
    code = '''
        import time
        from pathlib import Path
        from live2d_download import BestdoriClient, Live2dDownloader
        seen = []
        def progress(*, file=None, model=None):
            if file is not None:
                seen.append((time.monotonic(), file.event, file.rel_path, file.bytes_done, file.bytes_total))
        Live2dDownloader(BestdoriClient(**SETTINGS)).download_live2d_name(
            "036_live_event_307_ssr", root_dir=Path("models"), progress=progress)
        end = time.monotonic()
        print([(end - t, e, f, d, n) for t, e, f, d, n in seen])
    '''
    r = example(l2dfs_bin, origin, tmp_path / "cache", tmp_path / "app", code)
    assert r.returncode == 0, r.stderr
    seen = eval(r.stdout)
    assert seen[0][0] > 0.5, "the first callback came only at the end"
    tex = [x for x in seen if x[2] == "textures/texture_00.png"]
    partial = [x for x in tex if x[1] == "download" and 0 < x[3] < (3 << 20)]
    assert partial, tex
    assert [x[3] for x in tex if x[1] == "download"] == sorted(x[3] for x in tex if x[1] == "download")


def test_service_names_icons_and_files(l2dfs_bin, origin, tmp_path):
    code = '''
        from live2d_download import BestdoriClient, Live2dService, Language, HttpStatusError
        s = Live2dService(BestdoriClient(**SETTINGS), language=Language.ENGLISH)
        out = {}
        out["name_en"] = s.get_costume_name("036_live_event_307_ssr")
        out["icon"] = len(s.get_costume_icon("036_live_event_307_ssr"))
        out["no_icon"] = s.get_costume_icon("036_school_winter-2023")
        c = s.build_costume("036_live_event_307_ssr")
        out["files"] = [(f.rel_path, f.kind, f.optional, f.source.bundle_name, f.source.file_name) for f in c.files]
        out["motions"] = sorted(c.categorize_motion_files())
        out["model_json"] = c.render_model_json()
        try:
            s.build_costume("036_no_such_costume")
        except HttpStatusError as e:
            out["unknown"] = e.status_code
        from pathlib import Path
        from live2d_download import Live2dDownloader, CancelToken, CancelledError
        d = Live2dDownloader(s.client)
        try:
            d.download_live2d_name("invalid_name", root_dir=Path("m"))
        except HttpStatusError as e:
            out["download_unknown"] = e.status_code
        token = CancelToken.new()
        token.cancel()
        try:
            d.download_live2d_name("036_live_event_307_ssr", root_dir=Path("m"), cancel=token)
        except CancelledError:
            out["cancelled_first"] = not Path("m").exists()
        out["tomori_all"] = s.search_character("Tomori", all_language_result=True)
        out["loose"] = s.search_character("Tomorrow", match_threshold=40)
        out["default"] = s.search_character("Tomorrow")
        out["strict"] = s.search_character("Tomorrow", match_threshold=80)
        out["no_live"] = s.search_costumes(36, include_live_event=False)
        print(repr(out))
    '''
    r = example(l2dfs_bin, origin, tmp_path / "cache", tmp_path / "app", code)
    assert r.returncode == 0, r.stderr
    out = eval(r.stdout)
    c = costume(origin)
    assert out["name_en"] == c.info["description"][1]
    _, _, icon = origin.request("GET", c.info["icon"])
    assert out["icon"] == len(icon) and out["no_icon"] is None
    want = [(f["rel"], f["bundle"], f["file"]) for f in c.info["files"] if f["rel"] != "icon.png"]
    assert [(rel, b, f) for rel, _, _, b, f in out["files"]] == want
    kinds = {rel: (k, opt) for rel, k, opt, _, _ in out["files"]}
    assert kinds["tomori_event307.moc"] == ("model", False)
    assert kinds["tomori_event307.physics.json"] == ("physics", True)
    assert kinds["textures/texture_00.png"] == ("texture", False)
    assert "idle" in out["motions"]
    assert out["model_json"] == c.model_json
    assert out["unknown"] == out["download_unknown"] == 404
    assert out["cancelled_first"] is True
    assert out["tomori_all"] == {"id": "36", "name": c.info["character_names"]}
    # "tomor", a prefix of "tomori takamatsu" shorter than the query: 200 * 5 / 13.
    assert out["loose"] is not None and out["default"] == {"id": "36", "name": "Tomori Takamatsu"}
    assert out["strict"] is None
    assert out["no_live"] and not any("live_event" in n for n in out["no_live"])


def test_constructor_settings_become_options(l2dfs_bin, origin, tmp_path):
    """Given settings go as -o; nothing else is added, and the environment
    (L2DFS_OPTIONS included) reaches l2dfs untouched."""
    log = tmp_path / "argv.log"
    wrapper = tmp_path / "l2dfs-wrapper"
    wrapper.write_text("#!/bin/sh\nprintf '%%s\\n' \"$L2DFS_OPTIONS\" \"$*\" >> %s\nexec %s \"$@\"\n"
                       % (log, l2dfs_bin))
    wrapper.chmod(0o755)
    code = '''
        from live2d_download import BestdoriClient, Live2dService, Server, Language
        import live2d_download._l2dfs as l
        print(l.options_arg(BestdoriClient().options))
        c = BestdoriClient(server=Server.JAPANESE, timeout_seconds=12, **SETTINGS)
        print(Live2dService(c, language=Language.KOREAN).search_costumes(36))
    '''
    r = example(str(wrapper), origin, tmp_path / "cache", tmp_path / "app", code,
                env={"L2DFS_BIN": str(wrapper), "L2DFS_OPTIONS": "retries=3"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "[]"
    env_line, argv = log.read_text().splitlines()
    assert env_line == "retries=3"
    opts = dict(kv.split("=", 1) for kv in argv.split(" -o ")[1].split(" ")[0].split(","))
    assert opts == {"server": "jp", "assets_url": origin.assets, "api_url": origin.api, "timeout": "12",
                    "cache_dir": str(tmp_path / "cache"), "retry_base_ms": "20", "lang": "ko"}


def test_works_with_no_mount_running(l2dfs_bin, origin, tmp_path):
    with open("/proc/self/mounts") as f:
        assert not any(" fuse.l2dfs " in line and str(tmp_path) in line for line in f)
    r = example(l2dfs_bin, origin, tmp_path / "cache", tmp_path / "app", SEARCH)
    assert r.returncode == 0 and r.stdout.splitlines()[-1] == "下载完成", r.stderr


def test_beside_a_mount_on_the_same_cache(l2dfs_bin, mount, origin, tmp_path):
    m = mount(opts={"prefetch": "off"})
    c = costume(origin)
    r = example(l2dfs_bin, origin, m.cache, tmp_path / "app", BASIC)
    assert r.returncode == 0, r.stderr
    folder = tmp_path / "app" / "models" / NAME
    for rel in c.files:
        with open(c.flat(m, rel), "rb") as f:
            assert (folder / rel).read_bytes() == f.read(), rel
        assert os.stat(folder / rel).st_ino == os.stat(cache_path(m.cache, c.files[rel])).st_ino
    # Each asset was fetched once, for both.
    gets = {k: n for k, n in origin.requests().items() if k.startswith("GET /assets/")
            and not k.endswith("buildData.asset")}
    assert gets and max(gets.values()) == 1, gets
    assert wait_for(lambda: m.alive(), 1)


def test_a_failed_file_raises_and_a_later_call_finishes(l2dfs_bin, origin, tmp_path):
    c = costume(origin)
    url = c.files["textures/texture_01.png"]
    fid = origin.fault(path=re.escape(url) + "$", kind="status", status=500)
    code = '''
        from pathlib import Path
        from live2d_download import BestdoriClient, Live2dDownloader, L2dfsError
        try:
            Live2dDownloader(BestdoriClient(**SETTINGS)).download_live2d_name(
                "036_live_event_307_ssr", root_dir=Path("models"))
            print("no error")
        except RuntimeError as e:
            print(type(e).__name__, getattr(e, "status", None), str(e))
    '''
    # The first back-off after a failure, shortened (DESIGN §10).
    env = {"L2DFS_RETRY_BACKOFF_MS": "1500"}
    r = example(l2dfs_bin, origin, tmp_path / "cache", tmp_path / "app", code, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("HttpStatusError 500 ") and "_rip/texture_01.png" in r.stdout, r.stdout
    assert not (tmp_path / "app" / "models" / NAME / "textures" / "texture_01.png").exists()
    origin.clear_fault(fid)
    # At once, the file is not asked again: the same error, no request sent.
    before = origin.count("GET", url)
    r = example(l2dfs_bin, origin, tmp_path / "cache", tmp_path / "app", code, env=env)
    assert r.stdout.startswith("HttpStatusError 500 ") and origin.count("GET", url) == before, r.stdout
    # Once the back-off has passed, a later call finishes the job.
    time.sleep(2)
    r = example(l2dfs_bin, origin, tmp_path / "cache", tmp_path / "app", code, env=env)
    assert r.stdout == "no error\n", r.stdout + r.stderr
    files, _ = tree(tmp_path / "app" / "models" / NAME)
    want, _ = pulled(l2dfs_bin, origin, tmp_path, NAME)
    assert files == want


def test_cli_cat_and_costumes_by_id(l2dfs_bin, origin, tmp_path):
    cli = Cli(l2dfs_bin, origin, tmp_path / "cache")
    c = costume(origin)
    r = subprocess.run(cli.argv("cat", NAME + "/textures/texture_00.png"), capture_output=True,
                       env=cli.env(), timeout=60)
    assert r.returncode == 0 and r.stdout == origin.expected(c.files["textures/texture_00.png"])
    r = subprocess.run(cli.argv("cat", NAME + "/model.json"), capture_output=True, env=cli.env(), timeout=60)
    assert r.returncode == 0 and json.loads(r.stdout) == c.model_json
    for missing in (NAME + "/textures/nope.png", "036_no_such/model.json", NAME + "/../x", NAME):
        assert cli("cat", missing).returncode == 1, missing
    assert cli("cat", "036_school_winter-2023/icon.png").returncode == 1  # not on the origin
    by_name = cli("costumes", "高松 灯").stdout
    assert by_name and cli("costumes", "--id", "36").stdout == by_name
    assert cli("costumes").returncode == 1 and cli("costumes", "高松 灯", "--id", "36").returncode == 1
    listed = json_lines(cli("characters", "--json").stdout)
    assert [x["id"] for x in listed] == sorted(x["id"] for x in listed)
    assert {"id": 36, "name": "高松 灯", "names": c.info["character_names"]} in listed


def test_where_the_old_downloader_was_wrong(l2dfs_bin, origin, tmp_path):
    """DESIGN §2-3: an icon answered with the site's HTML page is no icon;
    hostile names in buildData are dropped, never written outside."""
    c = costume(origin)
    origin.fault(path=re.escape(c.info["icon"]) + "$", kind="html")
    name = "036_casual-2023"
    own = "live2d/chara/" + name
    doc = json.loads(origin.expected("/assets/jp/live2d/chara/%s_rip/buildData.asset" % name))
    doc["Base"]["motions"] += [{"bundleName": own, "fileName": "../evil.mtn.bytes"}]
    doc["Base"]["textures"] += [{"bundleName": own, "fileName": "/abs.png"}]
    origin.build_data(name, json=doc)
    code = '''
        from pathlib import Path
        from live2d_download import BestdoriClient, Live2dDownloader
        d = Live2dDownloader(BestdoriClient(**SETTINGS))
        for n in ("036_live_event_307_ssr", "036_casual-2023"):
            d.download_live2d_name(n, root_dir=Path("models"))
        print(d.service.get_costume_icon("036_live_event_307_ssr"))
        print([f.rel_path for f in d.service.build_costume("036_casual-2023").files])
    '''
    r = example(l2dfs_bin, origin, tmp_path / "cache", tmp_path / "app", code)
    assert r.returncode == 0, r.stderr
    icon, rels = r.stdout.splitlines()
    assert icon == "None"
    assert not (tmp_path / "app" / "models" / NAME / "icon.png").exists()
    assert "evil" not in rels and "abs.png" not in rels
    files, _ = tree(tmp_path / "app")
    assert not any("evil" in p or "abs.png" in p for p in files)
    assert not any("evil" in p for p in os.listdir(tmp_path)) and not os.path.exists("/abs.png")
    mj = json.loads(files["models/036_casual-2023/model.json"])
    assert "evil" not in json.dumps(mj) and "abs.png" not in json.dumps(mj)


def test_colliding_textures_are_kept(l2dfs_bin, origin, tmp_path):
    """DESIGN §3: a later entry landing on the same path gets -2, in model.json too."""
    name = "036_casual-2023"
    doc = json.loads(origin.expected("/assets/jp/live2d/chara/%s_rip/buildData.asset" % name))
    tex = doc["Base"]["textures"]
    other = json.loads(origin.expected("/assets/jp/live2d/chara/036_live_event_307_ssr_rip/buildData.asset"))
    clash = dict(other["Base"]["textures"][0], fileName=tex[0]["fileName"])
    assert clash["bundleName"] != tex[0]["bundleName"]
    tex.append(clash)
    origin.build_data(name, json=doc)
    r = example(l2dfs_bin, origin, tmp_path / "cache", tmp_path / "app", '''
        from pathlib import Path
        from live2d_download import BestdoriClient, Live2dDownloader
        Live2dDownloader(BestdoriClient(**SETTINGS)).download_live2d_name("036_casual-2023", root_dir=Path("m"))
    ''')
    assert r.returncode == 0, r.stderr
    first = tex[0]["fileName"] if tex[0]["fileName"].endswith(".png") else tex[0]["fileName"] + ".png"
    stem, ext = os.path.splitext(first)
    folder = tmp_path / "app" / "m" / name
    mj = json.loads((folder / "model.json").read_text())
    assert mj["textures"][-1] == "textures/%s-2%s" % (stem, ext), mj["textures"]
    src = "/assets/jp/%s_rip/%s" % (clash["bundleName"], first)
    assert (folder / mj["textures"][-1]).read_bytes() == origin.expected(src)
    assert (folder / "textures" / first).read_bytes() == origin.expected(
        "/assets/jp/%s_rip/%s" % (tex[0]["bundleName"], first))


def test_costume_name_in_another_language(l2dfs_bin, origin, tmp_path):
    """DESIGN §3: no name in the language -> the first other one + （日服）,
    which get_costume_name gives only with other_language."""
    name = "036_school_winter-2023"
    desc = costume(origin, name).info["description"]
    assert desc[3] is None and desc[0]
    r = example(l2dfs_bin, origin, tmp_path / "cache", tmp_path / "app", '''
        from live2d_download import BestdoriClient, Live2dService
        s = Live2dService(BestdoriClient(**SETTINGS))
        print(repr((s.get_costume_name("036_school_winter-2023"),
                    s.get_costume_name("036_school_winter-2023", other_language=True),
                    s.get_costume_name("037_casual-2023", other_language=True))))
    ''')
    assert r.returncode == 0, r.stderr
    fallback = next(d for d in desc if d)
    assert eval(r.stdout) == (None, fallback + "（日服）", None)


FAILING = '''
import time
from pathlib import Path
from live2d_download.bestdori_client import BestdoriClient
from live2d_download.live2d_downloader import Live2dDownloader
from live2d_download.models import HttpStatusError

counts = []
def progress(*, file=None, model=None):
    if model is not None:
        counts.append((model.files_done, model.files_total))

t = time.monotonic()
try:
    Live2dDownloader(BestdoriClient(**SETTINGS)).download_live2d_name(
        "036_live_event_307_ssr", root_dir=Path("./models"), progress=progress)
    print("no error")
except HttpStatusError as e:
    print("HttpStatusError", e.status, e.status_code, e.url)
print("seconds", time.monotonic() - t)
print("last", counts[-1][0], counts[-1][1])
print("model.json", Path("./models/036_live_event_307_ssr/model.json").exists())
'''


def test_failed_download_is_an_http_status_error(l2dfs_bin, origin, tmp_path):
    """Issue 15: a file the origin answers 503 raises HttpStatusError(503) with
    the file's URL, files_done counts only files in place, and no model.json
    names the missing file."""
    origin.fault(path=r".*/texture_00\.png$", kind="status", status=503)
    r = example(l2dfs_bin, origin, tmp_path / "cache", tmp_path / "app", FAILING)
    assert r.returncode == 0, r.stderr
    out = dict(line.split(" ", 1) for line in r.stdout.splitlines())
    status, status_code, url = out["HttpStatusError"].split(" ")
    assert status == status_code == "503"
    assert url.startswith(origin.assets + "/jp/") and url.endswith("_rip/texture_00.png"), url
    done, total = map(int, out["last"].split())
    assert done < total
    assert out["model.json"] == "False"


DEFAULTS = '''
from live2d_download.bestdori_client import BestdoriClient
from live2d_download.live2d_downloader import Live2dDownloader
from live2d_download.live2d_service import Live2dService
client = BestdoriClient(**SETTINGS)
print(Live2dService(client).language)
print(Live2dDownloader(client).language)
print(Live2dDownloader(client).asset_cache.cache.cache_dir)
print(Live2dService(client).get_costume_icon("036_school_winter-2023"))
'''


def test_defaults_as_the_original(l2dfs_bin, origin, tmp_path):
    """language SIMPLIFIED_CHINESE, the asset cache shared with the client's
    l2dfs cache, and None for a costume without an icon."""
    r = example(l2dfs_bin, origin, tmp_path / "cache", tmp_path / "app", DEFAULTS)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["Language.SIMPLIFIED_CHINESE", "Language.SIMPLIFIED_CHINESE",
                                     str(tmp_path / "cache"), "None"]


DOCUMENT_URLS = '''
from pathlib import Path
from live2d_download.bestdori_client import BestdoriClient, CachePolicy
from live2d_download.live2d_service import Live2dService
api = ORIGIN + "/api"
client = BestdoriClient(base_assets_url=ORIGIN + "/assets", chara_roster_url=api + "/characters/all.2.json",
                        assets_index_url=api + "/explorer/jp/assets/_info.json",
                        costume_index_url=api + "/costumes/all.5.json", cache=CachePolicy(cache_dir=Path(CACHE)))
print(client.options["api_url"] == api, "roster_url" in client.options)
print(Live2dService(client).search_character("灯"))
odd = BestdoriClient(base_assets_url=ORIGIN + "/assets", chara_roster_url=ORIGIN + "/elsewhere/people.json",
                     assets_index_url=ORIGIN + "/files/jp-index.json",
                     costume_index_url=api + "/costumes/all.5.json", cache=CachePolicy(cache_dir=Path(CACHE + "2")))
print(sorted((k, v.replace(ORIGIN, "")) for k, v in odd.options.items() if k.endswith("_url")))
print(len(Live2dService(odd).list_characters()), len(odd.get_costume_index()))
'''


def test_constructor_with_the_document_urls(l2dfs_bin, origin, tmp_path):
    """The document's constructor: the four URLs and a CachePolicy. URLs at
    the site's layout give api_url=; others their own l2dfs options."""
    code = "ORIGIN = %r\nCACHE = %r\n" % (origin.url, str(tmp_path / "cache")) + DOCUMENT_URLS
    roster = json.loads(origin.expected("/api/characters/all.2.json"))
    costumes = json.loads(origin.expected("/api/costumes/all.5.json"))
    for path, odd in (("/api/characters/all.2.json", "/elsewhere/people.json"),
                      ("/api/explorer/jp/assets/_info.json", "/files/jp-index.json")):
        origin.document(odd, raw=origin.expected(path).decode())
    r = run_script(l2dfs_bin, tmp_path / "app", code)
    assert r.returncode == 0, r.stderr
    # The first client at the standard paths, the second at its own.
    for path in ("/api/characters/all.2.json", "/elsewhere/people.json", "/files/jp-index.json",
                 "/api/explorer/jp/assets/_info.json"):
        assert origin.count("GET", path) == 1, path
    assert origin.count("GET", "/api/costumes/all.5.json") == 2
    assert r.stdout.splitlines() == [
        "True False", "{'id': '36', 'name': '高松 灯'}",
        "[('api_url', '/api'), ('assets_index_url', '/files/jp-index.json'), ('assets_url', '/assets'),"
        " ('roster_url', '/elsewhere/people.json')]",
        "%d %d" % (len(roster), len(costumes))]


LOCAL_API = '''
import os, time
from pathlib import Path
from live2d_download.cache import CacheManager, cache_manager
from live2d_download.asset_cache import AssetCache, LinkMode
from live2d_download.models import validate_rel_path
from live2d_download.bestdori_client import BestdoriClient
from live2d_download.live2d_downloader import Live2dDownloader
from live2d_download.live2d_service import Live2dService
m = CacheManager(Path(CACHE))
out = {}
out["absent"] = m.read_cache("x.txt")
m.write_cache("x.txt", "文字")
m.write_cache("b.bin", b"\\xff\\x00")
out["text"], out["bytes"] = m.read_cache("x.txt"), m.read_cache("b.bin")
m.write_json("j.json", {"a": [1, "灯"]})
out["json"] = m.read_json("j.json")
m.write_expire_json("e.json", {"k": 1})
out["fresh"], out["expired"] = m.read_expire_json("e.json", 60), m.read_expire_json("e.json", -1)
m.atomic_write_bytes(Path(CACHE) / "deep" / "a.bin", lambda f: f.write(b"abc"))
out["atomic"] = (Path(CACHE) / "deep" / "a.bin").read_bytes()
out["module"] = isinstance(cache_manager, CacheManager)
src = Path(CACHE) / "src.bin"
src.write_bytes(b"body")
a = AssetCache(m)
out["materialize"] = [a.materialize_to(cache_path=src, dest_path=Path("d/one"), mode=LinkMode.AUTO),
                      a.materialize_to(cache_path=src, dest_path=Path("d/one")),
                      a.materialize_to(cache_path=src, dest_path=Path("d/two"), mode=LinkMode.COPY),
                      a.materialize_to(cache_path=src, dest_path=Path("d/one"), overwrite=True, mode=LinkMode.COPY)]
out["linked_ino"] = os.stat("d/two").st_ino != src.stat().st_ino
out["valid"] = validate_rel_path("textures/a.png")
bad = []
for p in ("", "/etc/passwd", "../x", "a/../b", "a\\\\b", "a/./b", "a//b", "c:/x", "a\\nb"):
    try:
        validate_rel_path(p)
    except ValueError:
        bad.append(p)
out["bad"] = len(bad)
client = BestdoriClient(**SETTINGS)
costume = Live2dService(client).build_costume("036_live_event_307_ssr")
Live2dDownloader(client).download_costume(costume, root_dir=Path("models"), download_name_and_icon=False)
folder = Path("models/036_live_event_307_ssr")
out["no_name_icon"] = (folder / "model.json").exists() and not (folder / "name.txt").exists() and not (folder / "icon.png").exists()
print(repr(out))
'''


def test_cache_manager_asset_cache_and_paths(l2dfs_bin, origin, tmp_path):
    """The original's CacheManager file API, AssetCache.materialize_to's
    words, models.validate_rel_path and download_name_and_icon=False."""
    code = settings(origin, tmp_path / "cache") + "CACHE = %r\n" % str(tmp_path / "cache") + LOCAL_API
    r = run_script(l2dfs_bin, tmp_path / "app", code)
    assert r.returncode == 0, r.stderr
    out = eval(r.stdout)
    assert out == {
        "absent": None, "text": "文字", "bytes": b"\xff\x00", "json": {"a": [1, "灯"]},
        "fresh": {"k": 1}, "expired": None, "atomic": b"abc", "module": True,
        "materialize": ["linked", "skipped", "copied", "copied"], "linked_ino": True,
        "valid": "textures/a.png", "bad": 9, "no_name_icon": True,
    }, out


ICONS = '''
import time
from live2d_download import BestdoriClient, Live2dService, HttpStatusError
c = BestdoriClient(**SETTINGS)
s = Live2dService(c)
out = {}
for name in ("036_live_event_307_ssr", "036_school_winter-2023", "037_casual-2023", "036_no_such_costume"):
    icon = s.get_costume_icon(name)
    out[name] = None if icon is None else len(icon)
    try:
        out["client " + name] = len(c.get_costume_icon(1, name))
    except HttpStatusError as e:
        out["client " + name] = (e.status_code, e.url.rsplit("/", 2)[-2:])
t = time.monotonic()
try:
    out["stalled"] = s.get_costume_icon(STALLED)
except RuntimeError as e:
    out["stalled"] = type(e).__name__
out["stalled_s"] = time.monotonic() - t
print(repr(out))
'''


def test_costume_icons_as_the_document_types_them(l2dfs_bin, origin, tmp_path):
    """Live2dService.get_costume_icon -> Optional[bytes]: None where the site
    has no icon (none, the costume not in the costume index, an unknown
    costume). BestdoriClient.get_costume_icon -> bytes: HttpStatusError(404)
    there, as for any non-2xx answer. An icon the origin stalls on ends
    within the client's timeout: a dialog waiting for it does not hang."""
    stalled = "036_casual-2023"
    origin.fault(path=r"/thumb/costume/.*/%s\.png$" % stalled, kind="hang", seconds=60)
    code = ICONS.replace("SETTINGS)", "SETTINGS, timeout_seconds=1)").replace("STALLED", repr(stalled))
    r = example(l2dfs_bin, origin, tmp_path / "cache", tmp_path / "app", code.replace(
        "options={'retry_base_ms': 20}", "options={'retry_base_ms': 20, 'retries': 0}"), timeout=120)
    assert r.returncode == 0, r.stderr
    out = eval(r.stdout)
    c = costume(origin)
    _, _, icon = origin.request("GET", c.info["icon"])
    assert out["036_live_event_307_ssr"] == out["client 036_live_event_307_ssr"] == len(icon)
    for name in ("036_school_winter-2023", "037_casual-2023", "036_no_such_costume"):
        assert out[name] is None, name
        status, tail = out["client " + name]
        assert status == 404 and tail[1] == name + ".png", out
    assert out["stalled"] == "L2dfsError" and out["stalled_s"] < 15, out
