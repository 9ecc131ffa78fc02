"""Two processes on one cache: a subcommand started next to a running mount
must not take over what the mount is doing (its downloads in flight)."""

import os
import pathlib
import re
import subprocess
import threading
import time

from helpers import TEX0, asset_row, costume, read_file, wait_for
from test_cli_helpers import cli  # noqa: F401 (fixture)



def test_status_beside_a_mount_leaves_its_downloads_alone(mount, origin, l2dfs_bin):
    m = mount(opts={"prefetch": "off"})
    c = costume(origin)
    url = c.files[TEX0]
    bundle, file = re.match(r"/assets/jp/(.+)_rip/([^/]+)$", url).groups()
    origin.fault(path=re.escape(url) + "$", method="GET", kind="stall", seconds=3, count=1)
    got = {}
    reader = threading.Thread(target=lambda: got.update(data=read_file(c.path(m, TEX0))))
    reader.start()
    assert wait_for(lambda: (asset_row(m.cache, bundle, file) or {}).get("state") == "downloading", 5)
    temps = list(pathlib.Path(m.cache).rglob(".tmp.*"))
    assert temps, "the download in flight writes a temporary"
    r = subprocess.run([l2dfs_bin, "status", "-o", "cache_dir=%s" % m.cache, "%s/%s" % (c.name, TEX0)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert re.search(r"^state:\s+downloading$", r.stdout, re.M), r.stdout
    assert asset_row(m.cache, bundle, file)["state"] == "downloading"
    assert all(t.exists() for t in temps), "the mount's temporary was removed"
    reader.join(20)
    assert got["data"] == origin.expected(url)
    assert wait_for(lambda: asset_row(m.cache, bundle, file)["state"] == "completed", 10)


def test_two_commits_of_one_asset_and_a_reader_agree(cli, origin, tmp_path):
    """A pull and a `cat --asset` download the same file at once, in two
    processes, while a third reads it from the cache. The second commit
    (its rename held open between the file and its row by a test delay)
    must not leave a row whose stamp is another file's: no reader may take
    the good copy for damaged and remove it, and the pull succeeds."""
    c = costume(origin)
    url = c.files[TEX0]
    bundle, file = re.match(r"/assets/jp/(.+)_rip/([^/]+)$", url).groups()
    body = origin.expected(url)
    for cmd in (("costumes", "--id", "36"), ("cat", c.name + "/model.json")):  # files known
        r = cli(*cmd)
        assert r.returncode == 0, r.stderr
    assert asset_row(cli.cache, bundle, file)["state"] != "completed"
    # Both downloads of the file are under way at once.
    origin.fault(path=re.escape(url) + "$", method="GET", kind="latency", ms=4000, count=2)

    def start(*args, delay_ms=0, stdout=subprocess.PIPE):
        env = dict(cli.env(), L2DFS_TEST_PUBLISH_DELAY_MS=str(delay_ms))
        return subprocess.Popen(cli.argv(*args), stdout=stdout, stderr=subprocess.PIPE, env=env)

    out = tmp_path / "out"
    pull = start("pull", c.name, "--to", out, stdout=subprocess.DEVNULL)
    assert wait_for(lambda: origin.count("GET", url) >= 1, 20)
    cat_out = open(tmp_path / "cat.out", "wb")  # not a pipe: no one reads it meanwhile
    cat = start("cat", "--asset", "%s/%s" % (bundle, file), delay_ms=3000, stdout=cat_out)
    assert wait_for(lambda: origin.count("GET", url) >= 2 or pull.poll() is not None, 20)
    assert origin.count("GET", url) == 2, "the two downloads did not overlap"

    # Read the file from the cache whenever the index says it is there,
    # until both writers are done, and once more after.
    reads = []
    while True:
        done = pull.poll() is not None and cat.poll() is not None
        if done or asset_row(cli.cache, bundle, file)["state"] == "completed":
            reader = start("cat", "--asset", "%s/%s" % (bundle, file))
            reads.append(reader.communicate(timeout=60) + (reader.returncode,))
        if done:
            break
        time.sleep(0.05)
    outs = {"pull": pull.communicate(timeout=60), "cat": cat.communicate(timeout=60)}
    cat_out.close()
    for name, proc in (("pull", pull), ("cat", cat)):
        assert proc.returncode == 0, (name, outs[name][1])
        assert b"behind our back" not in outs[name][1] and b"is gone" not in outs[name][1], \
            (name, outs[name][1])
    assert (tmp_path / "cat.out").read_bytes() == body
    for stdout, stderr, status in reads:
        assert status == 0, stderr
        assert b"behind our back" not in stderr and b"is gone" not in stderr, stderr
        assert stdout == body
    assert len(reads) >= 2
    assert (out / c.name / TEX0).read_bytes() == body
    row = asset_row(cli.cache, bundle, file)
    assert row["state"] == "completed"
    st = os.stat(os.path.join(cli.cache, "live2d", "assets", "jp", bundle, file))
    assert st.st_mtime_ns == row["stamp"]
