#!/usr/bin/env python3
"""Time the live2d_download package's basic example against `l2dfs pull` of
the same costume, on a local fixture origin: cold (empty cache) and warm
(cache filled, new folder), the median of N runs of each.

usage: scripts/bench_python_api.py [--runs 3] [--latency-ms 0] [--bin build/l2dfs]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COSTUME = "036_live_event_307_ssr"

EXAMPLE = """
from pathlib import Path
from live2d_download.bestdori_client import BestdoriClient, CachePolicy
from live2d_download.live2d_downloader import Live2dDownloader
from live2d_download.models import ProgressCallback

class ProgressPrinter(ProgressCallback):
    def __call__(self, *, file=None, model=None):
        if file is not None:
            print(f"File[{file.event}] {file.live2d_name} - {file.rel_path}: {file.bytes_done}/{file.bytes_total}")
        if model is not None:
            print(f"Model {model.live2d_name}: {model.files_done}/{model.files_total} files done")

client = BestdoriClient(base_assets_url=%(assets)r, cache=CachePolicy(cache_dir=Path(%(cache)r)))
Live2dDownloader(client).download_live2d_name(live2d_name=%(name)r, root_dir=Path(%(out)r),
                                              progress=ProgressPrinter())
"""


def timed(argv, env):
    t = time.monotonic()
    r = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if r.returncode != 0:
        raise SystemExit("%s failed: %s" % (argv[:2], r.stderr.decode()))
    return time.monotonic() - t


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--latency-ms", type=float, default=0)
    p.add_argument("--bin", default=str(REPO / "build" / "l2dfs"))
    a = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-py-"))
    port_file = work / "port"
    origin = subprocess.Popen([sys.executable, str(REPO / "scripts" / "fixture_server.py"), "--port", "0",
                               "--port-file", str(port_file), "--latency-ms", str(a.latency_ms)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not port_file.exists():
            time.sleep(0.05)
        base = "http://127.0.0.1:%s" % port_file.read_text().strip()
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        env.update(no_proxy="127.0.0.1", PYTHONPATH=str(REPO / "python"), L2DFS_BIN=os.path.abspath(a.bin))
        env.pop("L2DFS_OPTIONS", None)
        times = {}
        for i in range(a.runs):
            for how in ("python", "pull"):
                cache, out = work / ("%s-cache%d" % (how, i)), work / ("%s-out%d" % (how, i))
                if how == "python":
                    script = work / "example.py"
                    script.write_text(EXAMPLE % {"assets": base + "/assets", "cache": str(cache),
                                                 "name": COSTUME, "out": str(out)})
                    argv = [sys.executable, str(script)]
                else:
                    argv = [a.bin, "pull", "-o", "api_url=%s/api,assets_url=%s/assets,cache_dir=%s"
                            % (base, base, cache), COSTUME, "--to", str(out), "--json"]
                times.setdefault((how, "cold"), []).append(timed(argv, env))
                shutil.rmtree(out)
                times.setdefault((how, "warm"), []).append(timed(argv, env))
        print("%-8s %-5s %s" % ("how", "cache", "median s (runs)"))
        for (how, state), v in sorted(times.items()):
            print("%-8s %-5s %.3f  (%s)" % (how, state, statistics.median(v), " ".join("%.3f" % x for x in v)))
    finally:
        origin.terminate()
        origin.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
