"""model.json bytes are exactly Python's json.dumps(obj, ensure_ascii=False,
indent=2) of the Python downloader's dict (DESIGN §3), in `pull`, `cat` and
the mount. The writer itself is checked against json.dumps on generated
awkward names in tests/unit (test_model_json_python_bytes)."""

import json

from helpers import costume, read_file
from test_cli_helpers import Cli


def python_bytes(c):
    return json.dumps(c.model_json, ensure_ascii=False, indent=2).encode()


def test_thirty_costumes_byte_equal(l2dfs_bin, make_origin, mount, tmp_path):
    origin = make_origin("--catalogue", "samples")
    names = sorted(origin.catalogue()["costumes"])[:30]
    assert len(names) == 30
    cli = Cli(l2dfs_bin, origin, tmp_path / "cache0")
    out = tmp_path / "out"
    r = cli("pull", *names, "--to", out, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    equal = [n for n in names if (out / n / "model.json").read_bytes() == python_bytes(costume(origin, n))]
    assert equal == names

    m = mount(origin=origin, cache_dir=cli.cache)
    for name in names[:5]:
        c = costume(origin, name)
        assert read_file(c.path(m, "model.json")) == python_bytes(c)
        got = cli("cat", name + "/model.json")
        assert got.returncode == 0, got.stderr
        assert got.stdout.encode() == python_bytes(c)
