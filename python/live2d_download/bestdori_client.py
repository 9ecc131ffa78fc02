"""BestdoriClient: the settings every l2dfs command of this package gets.

Only the settings given to the constructor become -o options; whatever is
not given is left to l2dfs (its defaults, or L2DFS_OPTIONS in the
environment, which is passed through untouched).
"""

from __future__ import annotations

import json
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

from . import _l2dfs
from .models import CancelledError, CancelToken, HttpStatusError, L2dfsError, Server


@dataclass
class DownloadStream:
    """An asset's bytes as `l2dfs cat --asset` writes them (resp is that
    process). iter_bytes() yields them as they come; a cancel stops l2dfs
    (CancelledError); close() ends it early."""

    resp: Any
    chunk_size: int
    cancel: Optional[CancelToken] = None
    total_bytes: Optional[int] = None
    downloaded_bytes: int = 0
    _first: bytes = b""
    _url: str = ""

    def __enter__(self) -> "DownloadStream":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()

    def close(self) -> None:
        proc = self.resp
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        proc.wait()
        for f in (proc.stdout, proc.stderr):
            if f is not None and not f.closed:
                f.close()

    def iter_bytes(self) -> Iterator[bytes]:
        done = _l2dfs.watch_cancel(self.resp, self.cancel)
        try:
            chunk, self._first = self._first, b""
            while chunk:
                if self.cancel is not None:
                    self.cancel.raise_if_cancelled()
                self.downloaded_bytes += len(chunk)
                yield chunk
                chunk = self.resp.stdout.read1(self.chunk_size)
            rc = self.resp.wait()
        finally:
            done.set()
        if self.cancel is not None and (rc == _l2dfs.EXIT_INTERRUPTED or self.cancel.cancelled()):
            raise CancelledError("Operation cancelled")
        if rc != 0:
            err = self.resp.stderr.read().decode("utf-8", "replace").strip()
            raise L2dfsError("l2dfs cat %s: %s" % (self._url, err or "exit status %d" % rc), rc, err)
        self.total_bytes = self.downloaded_bytes
        self.close()


@dataclass
class CachePolicy:
    """cache_dir becomes l2dfs's cache_dir= (its cache and index);
    ttl_seconds other than 24 h its catalogue_ttl= (how long the documents
    are kept before they are asked again); enabled=False a catalogue_ttl
    of 1 s (asked again at each call a second apart). l2dfs serves a
    stale copy while the origin is down, whatever the TTL."""

    enabled: bool = True
    ttl_seconds: int = 24 * 3600
    cache_dir: Optional[Path] = None


# Where each catalogue document sits below the site's api_url (l2dfs's
# layout), and the l2dfs option giving a document its own URL.
DOCUMENT_PATHS = {
    "chara_roster_url": ("/characters/all.2.json", "roster_url"),
    "assets_index_url": ("/explorer/%s/assets/_info.json", "assets_index_url"),
    "costume_index_url": ("/costumes/all.5.json", "costume_index_url"),
}


def _document_options(api_url: Optional[str], fallback: Optional[str], server: Server, given: dict) -> tuple:
    """(api_url, {option: URL}) for the document URLs given: where they sit
    at l2dfs's paths below one api_url, that api_url (base_api_url, if
    given, decides; else fallback where they do not agree); each URL
    elsewhere becomes its own l2dfs option."""
    tails = {arg: (path % server.value if "%s" in path else path) for arg, (path, _) in DOCUMENT_PATHS.items()}
    urls = {arg: url.rstrip("/") for arg, url in given.items() if url}
    if not api_url:
        bases = {url[: -len(tails[arg])] for arg, url in urls.items() if url.endswith(tails[arg])}
        if len(bases) == 1 and all(url.endswith(tails[arg]) for arg, url in urls.items()):
            api_url = bases.pop()
    api_url = api_url or fallback
    opts = {DOCUMENT_PATHS[arg][1]: url for arg, url in urls.items()
            if not api_url or url != api_url.rstrip("/") + tails[arg]}
    return api_url, opts


# Headers l2dfs sets itself and refuses from an app (an Accept-Encoding
# would change assets' bytes), with If-*: requests' Accept-Encoding and
# Connection defaults among them.
ENGINE_HEADERS = ("accept-encoding", "range", "host", "connection", "content-length", "transfer-encoding",
                  "te", "upgrade")


def _app_header(name: str, value: Any) -> bool:
    k = name.lower()
    return (value is not None and k != "user-agent" and k not in ENGINE_HEADERS and not k.startswith("if-")
            and not (k == "accept" and value == "*/*"))


def _session_options(session: Any, user_agent: Optional[str]) -> dict:
    """What of a requests.Session l2dfs uses: proxies["https"] (else
    ["http"]) -> proxy=; headers["User-Agent"] -> user_agent= (unless
    user_agent is given, or it is requests' own python-requests/...);
    other headers -> header= (not requests' defaults Accept-Encoding,
    "Accept: */*" and Connection, nor the others l2dfs sets itself: Range,
    If-*, Host...); verify=False -> insecure. Cookies, auth, cert and adapters
    are not used."""
    opts: dict = {}
    proxies = getattr(session, "proxies", None) or {}
    proxy = proxies.get("https") or proxies.get("http")
    if proxy:
        opts["proxy"] = proxy
    headers = dict(getattr(session, "headers", None) or {})
    ua = next((v for k, v in headers.items() if k.lower() == "user-agent"), None)
    if user_agent:
        opts["user_agent"] = user_agent
    elif ua and not str(ua).startswith("python-requests/"):
        opts["user_agent"] = ua
    extra = ["%s: %s" % (k, v) for k, v in headers.items() if _app_header(k, v)]
    if extra:
        opts["header"] = extra
    if getattr(session, "verify", True) is False:
        opts["insecure"] = True
    return opts


class BestdoriClient:
    def __init__(
        self,
        *,
        server: Optional[Server] = None,
        base_assets_url: Optional[str] = None,
        base_api_url: Optional[str] = None,
        timeout_seconds: Optional[float] = None,
        session: Any = None,
        cache: Optional[CachePolicy] = None,
        user_agent: Optional[str] = None,
        chara_roster_url: Optional[str] = None,
        assets_index_url: Optional[str] = None,
        costume_index_url: Optional[str] = None,
        options: Optional[dict] = None,
    ) -> None:
        """server -> server=, base_assets_url -> assets_url=, base_api_url ->
        api_url= (default: base_assets_url's site + /api when only that is
        given), timeout_seconds -> timeout=, cache.cache_dir -> cache_dir=,
        cache.ttl_seconds/enabled -> catalogue_ttl= (CachePolicy),
        session: its proxies, headers and verify (_session_options); options:
        any other l2dfs -o options
        ({"retries": 5, "h2c": True}). chara_roster_url, assets_index_url and
        costume_index_url give api_url= where they sit at l2dfs's paths below
        one api_url; each one elsewhere becomes roster_url=,
        assets_index_url= or costume_index_url=. user_agent -> user_agent=
        (default: l2dfs's, which names l2dfs and its version)."""
        self.server = server or Server.JAPANESE
        self.user_agent = user_agent
        self.cache = cache
        opts: dict = {}
        if server is not None:
            opts["server"] = server.value
        site_api = None
        if base_assets_url:
            opts["assets_url"] = base_assets_url.rstrip("/")
            if opts["assets_url"].endswith("/assets"):
                site_api = opts["assets_url"][: -len("/assets")] + "/api"
        base_api_url, documents = _document_options(base_api_url, site_api, self.server, {
            "chara_roster_url": chara_roster_url, "assets_index_url": assets_index_url,
            "costume_index_url": costume_index_url})
        if base_api_url:
            opts["api_url"] = base_api_url.rstrip("/")
        opts.update(documents)
        if timeout_seconds is not None:
            opts["timeout"] = max(1, int(round(timeout_seconds)))
        if cache is not None and cache.cache_dir is not None:
            opts["cache_dir"] = str(Path(cache.cache_dir).expanduser().resolve())
        if cache is not None and (not cache.enabled or int(cache.ttl_seconds) != 24 * 3600):
            opts["catalogue_ttl"] = "%ds" % (max(1, int(cache.ttl_seconds)) if cache.enabled else 1)
        opts.update(_session_options(session, user_agent))
        opts.update(options or {})
        self.options = opts

    # --- running l2dfs with these settings ---

    def _options(self, **extra) -> dict:
        o = dict(self.options)
        o.update({k: v for k, v in extra.items() if v is not None})
        return o

    def _run(self, cmd: str, *args, ok=(0,), **extra):
        return _l2dfs.run(self._options(**extra), cmd, *args, ok=ok)

    def _cat(self, live2d_name: str, rel: str, **extra) -> Optional[bytes]:
        """The bytes of <costume>/<rel> as a mount serves them; None when the
        costume or the file does not exist."""
        r = self._run("cat", "--", "%s/%s" % (live2d_name, rel), ok=(0, _l2dfs.EXIT_USAGE), **extra)
        return r.stdout if r.returncode == 0 else None

    def _file_list(self, live2d_name: str, **extra) -> list:
        """pull --list lines of a costume; HttpStatusError(404) if unknown."""
        import tempfile
        r = self._run("pull", "--to", tempfile.gettempdir(), "--list", "--json", "--", live2d_name,
                      ok=(0, _l2dfs.EXIT_USAGE, _l2dfs.EXIT_FAILED), **extra)
        if r.returncode == _l2dfs.EXIT_USAGE:
            raise HttpStatusError(404, self._build_data_url(live2d_name))
        if r.returncode != 0:
            raise L2dfsError("l2dfs pull --list %s: %s" % (live2d_name, r.stderr.decode("utf-8", "replace")),
                             r.returncode)
        return [x for x in _l2dfs.json_lines(r.stdout) if x.get("event") == "file"]

    def _assets_url(self) -> str:
        return self.options.get("assets_url", "https://bestdori.com/assets")

    def _api_url(self) -> str:
        return self.options.get("api_url", "https://bestdori.com/api")

    def _build_data_url(self, live2d_name: str) -> str:
        return "%s/%s/live2d/chara/%s_rip/buildData.asset" % (self._assets_url(), self.server.value, live2d_name)

    # --- the endpoints an app uses ---

    def _doc(self, name: str, **extra):
        """A catalogue document as l2dfs stored it (l2dfs cat --doc), parsed;
        None when l2dfs has no such document or costume."""
        r = self._run("cat", "--doc", name, ok=(0, _l2dfs.EXIT_USAGE), **extra)
        return json.loads(r.stdout) if r.returncode == 0 else None

    def get_characters_roster(self) -> dict:
        """The site's character roster (/characters/all.2.json): every
        character, {id: {"characterName": [ja, en, zh-hant, zh-hans, ko],
        ...}}, as the site sent it."""
        return self._doc("roster") or {}

    def get_character(self, chara_id: int) -> dict:
        """The site's detail document of the character (/characters/<id>.json),
        as l2dfs stored it (kept 24 h, served stale while the site is down);
        HttpStatusError(404) if the site has no such character."""
        doc = self._doc("character:%d" % int(chara_id))
        if doc is None:
            raise HttpStatusError(404, "%s/characters/%d.json" % (self._api_url(), int(chara_id)))
        return doc

    def get_assets_index(self) -> dict:
        """The server's asset index (/explorer/<server>/assets/_info.json)."""
        return self._doc("assets") or {}

    def get_live2d_assets_map(self) -> dict:
        """The asset index's live2d.chara: {bundle name: file count}."""
        return self.get_assets_index().get("live2d", {}).get("chara", {})

    def get_costume_index(self) -> dict:
        """The costume index (/costumes/all.5.json)."""
        return self._doc("costumes") or {}

    def get_build_data(self, live2d_name: str) -> dict:
        """The costume's buildData.asset as l2dfs stored it;
        HttpStatusError(404) for a costume the site does not know."""
        doc = self._doc(live2d_name)
        if doc is None:
            raise HttpStatusError(404, self._build_data_url(live2d_name))
        return doc

    def get_asset_url(self, bundle_name: str, file_name: str) -> str:
        """Where the site serves a file of a bundle (without .bytes, as the
        site serves it)."""
        if file_name.endswith(".bytes"):
            file_name = file_name[: -len(".bytes")]
        return "%s/%s/%s_rip/%s" % (self._assets_url(), self.server.value, bundle_name, file_name)

    def iter_download_asset(self, bundle_name: str, file_name: str, *, cancel: Optional[CancelToken] = None,
                            allow_not_found: bool = False, chunk_size: int = 1024 * 256, retries: int = 3,
                            backoff_base: float = 0.5) -> Optional[DownloadStream]:
        """A stream of the asset's bytes through l2dfs's cache (one download
        however many ask). The asset must be one a costume's buildData named
        (build_costume or a download lists it). None when the site lacks it
        and allow_not_found, else HttpStatusError(404). retries -> retries=;
        backoff_base is l2dfs's (retry_base_ms=)."""
        if cancel is not None:
            cancel.raise_if_cancelled()
        url = self.get_asset_url(bundle_name, file_name)
        rel = "%s/%s" % (bundle_name, file_name[: -len(".bytes")] if file_name.endswith(".bytes") else file_name)
        proc = _l2dfs.start(self._options(retries=int(retries)), "cat", "--asset", rel)
        stream = DownloadStream(resp=proc, chunk_size=int(chunk_size), cancel=cancel, _url=url)
        done = _l2dfs.watch_cancel(proc, cancel)
        try:
            stream._first = proc.stdout.read1(stream.chunk_size)
        finally:
            done.set()
        if not stream._first and proc.wait() == _l2dfs.EXIT_USAGE:
            stream.close()
            if allow_not_found:
                return None
            raise HttpStatusError(404, url)
        if cancel is not None and cancel.cancelled():
            stream.close()
            raise CancelledError("Operation cancelled")
        return stream

    def validate_live2d_name(self, live2d_name: str) -> bool:
        """True if the asset index lists the costume."""
        return live2d_name in self.get_live2d_assets_map()

    def get_costume_icon(self, costume_id: int, live2d_name: str) -> bytes:
        """The costume's icon (bytes, as the API document types it):
        HttpStatusError(404) when the site has none, as for any non-2xx
        answer. Live2dService.get_costume_icon gives None instead."""
        data = self._cat(live2d_name, "icon.png")
        if data is None:
            raise HttpStatusError(404, "%s/%s/thumb/costume/group%d_rip/%s.png"
                                  % (self._assets_url(), self.server.value, costume_id // 50, live2d_name))
        return data
