"""The asset cache (l2dfs's) and how files get from it into a model folder."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Optional

from .cache import CacheManager
from .models import AssetKey, CancelToken, HttpStatusError, L2dfsError, Server


class LinkMode(Enum):
    AUTO = "auto"          # hardlink, copy where that fails
    HARDLINK = "hardlink"  # hardlink or fail
    COPY = "copy"          # always copy


@dataclass(frozen=True)
class CacheResult:
    """What get_or_download found: the cache file (None when the origin
    lacks the asset) and how: "cache_hit", "downloaded" or "missing"."""

    cache_path: Optional[Path]
    status: str

    @property
    def path(self) -> Optional[Path]:
        return self.cache_path

    @property
    def hit(self) -> bool:
        return self.status == "cache_hit"


class AssetCache:
    """Assets live at {cache_dir}/live2d/assets/{server}/{bundle}/{file},
    written by l2dfs (temporary file, fsync, rename)."""

    _default: Optional["AssetCache"] = None

    def __init__(self, cache: Optional[CacheManager] = None, *, namespace: str = "live2d") -> None:
        self.cache = cache or CacheManager()
        self.namespace = namespace

    @classmethod
    def global_default(cls) -> "AssetCache":
        if cls._default is None:
            cls._default = cls()
        return cls._default

    def get_cache_path(self, key: AssetKey) -> Path:
        server = (key.server or Server.JAPANESE).value
        return self.cache.resolve_path("%s/assets/%s/%s/%s" % (self.namespace, server, key.bundle_name, key.file_name))

    def get_or_download(self, *, key: AssetKey, open_stream: Callable[[], Optional[Any]], allow_not_found: bool,
                        cancel: Optional[CancelToken] = None,
                        on_bytes: Optional[Callable[[int, Optional[int]], None]] = None) -> CacheResult:
        """The asset's cache file, downloaded if it is not there. A stream of
        BestdoriClient.iter_download_asset is l2dfs's: l2dfs writes the cache
        file and its index row (one download however many ask), and this
        cache must be the client's. Another stream's bytes are written here
        (temporary file, then rename). on_bytes(done, total) follows it."""
        path = self.get_cache_path(key)
        if cancel is not None:
            cancel.raise_if_cancelled()
        if path.is_file():
            return CacheResult(path, "cache_hit")
        stream = open_stream()
        if stream is None:
            if allow_not_found:
                return CacheResult(None, "missing")
            raise HttpStatusError(404, "%s/%s" % (key.bundle_name, key.file_name))
        from .bestdori_client import DownloadStream

        def chunks():
            with stream:
                for chunk in stream.iter_bytes():
                    if on_bytes is not None:
                        on_bytes(stream.downloaded_bytes, stream.total_bytes)
                    yield chunk

        if isinstance(stream, DownloadStream):
            for _ in chunks():
                pass
        else:
            self.cache.atomic_write_bytes(path, lambda f: [f.write(c) for c in chunks()])
        if not path.is_file():
            raise L2dfsError("%s: not in the cache %s (is it the client's cache?)" % (key.file_name, self.cache.cache_dir))
        return CacheResult(path, "downloaded")

    def materialize_to(self, *, cache_path: Path, dest_path: Path, mode: LinkMode = LinkMode.AUTO,
                       overwrite: bool = False) -> str:
        """The cache file at dest_path: "linked" (hardlink), "copied", or
        "skipped" when dest_path exists and overwrite is False. HARDLINK
        raises OSError where a link cannot be made (another filesystem)."""
        cache_path, dest_path = Path(cache_path), Path(dest_path)
        if not overwrite and (dest_path.exists() or dest_path.is_symlink()):
            return "skipped"
        dest_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp.", dir=str(dest_path.parent))
        os.close(fd)
        os.unlink(tmp)
        try:
            how = "copied"
            if mode is not LinkMode.COPY:
                try:
                    os.link(cache_path, tmp)
                    how = "linked"
                except OSError:
                    if mode is LinkMode.HARDLINK:
                        raise
            if how == "copied":
                shutil.copy2(cache_path, tmp)
            os.replace(tmp, dest_path)
            return how
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
