"""The live2d_download package's roster and raw documents: every roster
character (not only those with costumes), and the catalogue documents as
l2dfs stored them (`l2dfs cat --doc`, `l2dfs search --all`)."""

import json
import os
import subprocess
import textwrap
import time

from helpers import REPO, costume
from test_cli_helpers import Cli
from test_python_api import example, run_script

SAMPLES = REPO / "tests" / "data" / "samples"
ROSTER = json.loads((SAMPLES / "api_characters_all.2.json").read_text())


def test_roster_lists_and_searches_every_character(l2dfs_bin, make_origin, tmp_path):
    origin = make_origin("--catalogue", "samples")
    code = '''
        from live2d_download import BestdoriClient, Live2dService, Language
        c = BestdoriClient(**SETTINGS)
        s = Live2dService(c)
        out = {}
        out["roster"] = c.get_characters_roster()
        out["list"] = s.list_characters()
        out["list_ja"] = Live2dService(c, language=Language.JAPANESE).list_characters()
        out["clerk"] = s.search_character("店员")
        out["clerk_all"] = s.search_character("Fast Food Clerk", all_language_result=True)
        out["tomori"] = s.search_character("高松 灯")
        out["nothing"] = s.search_character("qqqqqqqq")
        print(repr(out))
    '''
    r = example(l2dfs_bin, origin, tmp_path / "cache", tmp_path / "app", code)
    assert r.returncode == 0, r.stderr
    out = eval(r.stdout)
    assert out["roster"] == ROSTER and len(out["roster"]) == 264
    named = [k for k, v in ROSTER.items() if any(n is not None for n in v["characterName"])]
    assert [x["id"] for x in out["list"]] == named
    by_id = {x["id"]: x["name"] for x in out["list"]}
    for k, v in ROSTER.items():
        names = v["characterName"]
        # The original's name; the Japanese one where it has none in the language.
        assert by_id[k] == (names[3] if names[3] is not None else names[0] or next(n for n in names if n))
    assert {x["id"]: x["name"] for x in out["list_ja"]}["202"] == ROSTER["202"]["characterName"][0]
    # 202 is the first of the clerks ("快餐店 店员"): ties go to roster order.
    assert out["clerk"] == {"id": "202", "name": "快餐店 店员"}
    assert out["clerk_all"] == {"id": "202", "name": ROSTER["202"]["characterName"]}
    assert out["tomori"]["id"] == "36"
    assert out["nothing"] is None


def test_the_mount_and_characters_keep_only_characters_with_costumes(l2dfs_bin, make_origin, tmp_path):
    origin = make_origin("--catalogue", "samples")
    cli = Cli(l2dfs_bin, origin, tmp_path / "cache")
    listed = cli("characters", "--json")
    assert listed.returncode == 0, listed.stderr
    ids = {json.loads(x)["id"] for x in listed.stdout.splitlines()}
    assert 202 not in ids and 0 < len(ids) < len(ROSTER)
    r = cli("search", "--all", "--json", "店员")
    assert r.returncode == 0, r.stderr
    first = json.loads(r.stdout.splitlines()[0])
    assert first["id"] == 202 and first["names"] == ROSTER["202"]["characterName"]
    assert cli("search", "店员").returncode == 5


def test_cat_doc_prints_the_stored_documents(l2dfs_bin, origin, tmp_path):
    cli = Cli(l2dfs_bin, origin, tmp_path / "cache")
    for name, path in (("roster", "/api/characters/all.2.json"), ("assets", "/api/explorer/jp/assets/_info.json"),
                       ("costumes", "/api/costumes/all.5.json")):
        r = subprocess.run(cli.argv("cat", "--doc", name), capture_output=True, env=cli.env())
        assert r.returncode == 0, r.stderr
        assert r.stdout == origin.expected(path)
    name = "036_live_event_307_ssr"
    r = cli("cat", "--doc", name)
    assert r.returncode == 0, r.stderr
    bd = origin.expected("/assets/jp/live2d/chara/%s_rip/buildData.asset" % name)
    assert json.loads(r.stdout) == json.loads(bd)
    assert cli("cat", "--doc", "036_no_such_costume").returncode == 1
    assert cli("cat").returncode == 1
    assert cli("cat", "--doc", "roster", "%s/model.json" % name).returncode == 1


def test_raw_documents_in_the_package(l2dfs_bin, origin, tmp_path):
    name = "036_live_event_307_ssr"
    code = '''
        from live2d_download import BestdoriClient, HttpStatusError
        c = BestdoriClient(**SETTINGS)
        out = {}
        out["assets"] = c.get_assets_index()
        out["map"] = c.get_live2d_assets_map()
        out["costumes"] = c.get_costume_index()
        out["bd"] = c.get_build_data(%(name)r)
        try:
            c.get_build_data("036_no_such_costume")
        except HttpStatusError as e:
            out["bd_unknown"] = (e.status_code, e.url)
        out["chara"] = c.get_character(36)
        try:
            c.get_character(99999)
        except HttpStatusError as e:
            out["chara_unknown"] = e.status_code
        out["valid"] = c.validate_live2d_name(%(name)r)
        out["invalid"] = c.validate_live2d_name("036_no_such_costume")
        out["url"] = c.get_asset_url("live2d/chara/036_general", "idle01.mtn.bytes")
        print(repr(out))
    ''' % {"name": name}
    r = example(l2dfs_bin, origin, tmp_path / "cache", tmp_path / "app", code)
    assert r.returncode == 0, r.stderr
    out = eval(r.stdout)
    assets = json.loads(origin.expected("/api/explorer/jp/assets/_info.json"))
    assert out["assets"] == assets and out["map"] == assets["live2d"]["chara"]
    assert out["costumes"] == json.loads(origin.expected("/api/costumes/all.5.json"))
    assert out["bd"] == json.loads(origin.expected("/assets/jp/live2d/chara/%s_rip/buildData.asset" % name))
    assert out["bd_unknown"] == (404, origin.assets + "/jp/live2d/chara/036_no_such_costume_rip/buildData.asset")
    assert out["chara"] == json.loads(origin.expected("/api/characters/36.json"))
    assert out["chara"] != json.loads(origin.expected("/api/characters/all.2.json"))["36"]
    assert out["chara_unknown"] == 404
    assert out["valid"] is True and out["invalid"] is False
    assert out["url"] == origin.assets + "/jp/live2d/chara/036_general_rip/idle01.mtn"


def test_iter_download_asset_streams_through_the_cache(l2dfs_bin, origin, tmp_path):
    name = "036_live_event_307_ssr"
    code = '''
        from live2d_download import BestdoriClient, Live2dService, HttpStatusError
        c = BestdoriClient(**SETTINGS)
        files = Live2dService(c).build_costume(%(name)r).files
        out = {"streams": {}}
        for f in files:
            s = c.iter_download_asset(f.source.bundle_name, f.source.file_name, chunk_size=4096)
            with s:
                data = b"".join(s.iter_bytes())
            out["streams"][f.rel_path] = (len(data), s.downloaded_bytes, s.total_bytes)
        out["none"] = c.iter_download_asset("live2d/chara/036_general", "no_such.mtn", allow_not_found=True)
        try:
            c.iter_download_asset("live2d/chara/036_general", "no_such.mtn")
        except HttpStatusError as e:
            out["unknown"] = e.status_code
        print(repr(out))
    ''' % {"name": name}
    r = example(l2dfs_bin, origin, tmp_path / "cache", tmp_path / "app", code)
    assert r.returncode == 0, r.stderr
    out = eval(r.stdout)
    c = costume(origin, name)
    for f in c.info["files"]:
        if f["rel"] == "icon.png":
            continue
        size = len(origin.expected("/assets/jp/%s_rip/%s" % (f["bundle"], f["file"])))
        assert out["streams"][f["rel"]] == (size, size, size), f["rel"]
    assert out["none"] is None and out["unknown"] == 404


def test_a_stream_stops_within_a_second_of_its_cancel(l2dfs_bin, make_origin, tmp_path):
    origin = make_origin("--texture-size", str(3 << 20))
    origin.config(bandwidth=256 << 10)
    code = '''
        import threading, time
        from live2d_download import BestdoriClient, Live2dService, CancelToken, CancelledError
        c = BestdoriClient(**SETTINGS)
        tex = Live2dService(c).build_costume("036_live_event_307_ssr").find_file_by_kind("texture")[0]
        token = CancelToken.new()
        threading.Timer(1.0, token.cancel).start()
        t0 = time.monotonic()
        try:
            s = c.iter_download_asset(tex.source.bundle_name, tex.source.file_name, cancel=token)
            for _ in s.iter_bytes():
                pass
            print("finished", time.monotonic() - t0)
        except CancelledError:
            print("cancelled", time.monotonic() - t0)
    '''
    r = example(l2dfs_bin, origin, tmp_path / "cache", tmp_path / "app", code)
    assert r.returncode == 0, r.stderr
    what, took = r.stdout.split()
    assert what == "cancelled" and float(took) < 2.0, r.stdout


def test_asset_cache_get_or_download(l2dfs_bin, origin, tmp_path):
    cache = tmp_path / "cache"
    code = '''
        from pathlib import Path
        from live2d_download import AssetCache, AssetKey, BestdoriClient, CacheManager, Live2dService, Server
        c = BestdoriClient(**SETTINGS)
        ac = AssetCache(CacheManager(Path(%(cache)r)))
        f = Live2dService(c).build_costume("036_live_event_307_ssr").find_file_by_kind("motion")[0]
        key = AssetKey(f.source.bundle_name, f.source.file_name, Server.JAPANESE)
        seen = []
        open_it = lambda: c.iter_download_asset(key.bundle_name, key.file_name)
        first = ac.get_or_download(key=key, open_stream=open_it, allow_not_found=False,
                                   on_bytes=lambda d, t: seen.append((d, t)))
        again = ac.get_or_download(key=key, open_stream=open_it, allow_not_found=False)
        gone = AssetKey("live2d/chara/036_general", "no_such.mtn", Server.JAPANESE)
        missing = ac.get_or_download(key=gone, allow_not_found=True,
                                     open_stream=lambda: c.iter_download_asset(gone.bundle_name, gone.file_name,
                                                                               allow_not_found=True))
        class Other:
            downloaded_bytes, total_bytes = 0, 3
            def __enter__(self): return self
            def __exit__(self, *a): pass
            def iter_bytes(self):
                self.downloaded_bytes = 3
                yield b"abc"
        mine = ac.get_or_download(key=AssetKey("app", "x.bin", Server.JAPANESE), open_stream=Other,
                                  allow_not_found=False)
        print(repr((str(first.cache_path), first.status, str(again.path), again.hit, seen[-1],
                    missing.cache_path, missing.status, mine.status, mine.cache_path.read_bytes())))
    ''' % {"cache": str(cache)}
    r = example(l2dfs_bin, origin, cache, tmp_path / "app", code)
    assert r.returncode == 0, r.stderr
    path, status, path2, hit, last, mpath, mstatus, mine, mine_bytes = eval(r.stdout)
    assert status == "downloaded" and path2 == path and hit is True
    assert open(path, "rb").read() == origin.expected("/assets/jp/%s_rip/%s" % tuple(path.split("/jp/", 1)[1].rsplit("/", 1)))
    assert last[0] == len(open(path, "rb").read())
    assert mpath is None and mstatus == "missing"
    assert mine == "downloaded" and mine_bytes == b"abc"


def test_from_build_data_lists_what_a_pull_lists(l2dfs_bin, origin, tmp_path):
    name = "036_live_event_307_ssr"
    code = '''
        from live2d_download import BestdoriClient, Live2dCostume, Live2dService, ModelParseError
        c = BestdoriClient(**SETTINGS)
        built = Live2dService(c).build_costume(%(name)r)
        parsed = Live2dCostume.from_build_data(%(name)r, c.get_build_data(%(name)r))
        key = lambda f: (f.rel_path, f.kind, f.optional, f.source.bundle_name, f.source.file_name)
        try:
            Live2dCostume.from_build_data("x", {"Base": 5})
            bad = None
        except ModelParseError:
            bad = "ModelParseError"
        mj = parsed.render_model_json()
        files = [key(f) for f in parsed.files]
        parsed.files = [f for f in parsed.files if f.kind != "physics"]
        print(repr(([key(f) for f in built.files], files, parsed.live2d_name, bad, mj,
                    parsed.render_model_json(), built.render_model_json())))
    ''' % {"name": name}
    r = example(l2dfs_bin, origin, tmp_path / "cache", tmp_path / "app", code)
    assert r.returncode == 0, r.stderr
    built, parsed, parsed_name, bad, mj, no_physics, built_mj = eval(r.stdout)
    assert parsed == built and len(parsed) > 3 and parsed_name == name
    assert bad == "ModelParseError"
    # render_model_json of a costume from buildData: from the files it lists.
    assert mj == built_mj == costume(origin, name).model_json
    assert "physics" in mj and no_physics == {k: v for k, v in mj.items() if k != "physics"}


def test_cat_build_data_needs_no_network(l2dfs_bin, tmp_path):
    sample = SAMPLES / "jp_live2d_chara_001_live_event_332_r_rip_buildData.asset.json"
    # An origin nobody listens on: reading a given buildData asks it nothing.
    env = dict(Cli.env(), L2DFS_OPTIONS="api_url=http://127.0.0.1:9/api,assets_url=http://127.0.0.1:9/assets,"
                                        "cache_dir=%s" % (tmp_path / "c"))
    r = subprocess.run([l2dfs_bin, "cat", "--build-data", str(sample)], capture_output=True, text=True, env=env,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert lines[0] == {"rel_path": "kasumi_event332.moc", "kind": "model", "optional": False,
                        "bundle": "live2d/chara/001_live_event_332_r", "file": "kasumi_event332.moc"}
    assert {x["kind"] for x in lines} >= {"model", "texture", "motion", "expression"}
    # --model-json: the model.json those files give, Python's json.dumps bytes.
    r = subprocess.run([l2dfs_bin, "cat", "--build-data", str(sample), "--model-json"], capture_output=True,
                       env=env, timeout=30)
    assert r.returncode == 0, r.stderr
    mj = json.loads(r.stdout)
    assert r.stdout == json.dumps(mj, ensure_ascii=False, indent=2).encode()
    assert mj["model"] == lines[0]["rel_path"]
    assert mj["textures"] == [x["rel_path"] for x in lines if x["kind"] == "texture"]
    assert sum(len(v) for v in mj["motions"].values()) == len([x for x in lines if x["kind"] == "motion"])
    assert subprocess.run([l2dfs_bin, "cat", "--model-json", "036_x/model.json"], capture_output=True, env=env,
                          timeout=30).returncode == 1
    assert not (tmp_path / "c").exists()


STANDARD = {"roster_url": "/api/characters/all.2.json", "assets_index_url": "/api/explorer/jp/assets/_info.json",
            "costume_index_url": "/api/costumes/all.5.json"}
ODD = {"roster_url": "/elsewhere/people.json", "assets_index_url": "/files/jp-index.json",
       "costume_index_url": "/deep/down/costumes.json"}


def move_documents(origin):
    """The three catalogue documents served only at ODD's paths; their
    standard paths answer 404."""
    for opt, path in STANDARD.items():
        origin.document(ODD[opt], raw=origin.expected(path).decode())
        origin.document(path, missing=True)
    return {opt: origin.url + path for opt, path in ODD.items()}


def test_documents_at_their_own_urls(l2dfs_bin, origin, mount, tmp_path):
    """-o roster_url=,assets_index_url=,costume_index_url=: each document
    from its own URL, in a subcommand and a mount; nothing at the standard paths."""
    want = {opt: origin.expected(path) for opt, path in STANDARD.items()}
    urls = move_documents(origin)
    cli = Cli(l2dfs_bin, origin, tmp_path / "cache", opts=urls)
    for name, opt in (("roster", "roster_url"), ("assets", "assets_index_url"), ("costumes", "costume_index_url")):
        r = subprocess.run(cli.argv("cat", "--doc", name), capture_output=True, env=cli.env(), timeout=60)
        assert r.returncode == 0, r.stderr
        assert r.stdout == want[opt]
    gets = origin.requests()
    assert all(gets.get("GET " + path) == 1 for path in ODD.values()), gets
    assert not any(gets.get("GET " + path) for path in STANDARD.values()), gets
    # Without the options, the standard paths: no catalogue.
    assert Cli(l2dfs_bin, origin, tmp_path / "other")("characters").returncode == 5
    m = mount(cache_dir=tmp_path / "mcache", opts=urls)
    assert "高松 灯" in os.listdir(os.path.join(m.path, "characters"))
    # Its own URL failing, the stored copy serves, as for the standard paths.
    time.sleep(1.1)
    r = cli("characters", opts={"roster_url": origin.url + "/elsewhere/gone.json", "catalogue_ttl": "1s"})
    assert r.returncode == 0 and "高松 灯" in r.stdout, r.stderr
    assert origin.count("GET", "/elsewhere/gone.json") == 1


def test_cat_doc_character(l2dfs_bin, make_origin, tmp_path):
    """cat --doc character:ID: the site's /characters/<id>.json, kept like the
    other documents (the TTL, the stale copy while the origin fails)."""
    origin = make_origin("--catalogue", "samples")
    cli = Cli(l2dfs_bin, origin, tmp_path / "cache")
    want = (SAMPLES / "api_characters_37.json").read_bytes()
    r = subprocess.run(cli.argv("cat", "--doc", "character:37"), capture_output=True, env=cli.env(), timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == want
    # Kept: asked once however often it is read.
    assert subprocess.run(cli.argv("cat", "--doc", "character:37"), capture_output=True,
                          env=cli.env(), timeout=60).stdout == want
    assert origin.count("GET", "/api/characters/37.json") == 1
    assert cli("cat", "--doc", "character:99999").returncode == 1
    assert cli("cat", "--doc", "character:x").returncode == 1
    # Older than the TTL and the origin down: the stale copy.
    origin.fault(path=r"^/api/characters/37\.json$", kind="status", status=503)
    time.sleep(1.1)
    r = subprocess.run(cli.argv("cat", "--doc", "character:37", opts={"catalogue_ttl": "1s", "retries": 0}),
                       capture_output=True, env=cli.env(), timeout=60)
    assert r.returncode == 0 and r.stdout == want, r.stderr
    assert origin.count("GET", "/api/characters/37.json") == 2
    r = cli("cat", "--doc", "character:36", opts={"retries": 0, "catalogue_ttl": "1s"})
    assert r.returncode == 0 and json.loads(r.stdout)["characterName"] == ROSTER["36"]["characterName"]


def test_cache_policy_ttl(l2dfs_bin, origin, tmp_path):
    """CachePolicy(ttl_seconds=) is how long the documents are kept
    (catalogue_ttl=); enabled=False asks again at each call a second apart;
    the default keeps them 24 h."""
    code = '''
        import time
        from pathlib import Path
        from live2d_download import BestdoriClient
        from live2d_download.bestdori_client import CachePolicy
        for i, policy in enumerate((dict(), dict(ttl_seconds=1), dict(enabled=False))):
            c = BestdoriClient(base_assets_url=%(assets)r, base_api_url=%(api)r,
                               cache=CachePolicy(cache_dir=Path(%(cache)r + str(i)), **policy))
            c.get_characters_roster()
            time.sleep(1.1)
            c.get_characters_roster()
            print(c.options.get("catalogue_ttl"))
    ''' % {"assets": origin.assets, "api": origin.api, "cache": str(tmp_path / "c")}
    r = run_script(l2dfs_bin, tmp_path / "app", textwrap.dedent(code))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["None", "1s", "1s"]
    # Once for the default policy, twice for each of the others.
    assert origin.count("GET", "/api/characters/all.2.json") == 5


def test_a_stream_gives_bytes_before_the_file_is_complete(l2dfs_bin, make_origin, tmp_path):
    origin = make_origin("--texture-size", str(1 << 20))
    origin.config(bandwidth=256 << 10)
    cache = tmp_path / "cache"
    code = '''
        import os
        from live2d_download import BestdoriClient, Live2dService
        c = BestdoriClient(**SETTINGS)
        tex = Live2dService(c).build_costume("036_live_event_307_ssr").find_file_by_kind("texture")[0]
        path = os.path.join(%(cache)r, "live2d/assets/jp", tex.source.bundle_name, tex.source.file_name)
        first = None
        s = c.iter_download_asset(tex.source.bundle_name, tex.source.file_name, chunk_size=16384)
        with s:
            for chunk in s.iter_bytes():
                if first is None:
                    first = (s.downloaded_bytes, os.path.exists(path))
        print(repr((first, s.total_bytes, os.path.getsize(path))))
    ''' % {"cache": str(cache)}
    r = example(l2dfs_bin, origin, cache, tmp_path / "app", code)
    assert r.returncode == 0, r.stderr
    (first_bytes, cached_then), total, cached_size = eval(r.stdout)
    # The first bytes came while the download was under way (the file not
    # yet in the cache), and the whole file was cached after.
    assert first_bytes < total and not cached_then, r.stdout
    assert total == cached_size == 1 << 20


def test_a_stream_cut_short_fails(l2dfs_bin, make_origin, tmp_path):
    origin = make_origin("--texture-size", str(1 << 20))
    origin.fault(path=r"texture_00\.png$", method="GET", kind="short")
    code = '''
        from live2d_download import BestdoriClient, Live2dService, L2dfsError
        c = BestdoriClient(**SETTINGS)
        tex = [f for f in Live2dService(c).build_costume("036_live_event_307_ssr").files
               if f.rel_path.endswith("texture_00.png")][0]
        got = 0
        try:
            with c.iter_download_asset(tex.source.bundle_name, tex.source.file_name, retries=0) as s:
                for chunk in s.iter_bytes():
                    got += len(chunk)
            print("finished", got)
        except L2dfsError as e:
            print("failed", got)
    '''
    r = example(l2dfs_bin, origin, tmp_path / "cache", tmp_path / "app", code)
    assert r.returncode == 0, r.stderr
    what, got = r.stdout.split()
    assert what == "failed" and int(got) < 1 << 20, r.stdout
