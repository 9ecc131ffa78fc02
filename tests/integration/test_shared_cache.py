"""Two processes on one cache: a subcommand started next to a running mount
must not take over what the mount is doing (its downloads in flight)."""

import pathlib
import re
import subprocess
import threading

from helpers import TEX0, asset_row, costume, read_file, wait_for



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
