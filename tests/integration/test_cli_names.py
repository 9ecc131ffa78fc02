"""`l2dfs search` and `l2dfs costumes`: finding characters and their costumes."""

import os

from test_cli_helpers import cli, json_lines  # noqa: F401 (fixture)


def rows(r):
    return [line.split("\t") for line in r.stdout.splitlines()]


def test_search_in_the_chosen_language(cli):
    r = cli("search", "灯")
    assert r.returncode == 0, r.stderr
    assert rows(r) == [["36", "高松 灯", "100.0"]]
    # Not in zh-hans names, as the Python downloader's search_character("Tomori").
    r = cli("search", "Tomori")
    assert r.returncode == 5 and r.stdout == ""
    assert "--all-languages" in r.stderr
    r = cli("search", "Tomori", opts={"lang": "en"})
    assert rows(r) == [["36", "Tomori Takamatsu", "100.0"]]


def test_search_all_languages_and_normalization(cli):
    r = cli("search", "--all-languages", "Tomori")
    assert r.returncode == 0, r.stderr
    assert rows(r) == [["36", "高松 灯", "100.0"]]
    # Case folding and NFKC (full-width letters).
    for query in ("TOMORI", "ｔｏｍｏｒｉ"):
        assert rows(cli("search", "--all-languages", query)) == [["36", "高松 灯", "100.0"]]
    # A typo: "tomri" against "tomor" keeps 4 of 5 letters (80 >= 75).
    r = cli("search", "--all-languages", "--json", "Tomri")
    assert [(m["id"], m["name"], m["score"]) for m in json_lines(r.stdout)] == [(36, "高松 灯", 80)]
    # Below the threshold: 3 of 5 is 60.
    assert cli("search", "--all-languages", "Txmxri").returncode == 5
    # Every character sharing a surname-like fragment, best first.
    r = cli("search", "--all-languages", "a")
    ids = [row[0] for row in rows(r)]
    assert r.returncode == 0 and sorted(ids) == ["1", "2", "36", "37"]


def test_costumes_in_the_mounts_order(cli, mount):
    r = cli("costumes", "高松 灯")
    assert r.returncode == 0, r.stderr
    names = [row[0] for row in rows(r)]
    m = mount(cache_dir=cli.cache)
    assert names == os.listdir(os.path.join(m.path, "characters", "高松 灯"))
    # By the first number after the first '_' (names ending in live_event last).
    assert names == ["036_dream_festival_3_ur", "036_live_event_307_ssr", "036_casual-2023",
                     "036_school_winter-2023"]
    assert ["036_live_event_307_ssr", "迷途之诗"] in rows(r)
    assert ["036_school_winter-2023", "冬の制服（日服）"] in rows(r)  # Japanese where zh-hans is missing
    r = cli("costumes", "--no-live-event", "灯")  # fuzzy
    assert [row[0] for row in rows(r)] == [n for n in names if "live_event" not in n]
    r = cli("costumes", "--json", "Anon Chihaya", opts={"lang": "en"})
    got = [(c["live2d_name"], c["name"]) for c in json_lines(r.stdout)]
    assert ("037_live_default", "Let's Start a Lifetime") in got
    assert ("037_casual-2023", "") in got


def test_costumes_of_an_unknown_character(cli):
    r = cli("costumes", "Kasumi")  # zh-hans names only
    assert r.returncode == 1 and r.stdout == ""
    assert "no character 'Kasumi'" in r.stderr
