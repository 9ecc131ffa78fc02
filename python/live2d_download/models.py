"""Data types, progress and cancellation, errors."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from enum import Enum
from threading import Event
from typing import Any, Optional, Protocol


class CancelledError(RuntimeError):
    """The operation was cancelled through its CancelToken."""


class HttpStatusError(RuntimeError):
    """The origin answered with a non-2xx status (404: no such costume)."""

    def __init__(self, status_code: int, url: str) -> None:
        super().__init__("HTTP %d: %s" % (status_code, url))
        self.status_code = status_code
        self.url = url

    @property
    def status(self) -> int:
        return self.status_code


class ModelParseError(RuntimeError):
    """A costume's file list could not be made (no usable buildData.asset)."""


class L2dfsError(RuntimeError):
    """l2dfs could not be run, or failed: exit status and its message."""

    def __init__(self, message: str, returncode: Optional[int] = None, stderr: str = "") -> None:
        super().__init__(message)
        self.returncode = returncode
        self.stderr = stderr


@dataclass
class CancelToken:
    """A thread-safe flag: cancel() from any thread stops the operation
    holding it, which raises CancelledError in its own thread."""

    _event: Event = field(default_factory=Event)

    @classmethod
    def new(cls) -> "CancelToken":
        return cls(Event())

    def cancel(self) -> None:
        self._event.set()

    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self.cancelled():
            raise CancelledError("Operation cancelled")

    def wait(self, timeout: Optional[float] = None) -> bool:
        """True once cancelled (False after timeout seconds)."""
        return self._event.wait(timeout)


@dataclass(frozen=True)
class FileProgress:
    live2d_name: str
    rel_path: str
    bytes_done: int
    bytes_total: Optional[int]
    event: str = "download"  # download/downloaded/cache_hit/linked/copied/skipped/missing_optional


@dataclass(frozen=True)
class ModelProgress:
    live2d_name: str
    files_done: int
    files_total: int


class ProgressCallback(Protocol):
    def __call__(self, *, file: Optional[FileProgress] = None, model: Optional[ModelProgress] = None) -> None:
        """Called as the download runs, on the downloading thread, one call at a time."""
        ...


class Server(Enum):
    JAPANESE = "jp"
    ENGLISH = "en"
    TAIWAN = "tw"
    CHINA = "cn"
    KOREAN = "kr"


class Language(Enum):
    """Index of a language in Bestdori's name lists (and l2dfs's lang=)."""

    JAPANESE = 0
    KANA = 1  # the romanized names, Bestdori's English slot (as the original names it)
    ENGLISH = 1  # an alias of KANA
    TRADITIONAL_CHINESE = 2
    SIMPLIFIED_CHINESE = 3
    KOREAN = 4

    @property
    def l2dfs_name(self) -> str:
        return ("ja", "en", "zh-hant", "zh-hans", "ko")[self.value]


@dataclass(frozen=True)
class AssetKey:
    bundle_name: str
    file_name: str
    server: Optional[Server] = None

    def to_rel_cache_path(self):
        import pathlib
        return pathlib.PurePosixPath(self.bundle_name) / self.file_name


@dataclass(frozen=True)
class Live2dFileSpec:
    source: AssetKey
    rel_path: str
    optional: bool = False
    kind: str = "unknown"  # model/physics/texture/motion/expression


@dataclass
class Live2dCostume:
    live2d_name: str
    files: list  # list[Live2dFileSpec], buildData order
    _client: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def from_build_data(cls, live2d_name: str, build_data: dict) -> "Live2dCostume":
        """The costume's files from its buildData.asset, as l2dfs reads it
        (`l2dfs cat --build-data -`: the same paths a pull or a mount gives).
        ModelParseError when it is unusable."""
        from . import _l2dfs
        files = [Live2dFileSpec(source=AssetKey(x["bundle"], x["file"]), rel_path=x["rel_path"],
                                optional=bool(x["optional"]), kind=x["kind"])
                 for x in _l2dfs.json_lines(_read_build_data(live2d_name, build_data))]
        return cls(live2d_name=live2d_name, files=files)

    def find_file_by_kind(self, kind: str) -> list:
        return [f for f in self.files if f.kind == kind]

    def categorize_motion_files(self) -> dict:
        """Motions grouped by the letters of their stem (idle01 -> idle)."""
        out: dict = {}
        for f in self.find_file_by_kind("motion"):
            stem = os.path.splitext(os.path.basename(f.rel_path))[0]
            group = "".join(c for c in stem if c.isascii() and c.isalpha()) or "motion"
            out.setdefault(group, []).append(f)
        return out

    def render_model_json(self) -> dict:
        """model.json as l2dfs generates it: for a costume of
        Live2dService.build_costume, the one a download writes (files the
        origin lacks left out); else the one self.files give, every file
        taken as present (`l2dfs cat --build-data - --model-json`; the
        paths are those l2dfs gives each file's source)."""
        if self._client is not None:
            return json.loads(self._client._cat(self.live2d_name, "model.json"))
        base: dict = {"textures": [], "motions": [], "expressions": []}
        for f in self.files:
            entry = {"bundleName": f.source.bundle_name, "fileName": f.source.file_name}
            if f.kind in ("model", "physics"):
                base.setdefault(f.kind, entry)
            elif f.kind in ("texture", "motion", "expression"):
                base[f.kind + "s"].append(entry)
        return json.loads(_read_build_data(self.live2d_name, {"Base": base}, "--model-json"))


def _read_build_data(live2d_name: str, build_data: dict, *flags: str) -> bytes:
    """`l2dfs cat --build-data - FLAGS` on build_data (no cache, no network);
    ModelParseError when l2dfs finds it unusable."""
    import subprocess
    from . import _l2dfs
    argv = [_l2dfs.binary(), "cat", "--build-data", "-"] + list(flags)
    try:
        r = subprocess.run(argv, input=json.dumps(build_data).encode("utf-8"), capture_output=True)
    except OSError as e:
        raise L2dfsError("cannot run %s: %s" % (argv[0], e)) from e
    if r.returncode != 0:
        raise ModelParseError("%s: %s" % (live2d_name, r.stderr.decode("utf-8", "replace").strip()))
    return r.stdout


def validate_rel_path(rel_path: str) -> str:
    """rel_path as a safe path inside a model folder ("textures/a.png"):
    ValueError for an empty, absolute or drive path, a '..' or '.' part,
    a backslash or a control character."""
    import pathlib
    if not isinstance(rel_path, str) or not rel_path:
        raise ValueError("empty path")
    if any(ord(c) < 0x20 or c in "\\\x7f" for c in rel_path):
        raise ValueError("bad character in path: %r" % (rel_path,))
    p = pathlib.PurePosixPath(rel_path)
    if p.is_absolute() or (len(rel_path) > 1 and rel_path[1] == ":"):
        raise ValueError("absolute path: %r" % (rel_path,))
    if any(part in ("..", ".") for part in rel_path.split("/")) or "" in rel_path.split("/"):
        raise ValueError("path leaves its folder or has an empty part: %r" % (rel_path,))
    return p.as_posix()
