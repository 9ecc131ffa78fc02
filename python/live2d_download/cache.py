"""Where l2dfs keeps its cache (the one this package uses)."""

from __future__ import annotations

import os
import pathlib
from typing import Optional, Union


def default_cache_dir() -> pathlib.Path:
    """l2dfs's default: $XDG_CACHE_HOME/l2dfs, else ~/.cache/l2dfs."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    return pathlib.Path(xdg) / "l2dfs" if xdg else pathlib.Path.home() / ".cache" / "l2dfs"


class CacheManager:
    """The cache folder. Its contents are l2dfs's (index.db, live2d/assets/):
    read them, never write them; l2dfs does the writing."""

    def __init__(self, cache_dir: Optional[pathlib.Path] = None) -> None:
        self.cache_dir = pathlib.Path(cache_dir) if cache_dir else default_cache_dir()

    def resolve_path(self, rel: Union[str, pathlib.PurePath]) -> pathlib.Path:
        """rel under the cache folder; ValueError for absolute paths and '..'."""
        p = pathlib.PurePosixPath(str(rel))
        if p.is_absolute() or ".." in p.parts or "\\" in str(rel) or "\x00" in str(rel) or not p.parts:
            raise ValueError("bad cache path: %r" % (rel,))
        return self.cache_dir.joinpath(*p.parts)
