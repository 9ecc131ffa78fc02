"""One script over the whole API document of live2d_download (the Python
downloader's), written from the document alone: it runs unchanged with the
original package or with python/live2d_download, against any origin shaped
like Bestdori, and prints its answers as one JSON object (bytes as their
length and SHA-256). tests/integration/test_python_whole_api.py runs it
and checks every answer.

usage: whole_api.py ORIGIN_URL ROSTER_URL ASSETS_INDEX_URL COSTUME_INDEX_URL CACHE_DIR WORK_DIR
"""

import hashlib
import json
import sys
from pathlib import Path

from live2d_download.asset_cache import AssetCache, CacheResult, LinkMode
from live2d_download.bestdori_client import BestdoriClient, CachePolicy, DownloadStream
from live2d_download.cache import CacheManager
from live2d_download.live2d_downloader import DownloadResult, Live2dDownloader
from live2d_download.live2d_service import Live2dService
from live2d_download.models import (AssetKey, CancelledError, CancelToken, FileProgress, HttpStatusError,
                                    Language, Live2dCostume, ModelProgress, Server)

origin, roster_url, assets_index_url, costume_index_url, cache_dir, work = sys.argv[1:7]
cache_dir, work = Path(cache_dir), Path(work)
NAME = "027_live_event_242_sr"          # in the costume index, a zh-hans name
OTHER_LANGUAGE = "001_collabo_d_1_ur"   # in the costume index, no zh-hans name
NO_INDEX = "036_live_event_307_ssr"     # not in the costume index: no id, no icon
out = {}


def digest(data):
    return None if data is None else [len(data), hashlib.sha256(data).hexdigest()]


def spec(f):
    return [f.rel_path, f.kind, f.optional, f.source.bundle_name, f.source.file_name]


def error(fn, *args, **kw):
    try:
        fn(*args, **kw)
        return None
    except HttpStatusError as e:
        return ["HttpStatusError", e.status_code, e.url]
    except CancelledError:
        return ["CancelledError"]


# --- the client, as the document constructs it ---
client = BestdoriClient(server=Server.JAPANESE, base_assets_url=origin + "/assets", timeout_seconds=30.0,
                        chara_roster_url=roster_url, assets_index_url=assets_index_url,
                        costume_index_url=costume_index_url,
                        cache=CachePolicy(enabled=True, ttl_seconds=24 * 3600, cache_dir=cache_dir))

# --- raw documents ---
out["roster"] = client.get_characters_roster()
out["character_37"] = client.get_character(37)
out["assets_index"] = client.get_assets_index()
out["live2d_map"] = client.get_live2d_assets_map()
out["costume_index"] = client.get_costume_index()
out["valid"] = [client.validate_live2d_name(NAME), client.validate_live2d_name("036_general_x_none")]
out["build_data"] = client.get_build_data(NAME)
out["build_data_unknown"] = error(client.get_build_data, "036_no_such_costume")

# --- service: list, search, costumes, names, icons ---
service = Live2dService(client)
out["service_language"] = str(service.language)
out["list"] = service.list_characters()
out["list_ja"] = Live2dService(client, language=Language.JAPANESE).list_characters()
queries = ["灯", "高松燈", "Tomori", "店员", "香澄", "xyz", "爱音", "千早爱音"]
out["search"] = {q: service.search_character(q) for q in queries}
out["search_loose"] = service.search_character("Tomorrow", match_threshold=40)
out["search_all"] = {q: service.search_character(q, all_language_result=True)
                     for q in ("Tomori", "kasumi", "ＴＯＭＯＲＩ")}
out["costumes_36"] = service.search_costumes(36)
out["costumes_36_no_live"] = service.search_costumes(36, include_live_event=False)
out["costumes_1"] = service.search_costumes(1, include_live_event=True)
out["icon"] = digest(service.get_costume_icon(NAME))
out["icon_none"] = service.get_costume_icon(NO_INDEX)
costume_id = next(int(k) for k, v in out["costume_index"].items() if v["assetBundleName"] == NAME)
out["client_icon"] = digest(client.get_costume_icon(costume_id, NAME))

# --- a costume's files and model.json ---
costume = service.build_costume(NAME)
out["files"] = [spec(f) for f in costume.files]
out["by_kind"] = {k: len(costume.find_file_by_kind(k)) for k in ("model", "physics", "texture", "motion",
                                                                 "expression")}
out["motion_groups"] = {k: [f.rel_path for f in v] for k, v in costume.categorize_motion_files().items()}
out["model_json"] = costume.render_model_json()
parsed = Live2dCostume.from_build_data(NAME, out["build_data"])
out["parsed_files"] = [spec(f) for f in parsed.files]
out["parsed_model_json"] = parsed.render_model_json()
out["build_unknown"] = error(service.build_costume, "036_no_such_costume")

# --- a stream, the asset cache, the cache manager ---
tex = costume.find_file_by_kind("texture")[0]
stream = client.iter_download_asset(tex.source.bundle_name, tex.source.file_name, chunk_size=4096)
out["stream_type"] = isinstance(stream, DownloadStream)
with stream:
    data = b"".join(stream.iter_bytes())
out["stream"] = [digest(data), stream.downloaded_bytes, stream.total_bytes]
out["stream_missing"] = client.iter_download_asset(tex.source.bundle_name, "no_such_file.png",
                                                   allow_not_found=True)
out["asset_url"] = client.get_asset_url(tex.source.bundle_name, tex.source.file_name)

cache = CacheManager(cache_dir)
assets = AssetCache(cache)
motion = costume.find_file_by_kind("motion")[0]
key = AssetKey(motion.source.bundle_name, motion.source.file_name, Server.JAPANESE)
out["cache_path"] = str(assets.get_cache_path(key).relative_to(cache_dir))
seen = []
got = assets.get_or_download(key=key, allow_not_found=False, on_bytes=lambda d, t: seen.append(d),
                             open_stream=lambda: client.iter_download_asset(key.bundle_name, key.file_name))
out["get_or_download"] = [isinstance(got, CacheResult), digest(Path(got.cache_path).read_bytes()),
                          seen[-1] if seen else None]
again = assets.get_or_download(key=key, allow_not_found=False,
                               open_stream=lambda: client.iter_download_asset(key.bundle_name, key.file_name))
out["get_or_download_again"] = str(again.cache_path) == str(got.cache_path)
dest = work / "materialized" / motion.source.file_name
out["materialize"] = [assets.materialize_to(cache_path=got.cache_path, dest_path=dest),
                      assets.materialize_to(cache_path=got.cache_path, dest_path=dest),
                      assets.materialize_to(cache_path=got.cache_path, dest_path=dest, mode=LinkMode.COPY,
                                            overwrite=True)]
cache.write_json("app/settings.json", {"k": ["灯", 1]})
cache.write_expire_json("app/expire.json", {"x": 2})
out["cache_manager"] = [cache.read_json("app/settings.json"), cache.read_expire_json("app/expire.json", 3600),
                        cache.read_cache("app/none.txt"), str(cache.resolve_path("a/b.txt").relative_to(cache_dir))]

# --- download, with progress; cancel ---
downloader = Live2dDownloader(client)
out["downloader_asset_cache"] = downloader.asset_cache is not None
events, models = [], []


def progress(*, file: FileProgress = None, model: ModelProgress = None):
    if file is not None:
        events.append([file.event, file.rel_path])
    if model is not None:
        models.append([model.files_done, model.files_total])


result = downloader.download_live2d_name(live2d_name=NAME, root_dir=work / "models", progress=progress)
folder = work / "models" / NAME
out["result"] = [isinstance(result, DownloadResult), result.live2d_name, str(result.model_dir.relative_to(work)),
                 sorted(str(p.relative_to(folder)) for p in result.downloaded_files),
                 sorted(str(p.relative_to(folder)) for p in result.skipped_files)]
out["on_disk"] = {str(p.relative_to(folder)): digest(p.read_bytes())
                  for p in sorted(folder.rglob("*")) if p.is_file()}
out["events"] = sorted({e for e, _ in events})
out["last_model_progress"] = models[-1] if models else None
downloader.download_live2d_name(live2d_name=OTHER_LANGUAGE, root_dir=work / "models")
out["other_language_name"] = (work / "models" / OTHER_LANGUAGE / "name.txt").read_text(encoding="utf-8")
again = downloader.download_costume(parsed, root_dir=work / "models")
out["again_skipped"] = len(again.skipped_files) > 0 and not again.downloaded_files
token = CancelToken.new()
token.cancel()
out["cancelled"] = error(downloader.download_live2d_name, live2d_name=OTHER_LANGUAGE, root_dir=work / "c",
                         cancel=token)
out["download_unknown"] = error(downloader.download_live2d_name, live2d_name="invalid_name", root_dir=work / "m")

json.dump(out, sys.stdout, ensure_ascii=False, default=str)
