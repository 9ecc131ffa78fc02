"""Catalogue rules and byte parity with the Python downloader (DESIGN §3-4),
through the mount and the subcommands, on the fixture's parity catalogue."""

import json
import os
import re
import unicodedata

import pytest

from helpers import costume, index_rows, read_file
from test_cli_helpers import Cli, json_lines, tree

# Character 36 of the parity catalogue, in the Python downloader's order
# (bili_036_collabo_ur is 36's by the costume index; 036_guest_37_sr is 37's).
ORDER_36 = ["036_live_sr_01", "036_collabo_d_3_ur", "036_dream_festival_3_ur", "bili_036_collabo_ur",
            "036_live_event_307_ssr", "036_casual-2023", "036_school_winter-2023", "036_2024_furisode",
            "036_birthday_2024_ssr", "036_collabo_a_ur", "036_live_default"]

# zh-hans display names: equal names (after NFC) told apart by id, and
# "Sora (50)" kept by the character whose own name it is.
CHARACTERS = {"户山 香澄": 1, "花园 多惠": 2, "高松 灯": 36, "千早 爱音": 37,
              "奥泽 美咲 (15)": 15, "奥泽 美咲 (601)": 601, "Café (40)": 40, "Café (41)": 41,
              "Sora (50) (50)": 50, "Sora (51)": 51, "Sora (50)": 52,
              "777": 777}  # no roster entry: listed by its id


@pytest.fixture
def porigin(make_origin):
    return make_origin("--catalogue", "parity")


@pytest.fixture
def pcli(l2dfs_bin, porigin, tmp_path):
    return Cli(l2dfs_bin, porigin, tmp_path / "cache0")


def site_key(name):
    """The Python downloader's search_costumes key."""
    m = re.search(r"\d+", name.split("_", 1)[1]) if "_" in name else None
    return (name.endswith("live_event"), int(m.group()) if m else float("inf"), name)


def rows(r):
    return [line.split("\t") for line in r.stdout.splitlines()]


def test_every_bundle_is_reachable(mount, porigin):
    m = mount(origin=porigin)
    cat = porigin.catalogue()
    flat = os.listdir(m["costumes"])
    assert sorted(flat) == sorted(cat["costumes"]) and len(flat) == len(set(flat))
    for name in ("bili_001_collabo_r", "bili_036_collabo_ur", "l2dres00001", "036_guest_37_sr"):
        assert name in flat
        assert json.loads(read_file(os.path.join(m["costumes"], name, "model.json")))["model"]
    assert "bili_001_collabo_r" in os.listdir(m["characters/户山 香澄"])
    assert "036_guest_37_sr" in os.listdir(m["characters/千早 爱音"])
    assert "036_guest_37_sr" not in os.listdir(m["characters/高松 灯"])
    under = [n for ch in os.listdir(m["characters"]) for n in os.listdir(os.path.join(m["characters"], ch))]
    assert "l2dres00001" not in under and len(under) == len(set(under))
    assert sorted(under) == sorted(n for n in flat if n != "l2dres00001")


def test_character_names_are_nfc_and_distinct(mount, porigin):
    m = mount(origin=porigin)
    names = os.listdir(m["characters"])
    assert len(names) == len(set(names))
    assert sorted(names) == sorted(CHARACTERS)
    for n in names:
        assert unicodedata.normalize("NFC", n) == n
        ids = {int(re.search(r"\d+", c).group()) for c in os.listdir(os.path.join(m["characters"], n))}
        assert CHARACTERS[n] in ids, n


def test_costume_order(mount, porigin, pcli, tmp_path):
    assert sorted(ORDER_36, key=site_key) == ORDER_36
    m = mount(origin=porigin, cache_dir=pcli.cache)
    assert os.listdir(m["characters/高松 灯"]) == ORDER_36
    r = pcli("costumes", "36")
    assert r.returncode == 0, r.stderr
    assert [row[0] for row in rows(r)] == ORDER_36
    r = pcli("pull", "高松 灯", "--to", tmp_path / "out", "--json", "-j", "1")
    assert r.returncode == 0, r.stderr
    seen = []
    for e in json_lines(r.stdout):
        if e.get("live2d_name") and e["live2d_name"] not in seen:
            seen.append(e["live2d_name"])
    assert seen == ORDER_36


def test_ambiguous_names_list_candidates(pcli, tmp_path):
    for cmd in (("costumes",), ("pull", "--to", str(tmp_path / "out"))):
        r = pcli(*cmd, "Misaki Okusawa", opts={"lang": "en"})
        assert r.returncode != 0 and r.stdout == ""
        assert "15\tMisaki Okusawa (15)" in r.stderr and "601\tMisaki Okusawa (601)" in r.stderr
    assert not os.path.exists(tmp_path / "out")
    for ident, name in (("15", "015_casual-2023"), ("601", "601_casual-2023")):
        r = pcli("costumes", ident, opts={"lang": "en"})
        assert r.returncode == 0, r.stderr
        assert [row[0] for row in rows(r)] == [name]
    # An exact name, typed decomposed (NFD), is that character.
    r = pcli("costumes", unicodedata.normalize("NFD", "Café (41)"), opts={"lang": "en"})
    assert r.returncode == 0, r.stderr
    assert [row[0] for row in rows(r)] == ["041_casual-2023"]
    r = pcli("costumes", "777")
    assert r.returncode == 0 and [row[0] for row in rows(r)] == ["bili_777_collabo_r"], r.stderr
    r = pcli("pull", "601", "--to", tmp_path / "out601")
    assert r.returncode == 0, r.stderr
    assert os.listdir(tmp_path / "out601") == ["601_casual-2023"]


NAME_TXT = {
    "036_live_sr_01": "English only（日服）",         # only en: the first non-null, marked
    "036_school_winter-2023": "冬の制服（日服）",      # zh-hans null: Japanese, marked
    "036_collabo_d_3_ur": "悠闲对话",                 # zh-hans itself
}


def test_name_txt_bytes(mount, porigin, pcli, tmp_path):
    m = mount(origin=porigin, cache_dir=pcli.cache)
    for name, text in NAME_TXT.items():
        p = os.path.join(m["costumes"], name, "name.txt")
        assert os.stat(p).st_size == len(text.encode())
        assert read_file(p) == text.encode()
    assert "name.txt" not in os.listdir(os.path.join(m["costumes"], "bili_001_collabo_r"))
    out = tmp_path / "out"
    for name, text in NAME_TXT.items():
        r = pcli("pull", name, "--to", out)
        assert r.returncode == 0, r.stderr
        assert (out / name / "name.txt").read_bytes() == text.encode()


def test_colliding_textures_are_both_kept(mount, porigin, pcli, tmp_path):
    name = "036_collabo_d_3_ur"
    c = costume(porigin, name)
    want = ["textures/texture_00.png", "textures/texture_01.png", "textures/texture_00-2.png"]
    assert c.model_json["textures"] == want
    assert c.files["textures/texture_00-2.png"].endswith("036_general_rip/texture_00.png")
    m = mount(origin=porigin, cache_dir=pcli.cache)
    root = os.path.join(m["costumes"], name)
    assert sorted(os.listdir(os.path.join(root, "textures"))) == sorted(os.path.basename(t) for t in want)
    assert json.loads(read_file(os.path.join(root, "model.json")))["textures"] == want
    for rel in want:
        assert read_file(os.path.join(root, rel)) == porigin.expected(c.files[rel]), rel
    assert read_file(os.path.join(root, want[0])) != read_file(os.path.join(root, want[2]))
    r = pcli("pull", name, "--to", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    files, _ = tree(tmp_path / "out" / name)
    for rel in want:
        assert files[rel] == porigin.expected(c.files[rel]), rel
    assert json.loads(files["model.json"]) == json.loads(read_file(os.path.join(root, "model.json")))
    got = index_rows(pcli.cache, "SELECT f.name FROM costume_files f JOIN costumes c ON c.id=f.costume_id"
                     " WHERE c.live2d_name=? AND f.dir=1 ORDER BY f.position", (name,))
    assert [g["name"] for g in got] == [os.path.basename(t) for t in want]


def test_catalogue_rejects_are_one_line(mount, porigin, pcli, tmp_path):
    doc = json.loads(porigin.expected("/api/costumes/all.5.json"))
    doc.update({"x%d" % i: {} for i in range(3)})  # ids that are not numbers
    porigin.document("/api/costumes/all.5.json", json=doc)
    r = pcli("costumes", "36")  # fetches and parses the catalogue
    assert r.returncode == 0 and "left out" not in r.stderr, r.stderr
    m = mount(origin=porigin, cache_dir=tmp_path / "own")
    for _ in range(2):
        os.listdir(m["characters"])
    log = m.log_text()
    assert len(re.findall(r"catalogue: 3 entries left out", log)) == 1, log[-3000:]
    assert len(re.findall(r"catalogue: left out costumes \"x\d\"", log)) == 3  # debug detail
