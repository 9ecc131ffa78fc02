"""The whole API document of the Python downloader, one script
(whole_api.py, written from the document alone) run with python/live2d_download
against the fixture origin's real documents (--catalogue samples), the
documents at URLs of their own. Every answer is checked against what the
original package answers, derived here from the raw fixture documents and
the document's rules, not from l2dfs; where this package deliberately
differs, DIFFERENCES names the answer, why, and what it gives instead.

The original package is not installed here, nor rapidfuzz (Debian has no
python3-rapidfuzz): the original's fuzzy scores are computed by
rapidfuzz's definition of partial_ratio (original_ratio below, the
reference of test_search_table.py without its NFKC folding).

The signatures of every documented function are checked against the
document in test_signatures_as_documented."""

import hashlib
import inspect
import json
import re
import subprocess
import sys

import pytest

from helpers import REPO
from test_cli_helpers import Cli
from test_python_api import PACKAGE
from test_search_table import reference_ratio

SCRIPT = REPO / "tests" / "integration" / "whole_api.py"
NAME = "027_live_event_242_sr"
OTHER_LANGUAGE = "001_collabo_d_1_ur"
LANG = 3  # SIMPLIFIED_CHINESE

# Answers where this package deliberately differs from the original: why.
# (python/README.md lists the same.)
DIFFERENCES = {
    "list": "a character with no name in the language is listed under its Japanese name (the original: None); "
            "one with no name at all is left out",
    "list_ja": "as list (the original's None names replaced)",
    "search_all": "NFKC before scoring: full-width ＴＯＭＯＲＩ finds character 36 (the original: None)",
    "costumes_36": "bili_036_… collaboration costumes are listed under their character",
    "costumes_1": "bili_001_… collaboration costumes are listed under their character",
    "costumes_36_no_live": "include_live_event=False leaves out live_event costumes (the original's excludes "
                           "nothing); bili_… listed",
    "result": "icon.png is among downloaded_files",
    "last_model_progress": "icon.png counts in ModelProgress",
}


def digest(data):
    return None if data is None else [len(data), hashlib.sha256(data).hexdigest()]


def original_ratio(a, b):
    """rapidfuzz's fuzz.partial_ratio(a.lower(), b.lower()), as the original
    calls it: the shorter string against every window of its length and the
    longer one's prefixes and suffixes shorter than it."""
    return reference_ratio(a, b, fold=str.lower)


def best(roster, query, all_languages, threshold=75, ratio=original_ratio):
    """search_character: the best score at or above threshold over the
    names in the language (all five with all_language_result), ties to the
    first in roster order."""
    top, score = None, -1.0
    for cid, entry in roster.items():
        names = entry["characterName"]
        cands = [n for n in (names if all_languages else [names[LANG]]) if n]
        s = max((ratio(query, n) for n in cands), default=0.0)
        if s > score:
            top, score = cid, s
    if score < threshold:
        return None
    names = roster[top]["characterName"]
    return {"id": top, "name": names if all_languages else names[LANG]}


def site_key(name):
    tail = name.split("_", 1)[1] if "_" in name else name
    m = re.search(r"\d+", tail)
    return (name.endswith("live_event"), float(m.group(0)) if m else float("inf"), name)


KINDS = {"model": "model", "physics": "physics", "textures": "texture", "motions": "motion",
         "expressions": "expression"}


def expectations(origin):
    """{answer: what the original package answers} from the raw documents."""
    raw = lambda path: json.loads(origin.expected(path))  # noqa: E731
    roster = raw("/api/characters/all.2.json")
    assets = raw("/api/explorer/jp/assets/_info.json")
    chara_map = assets["live2d"]["chara"]
    costumes = raw("/api/costumes/all.5.json")
    info = origin.costume(NAME)
    files = [f for f in info["files"] if f["field"] != "icon"]
    specs = [[f["rel"], KINDS[f["field"]], f["field"] == "physics", f["bundle"], f["file"]] for f in files]
    groups = {}
    for f in files:
        if f["field"] == "motions":
            stem = f["rel"].rsplit("/", 1)[1].rsplit(".", 1)[0]
            groups.setdefault("".join(c for c in stem if c.isascii() and c.isalpha()), []).append(f["rel"])
    tex = next(f for f in files if f["field"] == "textures")
    motion = next(f for f in files if f["field"] == "motions")
    icon = origin.expected(info["icon"])
    desc = info["description"]
    on_disk = {f["rel"]: digest(origin.expected(f["url"])) for f in files}
    on_disk.update({"icon.png": digest(icon), "name.txt": digest(desc[LANG].encode()),
                    "model.json": digest(json.dumps(info["model_json"], ensure_ascii=False, indent=2).encode())})
    other = origin.costume(OTHER_LANGUAGE)["description"]

    def of(chara):
        return sorted((n for n in chara_map if n.startswith("%03d_" % chara) and not n.endswith("general")),
                      key=site_key)

    def listed(lang):
        return [{"id": k, "name": v["characterName"][lang]} for k, v in roster.items()]

    not_found = "%s/jp/live2d/chara/%%s_rip/buildData.asset" % origin.assets
    return {
        "roster": roster, "character_37": raw("/api/characters/37.json"), "assets_index": assets,
        "live2d_map": chara_map, "costume_index": costumes, "valid": [True, False],
        "build_data": raw("/assets/jp/live2d/chara/%s_rip/buildData.asset" % NAME),
        "build_data_unknown": ["HttpStatusError", 404, not_found % "036_no_such_costume"],
        "service_language": "Language.SIMPLIFIED_CHINESE",
        "list": listed(LANG), "list_ja": listed(0),
        "search": {q: best(roster, q, False) for q in ("灯", "高松燈", "Tomori", "店员", "香澄", "xyz", "爱音",
                                                        "千早爱音")},
        "search_loose": best(roster, "Tomorrow", False, threshold=40),
        "search_all": {q: best(roster, q, True) for q in ("Tomori", "kasumi", "ＴＯＭＯＲＩ")},
        "costumes_36": of(36), "costumes_36_no_live": of(36), "costumes_1": of(1),
        "icon": digest(icon), "icon_none": None, "client_icon": digest(icon),
        "files": specs, "parsed_files": specs,
        "by_kind": {k: sum(1 for s in specs if s[1] == k) for k in KINDS.values()},
        "motion_groups": groups, "model_json": info["model_json"], "parsed_model_json": info["model_json"],
        "build_unknown": ["HttpStatusError", 404, not_found % "036_no_such_costume"],
        "stream_type": True,
        "stream": [digest(origin.expected(tex["url"])), len(origin.expected(tex["url"])),
                   len(origin.expected(tex["url"]))],
        "stream_missing": None,
        "asset_url": origin.assets + tex["url"][len("/assets"):],
        "cache_path": "live2d/assets/jp/%s/%s" % (motion["bundle"], motion["file"]),
        "get_or_download": [True, digest(origin.expected(motion["url"])), len(origin.expected(motion["url"]))],
        "get_or_download_again": True,
        "materialize": ["linked", "skipped", "copied"],
        "cache_manager": [{"k": ["灯", 1]}, {"x": 2}, None, "a/b.txt"],
        "downloader_asset_cache": True,
        "result": [True, NAME, "models/" + NAME, sorted(s[0] for s in specs), []],
        "on_disk": on_disk,
        "events": ["cache_hit", "download", "downloaded", "linked"],
        "last_model_progress": [len(specs), len(specs)],
        "other_language_name": next(d for d in other if d) + "（日服）",
        "again_skipped": True,
        "cancelled": ["CancelledError"],
        "download_unknown": ["HttpStatusError", 404, not_found % "invalid_name"],
    }


def ours_where_different(want, roster, chara_map):
    """What this package answers instead, for each of DIFFERENCES."""
    def named(lang):
        out = []
        for k, v in roster.items():
            names = v["characterName"]
            name = names[lang] if names[lang] is not None else next((n for n in names if n is not None), None)
            if name is not None:
                out.append({"id": k, "name": name})
        return out

    def with_bili(chara, live=True):
        return [n for n in chara_map if n.startswith("bili_%03d_" % chara)], [
            n for n in want["costumes_%d" % chara] if live or "live_event" not in n]

    b36, o36 = with_bili(36)
    b1, o1 = with_bili(1)
    _, o36n = with_bili(36, live=False)
    all_ = dict(want["search_all"])
    all_["ＴＯＭＯＲＩ"] = best(roster, "ＴＯＭＯＲＩ", True, ratio=reference_ratio)
    result = list(want["result"])
    result[3] = sorted(result[3] + ["icon.png"])
    n = want["last_model_progress"][0] + 1
    return {
        "list": named(LANG), "list_ja": named(0), "search_all": all_,
        "costumes_36": sorted(o36 + b36, key=site_key), "costumes_1": sorted(o1 + b1, key=site_key),
        "costumes_36_no_live": sorted(o36n + b36, key=site_key),
        "result": result, "last_model_progress": [n, n],
    }


def test_the_whole_document(l2dfs_bin, make_origin, tmp_path):
    origin = make_origin("--catalogue", "samples")
    want = expectations(origin)
    # Two documents at URLs of their own, as the constructor allows.
    urls = {"roster": "/elsewhere/people.json", "assets": "/files/jp-index.json"}
    for path, odd in (("/api/characters/all.2.json", urls["roster"]),
                      ("/api/explorer/jp/assets/_info.json", urls["assets"])):
        origin.document(odd, raw=origin.expected(path).decode())
        origin.document(path, missing=True)
    env = dict(Cli.env(), PYTHONPATH=str(PACKAGE), L2DFS_BIN=l2dfs_bin)
    env.pop("L2DFS_OPTIONS", None)
    r = subprocess.run([sys.executable, "-B", str(SCRIPT), origin.url, origin.url + urls["roster"],
                        origin.url + urls["assets"], origin.api + "/costumes/all.5.json",
                        str(tmp_path / "cache"), str(tmp_path / "work")],
                       capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-4000:]
    got = json.loads(r.stdout)
    assert sorted(got) == sorted(want)
    instead = ours_where_different(want, want["roster"], want["live2d_map"])
    assert sorted(instead) == sorted(DIFFERENCES)
    equal, different = [], []
    for key in want:
        if key in DIFFERENCES:
            assert got[key] != want[key], "%s: no longer differs from the original" % key
            assert got[key] == instead[key], key
            different.append(key)
        else:
            assert got[key] == want[key], key
            equal.append(key)
    # The origin was asked only at the documents' own URLs.
    gets = origin.requests()
    assert gets.get("GET " + urls["roster"]) == 1 and gets.get("GET " + urls["assets"]) == 1, gets
    assert not gets.get("GET /api/characters/all.2.json") and not gets.get("GET /api/explorer/jp/assets/_info.json")
    # Counted one by one: each search query and each file on disk is an answer.
    count = lambda keys: sum(len(want[k]) if k in ("search", "search_all", "on_disk") else 1  # noqa: E731
                             for k in keys)
    print("\n%d answers (%d items) compared: %d (%d) equal to the original's, %d deliberate differences (%s)"
          % (len(want), count(want), len(equal), count(equal), len(different), ", ".join(different)))
    assert len(equal) + len(different) == len(want) >= 45


# Every documented function: (module, qualified name, signature in the document).
DOCUMENTED = [
    ("models", "CancelToken.new", "(cls)"),
    ("models", "CancelToken.cancel", "(self)"),
    ("models", "CancelToken.cancelled", "(self)"),
    ("models", "CancelToken.raise_if_cancelled", "(self)"),
    ("models", "Live2dCostume.from_build_data", "(cls, live2d_name, build_data)"),
    ("models", "Live2dCostume.render_model_json", "(self)"),
    ("models", "Live2dCostume.find_file_by_kind", "(self, kind)"),
    ("models", "Live2dCostume.categorize_motion_files", "(self)"),
    ("models", "Live2dFileSpec", "(source, rel_path, optional=False, kind='unknown')"),
    ("models", "FileProgress", "(live2d_name, rel_path, bytes_done, bytes_total, event)"),
    ("models", "ModelProgress", "(live2d_name, files_done, files_total)"),
    ("cache", "CacheManager", "(cache_dir=...)"),
    ("cache", "CacheManager.read_cache", "(self, filename)"),
    ("cache", "CacheManager.write_cache", "(self, filename, data)"),
    ("cache", "CacheManager.read_json", "(self, filename)"),
    ("cache", "CacheManager.write_json", "(self, filename, data)"),
    ("cache", "CacheManager.read_expire_json", "(self, filename, expire_seconds)"),
    ("cache", "CacheManager.write_expire_json", "(self, filename, data)"),
    ("cache", "CacheManager.resolve_path", "(self, rel)"),
    ("cache", "CacheManager.atomic_write_bytes", "(self, dest, write_fn)"),
    ("asset_cache", "AssetCache", "(cache=..., *, namespace='live2d')"),
    ("asset_cache", "AssetCache.global_default", "(cls)"),
    ("asset_cache", "AssetCache.get_cache_path", "(self, key)"),
    ("asset_cache", "AssetCache.get_or_download",
     "(self, *, key, open_stream, allow_not_found, cancel=None, on_bytes=None)"),
    ("asset_cache", "AssetCache.materialize_to",
     "(self, *, cache_path, dest_path, mode=<LinkMode.AUTO: 'auto'>, overwrite=False)"),
    ("bestdori_client", "BestdoriClient",
     "(*, server=<Server.JAPANESE: 'jp'>, base_assets_url='https://bestdori.com/assets', timeout_seconds=30.0,"
     " session=None, cache=None, user_agent='bestdori-live2d-downloader-python/0.1')"),
    ("bestdori_client", "BestdoriClient.get_characters_roster", "(self)"),
    ("bestdori_client", "BestdoriClient.get_character", "(self, chara_id)"),
    ("bestdori_client", "BestdoriClient.get_assets_index", "(self)"),
    ("bestdori_client", "BestdoriClient.get_live2d_assets_map", "(self)"),
    ("bestdori_client", "BestdoriClient.validate_live2d_name", "(self, live2d_name)"),
    ("bestdori_client", "BestdoriClient.get_build_data", "(self, live2d_name)"),
    ("bestdori_client", "BestdoriClient.get_costume_index", "(self)"),
    ("bestdori_client", "BestdoriClient.get_costume_icon", "(self, costume_id, live2d_name)"),
    ("bestdori_client", "BestdoriClient.iter_download_asset",
     "(self, bundle_name, file_name, *, cancel=None, allow_not_found=False, chunk_size=262144, retries=3,"
     " backoff_base=0.5)"),
    ("bestdori_client", "DownloadStream", "(resp, chunk_size, cancel=None, total_bytes=None, downloaded_bytes=0)"),
    ("bestdori_client", "DownloadStream.close", "(self)"),
    ("bestdori_client", "DownloadStream.iter_bytes", "(self)"),
    ("bestdori_client", "CachePolicy", "(enabled=True, ttl_seconds=86400, cache_dir=None)"),
    ("live2d_service", "Live2dService",
     "(client, language=<Language.SIMPLIFIED_CHINESE: 3>)"),
    ("live2d_service", "Live2dService.list_characters", "(self)"),
    ("live2d_service", "Live2dService.search_character", "(self, name, *, match_threshold=75)"),
    ("live2d_service", "Live2dService.search_costumes", "(self, chara_id, *, include_live_event=True)"),
    ("live2d_service", "Live2dService.get_costume_icon", "(self, live2d_name)"),
    ("live2d_service", "Live2dService.build_costume", "(self, live2d_name)"),
    ("live2d_downloader", "Live2dDownloader",
     "(client, language=<Language.SIMPLIFIED_CHINESE: 3>, *, max_workers=10, use_asset_cache=True,"
     " asset_cache=None, link_mode=<LinkMode.AUTO: 'auto'>)"),
    ("live2d_downloader", "Live2dDownloader.download_costume",
     "(self, costume, *, root_dir, overwrite=False, cancel=None, progress=None)"),
    ("live2d_downloader", "Live2dDownloader.download_live2d_name",
     "(self, live2d_name, *, root_dir, overwrite=False, cancel=None, progress=None)"),
    ("live2d_downloader", "DownloadResult", "(live2d_name, model_dir, downloaded_files, skipped_files)"),
]

# Where the signature deliberately differs: (qualified name, what) -> why.
SIGNATURE_DIFFERENCES = {
    ("FileProgress", "event"): "defaults to 'download'",
    ("CacheManager", "cache_dir"): "defaults to None: l2dfs's cache folder",
    ("AssetCache", "cache"): "defaults to None: a CacheManager on l2dfs's cache folder",
    ("BestdoriClient", "server"): "None: whatever l2dfs is told (L2DFS_OPTIONS), jp by default",
    ("BestdoriClient", "base_assets_url"): "None: l2dfs's default, https://bestdori.com/assets",
    ("BestdoriClient", "timeout_seconds"): "None: l2dfs's default, 30 s",
    ("BestdoriClient", "user_agent"): "None: l2dfs's own, l2dfs/<version>",
    ("BestdoriClient", "+"): "more keywords: base_api_url, chara_roster_url, assets_index_url, "
                             "costume_index_url (the constructor of the issue), options",
    ("Live2dService.search_character", "+"): "all_language_result=False, as the original's code has it",
    ("Live2dDownloader.download_costume", "+"): "download_name_and_icon=True, as the original's code has it",
}


def parse_doc_signature(text):
    """[(name, kind, default text or None)] of "(a, b=1, *, c)"."""
    out, kind = [], inspect.Parameter.POSITIONAL_OR_KEYWORD
    for part in [p.strip() for p in text.strip("()").split(", ") if p.strip()]:
        if part == "*":
            kind = inspect.Parameter.KEYWORD_ONLY
            continue
        name, _, default = part.partition("=")
        out.append((name, kind, default or None))
    return out


def test_signatures_as_documented():
    sys.path.insert(0, str(PACKAGE))
    try:
        import importlib
        checked, used = 0, set()
        for module, qual, doc in DOCUMENTED:
            obj = importlib.import_module("live2d_download." + module)
            for part in qual.split("."):
                obj = getattr(obj, part)
            sig = inspect.signature(obj)
            params = list(sig.parameters.values())
            if qual.split(".")[-1][0].islower() and isinstance(inspect.getattr_static(
                    importlib.import_module("live2d_download." + module).__dict__[qual.split(".")[0]],
                    qual.split(".")[-1]), classmethod):
                params = [inspect.Parameter("cls", inspect.Parameter.POSITIONAL_OR_KEYWORD)] + params
            want = parse_doc_signature(doc)
            by_name = {p.name: p for p in params}
            for i, (name, kind, default) in enumerate(want):
                # Positional parameters in their order; keyword-only ones by name.
                p = params[i] if kind != inspect.Parameter.KEYWORD_ONLY and i < len(params) else by_name.get(name)
                assert p is not None and p.name == name, (qual, name, [p.name for p in params])
                assert p.kind == kind, (qual, name)
                if (qual, name) in SIGNATURE_DIFFERENCES:
                    assert repr(p.default) != default, (qual, name, "no longer differs")
                    used.add((qual, name))
                elif default is not None and default != "...":
                    assert repr(p.default) == default, (qual, name, p.default)
            names = {n for n, _, _ in want}
            extra = [p for p in params if p.name not in names and not p.name.startswith("_")]
            assert not extra or (qual, "+") in SIGNATURE_DIFFERENCES, (qual, [p.name for p in extra])
            if extra:
                used.add((qual, "+"))
            assert all(p.default is not inspect.Parameter.empty for p in extra), qual
            checked += 1
        assert checked == len(DOCUMENTED) and used == set(SIGNATURE_DIFFERENCES), set(SIGNATURE_DIFFERENCES) - used
    finally:
        sys.path.remove(str(PACKAGE))


@pytest.mark.parametrize("query", ["高松燈", "灯", "千早爱音", "Tomori"])
def test_the_original_ratio_is_the_reference_on_plain_input(query):
    """Without full-width characters the original's scores (lower()) and
    l2dfs's (NFKC, casefold) agree: the only search difference is the listed one."""
    for name in ("高松 灯", "千早 爱音", "Tomori Takamatsu", "快餐店 店员"):
        assert original_ratio(query, name) == reference_ratio(query, name)
