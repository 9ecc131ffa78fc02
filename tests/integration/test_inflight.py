"""A stat of a file nobody fetches probes it; a reader gets the body before
the commit (the hearing of sizes in flight: tests/unit/test_library.c)."""

import os

from helpers import TEX0, TEX1, costume, file_row, read_file, wait_for


def test_stat_of_a_file_nobody_fetches_uses_head(mount, origin):
    m = mount(opts={"prefetch": "off"})
    c = costume(origin)
    url = c.files[TEX1]
    assert os.stat(c.path(m, TEX1)).st_size == len(origin.expected(url))
    assert origin.count("HEAD", url) == 1
    assert origin.asset_gets() == {}


def test_reader_served_before_the_commit(mount, origin):
    m = mount(opts={"prefetch": "off"}, env={"L2DFS_TEST_COMMIT_DELAY_MS": "3000"})
    c = costume(origin)
    url = c.files[TEX0]
    cached = c.cache_file(m.cache, TEX0)
    assert read_file(c.path(m, TEX0)) == origin.expected(url)
    assert file_row(m, c, TEX0)["state"] == "downloading"
    assert not os.path.exists(cached)
    assert wait_for(lambda: os.path.exists(cached), 15)
    assert wait_for(lambda: file_row(m, c, TEX0)["state"] == "completed", 15)
    assert read_file(cached) == origin.expected(url)
    assert [p for p in os.listdir(os.path.dirname(cached)) if p.startswith(".tmp.")] == []


def test_status_after_a_read_waits_for_its_commit(mount, origin):
    m = mount(opts={"prefetch": "off"}, env={"L2DFS_TEST_COMMIT_DELAY_MS": "1500"})
    c = costume(origin)
    url = c.files[TEX0]
    path = c.path(m, TEX0)
    assert read_file(path) == origin.expected(url)
    assert file_row(m, c, TEX0)["state"] == "downloading"
    # The row lags the read; the file's status attributes do not.
    assert os.getxattr(path, "user.l2dfs.state") == b"completed"
    assert os.getxattr(path, "user.l2dfs.url").decode() == origin.url + url
    assert file_row(m, c, TEX0)["state"] == "completed"


def test_stat_of_a_file_being_fetched_sends_no_head(mount, origin):
    """The motions' sizes stay unknown (their HEADs fail); reading a texture
    queues the costume (prefetch); a stat of a motion whose GET is under way
    takes the size from that GET's answer: no HEAD, and no wait for the body
    (which then trickles at 1 KB/s)."""
    m = mount()
    c = costume(origin)
    sizes = {rel: len(origin.expected(url)) for rel, url in c.files.items() if rel.startswith("motions/")}
    big = [rel for rel, n in sizes.items() if n > 4096]
    assert big, "no motion takes seconds to trickle"
    origin.fault(path=r"\.mtn$", method="HEAD", kind="status", status=503)
    origin.fault(path=r"\.mtn$", method="GET", kind="latency", ms=1000)
    assert read_file(c.path(m, TEX0)) == origin.expected(c.files[TEX0])
    heads = {rel: origin.count("HEAD", c.files[rel]) for rel in sizes}
    origin.config(bandwidth=1024)  # every answer from here on, the origin's own too
    try:
        assert {rel: os.stat(c.path(m, rel)).st_size for rel in sizes} == sizes
        assert not any(os.path.exists(c.cache_file(m.cache, rel)) for rel in big)
    finally:
        origin.config(bandwidth=0)
    assert {rel: origin.count("HEAD", c.files[rel]) for rel in sizes} == heads
    assert all(origin.count("GET", c.files[rel]) == 1 for rel in sizes)
