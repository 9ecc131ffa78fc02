"""model.json bytes are exactly Python's json.dumps(obj, ensure_ascii=False,
indent=2) of the Python downloader's dict (DESIGN §3), in `pull`, `cat`,
the mount and the Python package. The writer itself is checked against json.dumps on generated
awkward names in tests/unit (test_model_json_python_bytes)."""

import json

from helpers import costume, read_file
from test_cli_helpers import Cli
from test_python_api import run_script, settings


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

    # The Python package: Live2dDownloader on the same cache, each costume's model.json.
    code = settings(origin, cli.cache) + (
        "from pathlib import Path\n"
        "from live2d_download import BestdoriClient, Live2dDownloader\n"
        "d = Live2dDownloader(BestdoriClient(**SETTINGS))\n"
        "for n in %r:\n"
        "    d.download_live2d_name(n, root_dir=Path('models'))\n" % names)
    r = run_script(l2dfs_bin, tmp_path / "app", code, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    models = tmp_path / "app" / "models"
    equal = [n for n in names if (models / n / "model.json").read_bytes() == python_bytes(costume(origin, n))]
    assert equal == names, "%d of 30 byte-equal" % len(equal)

    m = mount(origin=origin, cache_dir=cli.cache)
    for name in names[:5]:
        c = costume(origin, name)
        assert read_file(c.path(m, "model.json")) == python_bytes(c)
        got = cli("cat", name + "/model.json")
        assert got.returncode == 0, got.stderr
        assert got.stdout.encode() == python_bytes(c)
