"""What the mount asks of the origin: documents compressed, assets as stored,
and its own traffic (listings, probes, prefetch) within the request budget
while a reader's file goes first."""

import os
import subprocess
import time

from helpers import costume, read_file

TEX = "textures/texture_00.png"


def test_documents_compressed_assets_as_stored(mount, origin):
    origin.config(gzip=True)
    m = mount(opts={"prefetch": "off"})
    c = costume(origin)
    assert os.listdir(c.path(m))
    data = read_file(c.path(m, TEX))
    assert data == origin.expected(c.url(TEX))
    assert os.stat(c.path(m, TEX)).st_size == len(data)
    log = origin.request_log()
    docs = [e for e in log if e[2].startswith("/api/") or e[2].endswith("/buildData.asset")]
    assets = [e for e in log if e not in docs]
    assert len(docs) == 4 and assets
    assert all("gzip" in e[3] for e in docs), docs
    assert all(e[3] == "" for e in assets), assets
    assert any(e[1] == "HEAD" for e in assets)


def test_walk_keeps_to_the_budget_reader_goes_first(mount, origin):
    rate, burst = 20, 5
    m = mount(opts={"prefetch": "off", "max_rate": str(rate), "rate_burst": str(burst)})
    c = costume(origin)
    chars = os.path.join(m.path, "characters")
    # One costume listed with its sizes (probed), its files not downloaded.
    subprocess.run(["ls", "-lR", c.path(m)], check=True, capture_output=True)
    origin.reset()
    walk = subprocess.Popen(["ls", "-lR", chars], stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.5)  # the burst is spent: the walk goes at the rate now
        data = read_file(c.path(m, TEX))
        walking = walk.poll() is None
    finally:
        assert walk.wait(60) == 0
    assert data == origin.expected(c.url(TEX))
    log = origin.request_log()
    gets = [e for e in log if e[1] == "GET" and e[2] == c.url(TEX)]
    assert len(gets) == 1
    # The reader did not queue behind the walk's remaining requests.
    assert walking
    assert len(log) > 5 * burst
    times = [e[0] for e in log]
    busiest = max(sum(1 for u in times if t <= u < t + 1) for t in times)
    assert busiest <= rate + burst, busiest
