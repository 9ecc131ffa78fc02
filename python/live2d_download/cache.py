"""Where l2dfs keeps its cache (the one this package uses), and the
original's small file cache API on the same folder."""

from __future__ import annotations

import json
import os
import pathlib
import tempfile
import time
from typing import BinaryIO, Callable, Optional, Union


def default_cache_dir() -> pathlib.Path:
    """l2dfs's default: $XDG_CACHE_HOME/l2dfs, else ~/.cache/l2dfs."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    return pathlib.Path(xdg) / "l2dfs" if xdg else pathlib.Path.home() / ".cache" / "l2dfs"


class CacheManager:
    """The cache folder. l2dfs owns index.db and live2d/assets/ (read them,
    never write them); the read/write methods below are for an app's own
    files beside them, as in the original."""

    def __init__(self, cache_dir: Optional[pathlib.Path] = None) -> None:
        self.cache_dir = pathlib.Path(cache_dir) if cache_dir else default_cache_dir()

    def resolve_path(self, rel: Union[str, pathlib.PurePath]) -> pathlib.Path:
        """rel under the cache folder; ValueError for absolute paths and '..'."""
        p = pathlib.PurePosixPath(str(rel))
        if p.is_absolute() or ".." in p.parts or "\\" in str(rel) or "\x00" in str(rel) or not p.parts:
            raise ValueError("bad cache path: %r" % (rel,))
        return self.cache_dir.joinpath(*p.parts)

    @staticmethod
    def ensure_parent_dir(path: pathlib.Path) -> None:
        pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)

    def atomic_write_bytes(self, dest: pathlib.Path, write_fn: Callable[[BinaryIO], None]) -> None:
        """write_fn writes a temporary file beside dest, which then replaces
        dest (os.replace): readers see the old file or the whole new one."""
        dest = pathlib.Path(dest)
        self.ensure_parent_dir(dest)
        fd, tmp = tempfile.mkstemp(prefix=".tmp.", dir=str(dest.parent))
        try:
            with os.fdopen(fd, "wb") as f:
                write_fn(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, dest)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise

    def read_cache(self, filename: str) -> Union[str, bytes, None]:
        """The file's text (UTF-8), its bytes where it is not text, None if absent."""
        try:
            data = self.resolve_path(filename).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data

    def write_cache(self, filename: str, data: Union[str, bytes]) -> None:
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        self.atomic_write_bytes(self.resolve_path(filename), lambda f: f.write(raw))

    def read_json(self, filename: str) -> Optional[dict]:
        """The JSON in the file; None if absent or not JSON."""
        text = self.read_cache(filename)
        if text is None:
            return None
        try:
            return json.loads(text)
        except ValueError:
            return None

    def write_json(self, filename: str, data: dict) -> None:
        self.write_cache(filename, json.dumps(data, ensure_ascii=False))

    def read_expire_json(self, filename: str, expire_seconds: int) -> Optional[dict]:
        """data of a {"data", "created_at"} file younger than expire_seconds."""
        doc = self.read_json(filename)
        if not isinstance(doc, dict) or "data" not in doc:
            return None
        try:
            age = time.time() - float(doc.get("created_at", 0))
        except (TypeError, ValueError):
            return None
        return doc["data"] if 0 <= age <= expire_seconds else None

    def write_expire_json(self, filename: str, data: dict) -> None:
        self.write_json(filename, {"data": data, "created_at": time.time()})


cache_manager = CacheManager()
