#!/usr/bin/python3
"""
`l2dfs serve` against nginx serving the same files, in the same run, with the
same client (keep-alive HTTP/1.1 connections from Python threads):
  1 warm GET latency p50/p99 (one connection, one request after another)
  2 requests per second (16 connections in parallel)
  3 origin requests through a chain: origin <- l2dfs serve S <- l2dfs serve C1
    (S as its origin) <- `l2dfs pull` C2 through C1, and `l2dfs pull` C3 through S:
    how often the real origin is asked for each file.
Uses scripts/fixture_server.py as the origin; builds nothing (run `make` first).

usage: bench_serve.py [--requests 2000] [--json FILE]
"""

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = os.environ.get("L2DFS_BIN", str(REPO / "build" / "l2dfs"))
NAME = "036_live_event_307_ssr"
procs = []


def env():
    e = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    e["NO_PROXY"] = "127.0.0.1"
    return e


def wait_for(cond, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise RuntimeError("timed out")


def start_origin(work):
    pf = work / "origin.port"
    p = subprocess.Popen([sys.executable, str(REPO / "scripts" / "fixture_server.py"), "--port", "0",
                          "--port-file", str(pf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(p)
    wait_for(pf.exists, 20)
    return "http://127.0.0.1:%d" % int(wait_for(lambda: pf.read_text().strip(), 5))


def start_serve(work, name, api, assets):
    log = work / (name + ".log")
    opts = "api_url=%s,assets_url=%s,cache_dir=%s" % (api, assets, work / name)
    p = subprocess.Popen([BIN, "serve", "-o", opts, "--listen", "127.0.0.1:0"],
                         stdout=subprocess.DEVNULL, stderr=open(log, "wb"), env=env())
    procs.append(p)
    port = wait_for(lambda: re.findall(r"listening on http://127\.0\.0\.1:(\d+)/", log.read_text()), 60)
    return "http://127.0.0.1:%s" % port[0]


def start_nginx(work, root):
    conf = work / "nginx.conf"
    port_probe = __import__("socket").socket()
    port_probe.bind(("127.0.0.1", 0))
    port = port_probe.getsockname()[1]
    port_probe.close()
    user = "user root;\n" if os.getuid() == 0 else ""
    conf.write_text(user + """worker_processes 2; pid %s/nginx.pid; error_log %s/nginx.err;
events { worker_connections 1024; }
http { access_log off; sendfile on; tcp_nopush on; keepalive_requests 100000;
  types { image/png png; application/json json; text/plain txt; }
  default_type application/octet-stream;
  server { listen 127.0.0.1:%d; root %s; etag on; } }
""" % (work, work, port, root))
    p = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(work), "-g", "daemon off;"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(p)
    url = "http://127.0.0.1:%d" % port
    wait_for(lambda: _ok(url + "/"), 20)
    return url


def _ok(url):
    try:
        urllib.request.urlopen(url, timeout=2)
        return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def get_all(base, paths):
    c = http.client.HTTPConnection(base.split("//")[1].split(":")[0], int(base.rsplit(":", 1)[1]), timeout=60)
    out = {}
    for p in paths:
        c.request("GET", p)
        r = c.getresponse()
        out[p] = r.read()
        if r.status != 200:
            raise RuntimeError("%s%s: %d" % (base, p, r.status))
    c.close()
    return out


def latencies(base, paths, n):
    host, port = "127.0.0.1", int(base.rsplit(":", 1)[1])
    c = http.client.HTTPConnection(host, port, timeout=60)
    lat = []
    for i in range(n):
        t = time.perf_counter()
        c.request("GET", paths[i % len(paths)])
        r = c.getresponse()
        r.read()
        lat.append(time.perf_counter() - t)
    c.close()
    lat.sort()
    return lat[len(lat) // 2] * 1000, lat[int(len(lat) * 0.99)] * 1000


def rate(base, paths, n, conns=16):
    port = int(base.rsplit(":", 1)[1])
    per = n // conns

    def worker(k):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for i in range(per):
            c.request("GET", paths[(k + i) % len(paths)])
            c.getresponse().read()
        c.close()

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(conns)]
    t = time.perf_counter()
    for x in ts:
        x.start()
    for x in ts:
        x.join()
    return per * conns / (time.perf_counter() - t)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--json")
    a = ap.parse_args()
    if not shutil.which("nginx"):
        subprocess.run([str(REPO / "scripts" / "install-deps.sh")], check=True)
    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    os.chmod(work, 0o755)
    try:
        origin = start_origin(work)
        info = json.loads(urllib.request.urlopen(
            origin + "/__control/costume?name=%s&server=jp" % NAME).read())
        rels = [f["rel"] for f in info["files"] if f["exists"]]
        s = start_serve(work, "S", origin + "/api", origin + "/assets")
        paths = ["/costumes/%s/%s" % (NAME, r) for r in rels]
        bodies = get_all(s, paths)  # warms the cache
        root = work / "www"
        for p, b in bodies.items():
            f = root / p.lstrip("/")
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_bytes(b)
        for d in [root] + list(root.rglob("*")):
            os.chmod(d, 0o755 if d.is_dir() else 0o644)
        ngx = start_nginx(work, root)
        get_all(ngx, paths)
        res = {}
        for name, base in (("l2dfs", s), ("nginx", ngx)):
            latencies(base, paths, 200)  # warm-up
            p50, p99 = latencies(base, paths, a.requests)
            res[name] = {"p50_ms": p50, "p99_ms": p99, "req_per_s": rate(base, paths, a.requests)}
        # The chain.
        urllib.request.urlopen(urllib.request.Request(origin + "/__control/reset", data=b"{}", method="POST"))
        s2 = start_serve(work, "S2", origin + "/api", origin + "/assets")
        c1 = start_serve(work, "C1", s2 + "/api", s2 + "/assets")
        for name, via in (("C2", c1), ("C3", s2)):
            opts = "api_url=%s/api,assets_url=%s/assets,cache_dir=%s" % (via, via, work / name)
            subprocess.run([BIN, "pull", "-o", opts, NAME, "--to", str(work / (name + "-out"))],
                           check=True, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stats = json.loads(urllib.request.urlopen(origin + "/__control/stats").read())["requests"]
        gets = {k: v for k, v in stats.items() if k.startswith("GET /assets/") and "buildData" not in k}
        res["chain"] = {"files": len(rels), "origin_asset_gets": sum(gets.values()),
                        "max_per_file": max(gets.values()), "caches": 4,
                        "origin_requests_total": sum(stats.values())}
        l, n = res["l2dfs"], res["nginx"]
        print("warm GET, %d requests over %d files of %s" % (a.requests, len(paths), NAME))
        print("             p50 ms   p99 ms   req/s (16 conns)")
        for k in ("l2dfs", "nginx"):
            r = res[k]
            print("%-10s %8.3f %8.3f %10.0f" % (k, r["p50_ms"], r["p99_ms"], r["req_per_s"]))
        print("ratio l2dfs/nginx: p50 %.2fx, p99 %.2fx, req/s %.2fx" % (
            l["p50_ms"] / n["p50_ms"], l["p99_ms"] / n["p99_ms"], l["req_per_s"] / n["req_per_s"]))
        ch = res["chain"]
        print("chain origin <- S <- C1 <- C2 (pull), S <- C3 (pull): %d files, origin asset GETs %d"
              " (at most %d per file), origin requests in all %d" % (
                  ch["files"], ch["origin_asset_gets"], ch["max_per_file"], ch["origin_requests_total"]))
        if a.json:
            Path(a.json).write_text(json.dumps(res, indent=2))
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
