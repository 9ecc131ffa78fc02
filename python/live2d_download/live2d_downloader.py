"""Live2dDownloader: a costume into root_dir/<live2d_name>/ with `l2dfs pull`.

l2dfs downloads into its cache and hardlinks (or copies) into the folder,
writes model.json and name.txt, and reports each step as a JSON line; the
lines become the progress callbacks, on the calling thread, as they come.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from . import _l2dfs
from .asset_cache import AssetCache, LinkMode
from .bestdori_client import BestdoriClient
from .cache import CacheManager
from .live2d_service import Live2dService
from .models import (CancelToken, FileProgress, HttpStatusError, L2dfsError, Language, Live2dCostume,
                     ModelProgress, ProgressCallback)

# pull --json events passed on as FileProgress ("written", "failed" and "done" are not).
GENERATED = ("model.json", "name.txt")
FILE_EVENTS = ("download", "downloaded", "cache_hit", "linked", "copied", "skipped", "missing_optional")
# The events after which a file is in place in the costume folder.
IN_PLACE = ("linked", "copied", "skipped", "missing_optional")


@dataclass(frozen=True)
class DownloadResult:
    live2d_name: str
    model_dir: Path
    downloaded_files: list  # list[Path]: placed by this call (linked or copied)
    skipped_files: list     # list[Path]: already there, or optional and missing on the origin


class Live2dDownloader:
    def __init__(
        self,
        client: BestdoriClient,
        language: Optional[Language] = Language.SIMPLIFIED_CHINESE,
        *,
        max_workers: int = 10,
        use_asset_cache: bool = True,
        asset_cache: Optional[AssetCache] = None,
        link_mode: LinkMode = LinkMode.AUTO,
    ) -> None:
        """max_workers -> pull -j (1..64); link_mode -> --link; asset_cache:
        its cache folder becomes cache_dir=. l2dfs always downloads through
        its cache: use_asset_cache=False only makes the files copies. The
        default asset_cache is the shared one: l2dfs's cache, the client's
        cache_dir where it gives one."""
        self.client = client
        self.language = language
        self.max_workers = max_workers
        self.use_asset_cache = use_asset_cache
        if asset_cache is None and use_asset_cache:
            cache_dir = client.options.get("cache_dir")
            asset_cache = AssetCache(CacheManager(Path(cache_dir))) if cache_dir else AssetCache.global_default()
        self.asset_cache = asset_cache
        self.link_mode = link_mode
        self._service: Optional[Live2dService] = None

    @property
    def service(self) -> Live2dService:
        if self._service is None:
            self._service = Live2dService(self.client, language=self.language)
        return self._service

    def download_costume(
        self,
        costume: Live2dCostume,
        *,
        root_dir: Path,
        overwrite: bool = False,
        cancel: Optional[CancelToken] = None,
        progress: Optional[ProgressCallback] = None,
        download_name_and_icon: bool = True,
    ) -> DownloadResult:
        """The costume into root_dir/<live2d_name>/ with model.json, and
        name.txt and icon.png unless download_name_and_icon is False (l2dfs
        places them; they are then removed if this call placed them).
        CancelledError if cancel was set (nothing partial is left; a later
        call finishes the job)."""
        folder = Path(root_dir) / costume.live2d_name
        extras = [] if download_name_and_icon else [p for p in (folder / "name.txt", folder / "icon.png")
                                                    if not p.exists()]
        result = self.download_live2d_name(costume.live2d_name, root_dir=root_dir, overwrite=overwrite,
                                           cancel=cancel, progress=progress)
        for p in extras:
            try:
                p.unlink()
            except FileNotFoundError:
                pass
        dropped = set(extras)
        return DownloadResult(result.live2d_name, result.model_dir,
                              [p for p in result.downloaded_files if p not in dropped], result.skipped_files)

    def download_live2d_name(
        self,
        live2d_name: str,
        *,
        root_dir: Path,
        overwrite: bool = False,
        cancel: Optional[CancelToken] = None,
        progress: Optional[ProgressCallback] = None,
    ) -> DownloadResult:
        """download_costume() by the costume's live2d name. HttpStatusError(404)
        for a name the site does not know."""
        root_dir = Path(root_dir)
        run = _Run(live2d_name, root_dir / live2d_name, progress)
        mode = self.link_mode if self.use_asset_cache else LinkMode.COPY
        args = ["--to", str(root_dir), "--json", "-j", str(max(1, min(64, int(self.max_workers)))),
                "--link", mode.value]
        if overwrite:
            args.append("--overwrite")
        opts = self.client._options(lang=self.language.l2dfs_name if self.language else None)
        if self.asset_cache is not None:
            opts["cache_dir"] = str(self.asset_cache.cache.cache_dir)
        model_json = run.model_dir / "model.json"
        had_model_json = model_json.exists()
        try:
            rc, stderr = _l2dfs.stream(opts, "pull", args + ["--", live2d_name], cancel, run.line)
        except BaseException:
            run.drop_model_json(model_json, had_model_json)
            raise
        if rc == _l2dfs.EXIT_USAGE and "no costume or character" in stderr:
            raise HttpStatusError(404, self.client._build_data_url(live2d_name))
        if rc != 0:
            # As the Python downloader: model.json only for a complete costume.
            run.drop_model_json(model_json, had_model_json)
            raise self._failure(live2d_name, run, rc, stderr)
        return DownloadResult(live2d_name, run.model_dir, run.downloaded, run.skipped)

    def _failure(self, live2d_name: str, run: "_Run", rc: int, stderr: str) -> Exception:
        """The Python downloader's exception for the first failed file:
        HttpStatusError(status, url) for an HTTP status, RuntimeError for
        the site's HTML page, else L2dfsError."""
        if not run.failed:
            return L2dfsError("l2dfs pull %s: %s" % (live2d_name, stderr), rc, stderr)
        rel, error = run.failed[0]
        m = re.search(r"\bHTTP (\d{3})\b", error)
        if m:
            return HttpStatusError(int(m.group(1)), self._asset_url(live2d_name, rel))
        if "HTML page" in error:
            return RuntimeError("%s: %s" % (self._asset_url(live2d_name, rel), error))
        return L2dfsError("l2dfs pull %s: %s" % (live2d_name, run.failure()), rc, stderr)

    def _asset_url(self, live2d_name: str, rel: str) -> str:
        """The URL of a costume's file (asked of l2dfs only when one failed)."""
        base = self.client.options.get("assets_url", "https://bestdori.com/assets")
        try:
            files = self.client._file_list(live2d_name)
        except (L2dfsError, HttpStatusError):
            files = []
        for x in files:
            if x.get("rel_path") == rel:
                return "%s/%s/%s_rip/%s" % (base, self.client.server.value, x["bundle"], x["file"])
        return "%s/%s/%s" % (base, self.client.server.value, rel)


class _Run:
    """One pull's JSON lines turned into callbacks and a result."""

    def __init__(self, live2d_name: str, model_dir: Path, progress: Optional[ProgressCallback]) -> None:
        self.live2d_name = live2d_name
        self.model_dir = model_dir
        self.progress = progress
        self.downloaded: list = []
        self.skipped: list = []
        self.failed: list = []  # [(rel_path, error)]
        self.in_place = 0
        self.wrote_model_json = False

    def line(self, x: dict) -> None:
        ev = x.get("event")
        if ev == "model":
            # files_done: files in place (l2dfs also counts failed ones as over).
            if self.progress is not None:
                self.progress(model=ModelProgress(x["live2d_name"], self.in_place, int(x["files_total"])))
            return
        if ev == "failed":
            self.failed.append((x.get("rel_path"), x.get("error") or ""))
            return
        if ev == "written" and x.get("rel_path") == "model.json":
            self.wrote_model_json = True
        # model.json and name.txt are generated, as the Python downloader's: no callbacks.
        if ev not in FILE_EVENTS or x["rel_path"] in GENERATED:
            return
        if ev in IN_PLACE:
            self.in_place += 1
        path = self.model_dir / x["rel_path"]
        if ev in ("linked", "copied"):
            self.downloaded.append(path)
        elif ev in ("skipped", "missing_optional"):
            self.skipped.append(path)
        if self.progress is not None:
            total = int(x.get("bytes_total") or 0)
            self.progress(file=FileProgress(x["live2d_name"], x["rel_path"], int(x.get("bytes_done") or 0),
                                            total, event=ev))

    def failure(self) -> str:
        return "; ".join("%s: %s" % f for f in self.failed)

    def drop_model_json(self, path: Path, existed: bool) -> None:
        """Remove a model.json this run wrote for an incomplete costume."""
        if self.wrote_model_json and not existed:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
