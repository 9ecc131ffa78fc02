"""The asset cache (l2dfs's) and how files get from it into a model folder."""

from __future__ import annotations

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
