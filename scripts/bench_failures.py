#!/usr/bin/env python3
"""How failures cost (issue: fail fast, cheaply): three cases, each run
against the binary under test and, where given, a baseline binary built from
an older tree in the same run.

  1. 12 reads of a file the origin always answers 503 (HEAD and GET): the
     requests for it in all, and the time of each of reads 2-12
     (target: <= 8 requests, each of reads 2-12 < 0.1 s).
  2. A buildData of 100,000 entries: time to an answer for the folder, the
     requests the mount made, the daemon's peak RSS
     (target: <= 5 s, <= 2,000 requests, <= 64 MiB).
  3. The origin killed (SIGKILL) during three parallel cold `cp -r` and back
     2 s later, with the default retries (0.5 + 1 + 2 s): copies that
     succeed and are right (target: all).

Usage: scripts/bench_failures.py [--bin build/l2dfs] [--baseline OLD_BINARY]
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))
from helpers import TEX0, Mount, Origin, costume, timed  # noqa: E402

COPIES = ["036_live_event_307_ssr", "036_casual-2023", "001_casual-2023"]


def peak_rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def asked(origin, path):
    return origin.count("HEAD", path) + origin.count("GET", path)


def case_503(binary, work):
    origin = Origin(work / "origin503")
    m = Mount(binary, origin, work / "c503", work / "m503", opts={"prefetch": "off", "retry_base_ms": "500"})
    try:
        m.start()
        c = costume(origin)
        url = c.files[TEX0]
        origin.fault(path=re.escape(url) + "$", kind="status", status=503)
        os.listdir(c.path(m))
        times = []
        for _ in range(12):
            err, _, secs = timed(lambda: open(c.path(m, TEX0), "rb").read(), timeout=120)
            times.append(secs)
        return {"requests": asked(origin, url), "read1_s": round(times[0], 3),
                "reads2_12_max_s": round(max(times[1:]), 4)}
    finally:
        m.unmount()
        origin.stop()


def case_huge(binary, work):
    origin = Origin(work / "originhuge")
    name = "036_casual-2023"
    own = "live2d/chara/" + name
    doc = json.loads(origin.expected("/assets/jp/live2d/chara/%s_rip/buildData.asset" % name))
    doc["Base"]["motions"] = [{"bundleName": own, "fileName": "m%06d.mtn.bytes" % i} for i in range(100000)]
    origin.build_data(name, raw=json.dumps(doc))
    m = Mount(binary, origin, work / "chuge", work / "mhuge", opts={"prefetch": "off"})
    try:
        m.start()
        before = sum(origin.requests().values())
        folder = os.path.join(m["costumes"], name)
        err, _, secs = timed(os.listdir, folder, timeout=60)
        if err == 0:  # an answer with content: model.json too
            err2, _, secs2 = timed(os.stat, os.path.join(folder, "model.json"), timeout=60)
            secs += secs2
        return {"answer_s": round(secs, 2), "errno": err,
                "requests": sum(origin.requests().values()) - before,
                "peak_rss_mib": round(peak_rss_kib(m.pid) / 1024, 1)}
    finally:
        m.unmount()
        origin.stop()


def case_outage(binary, work):
    origin = Origin(work / "originout")
    m = Mount(binary, origin, work / "cout", work / "mout", opts={"retry_base_ms": "500"})
    try:
        m.start()
        cs = [costume(origin, n) for n in COPIES]
        for c in cs:
            os.listdir(c.path(m))
        origin.config(bandwidth=300000)
        procs = [subprocess.Popen(["cp", "-r", c.path(m), str(work / ("copy%d" % i))],
                                  stderr=subprocess.DEVNULL) for i, c in enumerate(cs)]
        end = time.monotonic() + 30
        while time.monotonic() < end and not any(
                k.startswith("GET") and "_rip/" in k and "buildData" not in k for k in origin.requests()):
            time.sleep(0.02)
        origin.proc.kill()
        origin.proc.wait()
        origin.stop()
        time.sleep(2)  # the outage
        origin.start()
        origin.config(bandwidth=300000)
        good = 0
        for i, (p, c) in enumerate(zip(procs, cs)):
            try:
                rc = p.wait(timeout=300)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                rc = -1
            right = rc == 0 and all(
                (work / ("copy%d" % i) / rel).read_bytes() == origin.expected(u) for rel, u in c.files.items())
            good += right
        return {"copies_ok": good, "copies": len(cs)}
    finally:
        m.unmount()
        origin.stop()


def run(binary):
    out = {}
    for name, fn in (("503", case_503), ("huge_buildData", case_huge), ("outage_2s", case_outage)):
        work = Path(tempfile.mkdtemp(prefix="l2dfs-bench-"))
        try:
            out[name] = fn(binary, work)
        except Exception as e:  # a case that breaks is a figure too
            out[name] = {"error": "%s: %s" % (type(e).__name__, e)}
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=str(REPO / "build" / "l2dfs"))
    ap.add_argument("--baseline", help="an older binary, measured in the same run")
    a = ap.parse_args()
    results = {"new": run(a.bin)}
    if a.baseline:
        results["baseline"] = run(a.baseline)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
