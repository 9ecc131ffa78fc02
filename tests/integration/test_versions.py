"""A file is never served as a mix of two versions (DESIGN §7): the origin
changes a file, the cache evicts it, a reader that holds the old one and a
new reader each get wholly old bytes, wholly new bytes, or an error."""

import base64
import errno
import os
import subprocess

import pytest

from helpers import TEX0, costume, read_file, wait_for

PAGE = 4096


def gc_all(m):
    """Evict every file of the mount's cache (`l2dfs gc` from another process)."""
    r = subprocess.run([m.binary, "gc", "-o", "cache_dir=" + m.cache, "--max-size", "1", "--low-water", "1"],
                       capture_output=True, text=True, env=m.env())
    assert r.returncode in (0, 5), r.stderr


def rest_of(f, size):
    """What reading f to its end gives: (bytes, errno or 0)."""
    out = b""
    try:
        while True:
            chunk = os.read(f, 65536)
            if not chunk:
                return out, 0
            out += chunk
    except OSError as e:
        return out, e.errno


@pytest.mark.parametrize("change", ["longer", "same size"])
def test_a_changed_file_is_never_read_as_a_mix(mount, origin, change):
    c = costume(origin)
    m = mount(opts={"prefetch": "off"})
    url, path = c.files[TEX0], c.path(m, TEX0)
    old = origin.expected(url)
    new = bytes(b ^ 0x5a for b in old) + (b"more" * 20000 if change == "longer" else b"")
    f = os.open(path, os.O_RDONLY)
    try:
        head = os.read(f, PAGE)  # the kernel keeps only the pages read so far
        assert head == old[:PAGE]
        origin.document(url, raw_b64=base64.b64encode(new).decode())
        gc_all(m)
        assert not os.path.exists(c.cache_file(m.cache, TEX0))
        # The reader that holds the old file: wholly old, or an error.
        rest, err = rest_of(f, len(old))
        got = head + rest
        assert err in (0, errno.ESTALE, errno.EIO), os.strerror(err)
        assert got == old[:len(got)], "old and new bytes mixed"
        assert err or got == old
    finally:
        os.close(f)
    # A new reader: wholly new (once the kernel forgot the old file), or an
    # error; never a mix.
    seen = []

    def read_new():
        try:
            data = read_file(path)
        except OSError as e:
            seen.append(e.errno)
            return False
        assert data in (old, new), "a mix of %d bytes" % len(data)
        seen.append(len(data))
        return data == new
    assert wait_for(read_new, 20, interval=0.2), seen
    assert os.stat(path).st_size == len(new)
    assert read_file(c.flat(m, TEX0)) == new


def test_refresh_of_a_costume_asks_again_with_conditional_requests(mount, origin):
    c = costume(origin)
    m = mount(opts={"prefetch": "off"})
    url = c.files[TEX0]
    for rel in (TEX0, "textures/texture_01.png"):
        read_file(c.path(m, rel))
    build = "/assets/jp/live2d/chara/%s_rip/buildData.asset" % c.name
    m.unmount()
    new = bytes(b ^ 0x33 for b in origin.expected(url))
    origin.document(url, raw_b64=base64.b64encode(new).decode())
    origin.reset()
    r = subprocess.run([m.binary, "refresh", "-o", "cache_dir=%s,api_url=%s,assets_url=%s" %
                        (m.cache, origin.api, origin.assets), c.name],
                       capture_output=True, text=True, env=m.env())
    assert r.returncode == 0, r.stderr
    assert "1 file changed" in r.stdout, r.stdout
    asked = origin.requests()
    # buildData again, one conditional HEAD per cached file, no body.
    assert asked.get("GET " + build) == 1
    assert asked.get("HEAD " + url) == 1 and asked.get("HEAD " + c.files["textures/texture_01.png"]) == 1
    assert not any(k.startswith("GET /assets/") and k != "GET " + build for k in asked), asked
    assert not os.path.exists(c.cache_file(m.cache, TEX0))
    assert os.path.exists(c.cache_file(m.cache, "textures/texture_01.png"))
    m2 = mount(cache_dir=m.cache, opts={"prefetch": "off"})
    assert read_file(c.path(m2, TEX0)) == new
