"""live2d_download: download BanG Dream! Live2D costumes from Bestdori.

The API of the Python downloader desktop apps use (Live2dDownloader,
Live2dService, BestdoriClient, progress callbacks, CancelToken); every
network and disk job is done by the l2dfs command (found through L2DFS_BIN,
else on PATH), so the cache is the one l2dfs mounts use.
"""

from .asset_cache import AssetCache, CacheResult, LinkMode
from .bestdori_client import BestdoriClient, CachePolicy, DownloadStream
from .cache import CacheManager, cache_manager
from .live2d_downloader import DownloadResult, Live2dDownloader
from .live2d_service import Live2dService
from .models import (AssetKey, CancelledError, CancelToken, FileProgress, HttpStatusError, L2dfsError,
                     Language, Live2dCostume, Live2dFileSpec, ModelParseError, ModelProgress,
                     ProgressCallback, Server)

__all__ = [
    "AssetCache", "AssetKey", "BestdoriClient", "CacheManager", "CacheResult", "CachePolicy", "cache_manager", "CancelledError", "CancelToken",
    "DownloadResult", "DownloadStream", "FileProgress", "HttpStatusError", "L2dfsError", "Language", "LinkMode",
    "Live2dCostume", "Live2dDownloader", "Live2dFileSpec", "Live2dService", "ModelParseError",
    "ModelProgress", "ProgressCallback", "Server",
]
