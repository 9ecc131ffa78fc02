"""The asset cache (l2dfs's) and how files get from it into a model folder."""

from __future__ import annotations

import os
import shutil
import tempfile
from enum import Enum
from pathlib import Path
from typing import Optional

from .cache import CacheManager
from .models import AssetKey, Server


class LinkMode(Enum):
    AUTO = "auto"          # hardlink, copy where that fails
    HARDLINK = "hardlink"  # hardlink or fail
    COPY = "copy"          # always copy


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
