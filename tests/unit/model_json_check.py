"""Checks model.json texts rendered by the C writer (test_parsers.c) against
Python's own json.dumps(obj, ensure_ascii=False, indent=2) of the dict the
Python downloader renders from the same files. One JSON line per costume:
{"files": [[kind, rel_path], ...], "text": rendered}; kind 0 model, 1 physics,
2 texture, 3 motion, 4 expression. Exit 1 on the first difference."""

import json
import sys

HEAD = {
    "version": "3.1",
    "layout": {"center_x": 0, "center_y": 0, "width": 2},
    "hit_areas_custom": {"body_x": [-0.3, 0.2], "body_y": [0.3, -1.9],
                         "head_x": [-0.25, 1], "head_y": [0.25, 0.2]},
}


def render(files):
    out = dict(HEAD)
    model = [rel for k, rel in files if k == 0]
    if model:
        out["model"] = model[0]
    out["textures"] = [rel for k, rel in files if k == 2]
    motions = {}
    for k, rel in files:
        if k == 3:
            base = rel.rsplit("/", 1)[-1]
            stem = base[:-4] if base.endswith(".mtn") else base
            group = "".join(c for c in stem if c.isascii() and c.isalpha()) or "motion"
            motions.setdefault(group, []).append({"name": stem, "file": rel})
    out["motions"] = motions
    out["expressions"] = []
    for k, rel in files:
        if k == 4:
            base = rel.rsplit("/", 1)[-1]
            out["expressions"].append({"name": base[:-5] if base.endswith(".json") else base, "file": rel})
    physics = [rel for k, rel in files if k == 1]
    if physics:
        out["physics"] = physics[0]
    return out


def main(path):
    n = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            case = json.loads(line)
            want = json.dumps(render(case["files"]), ensure_ascii=False, indent=2)
            if case["text"] != want:
                print("model.json differs from json.dumps:\n%r\n%r" % (case["text"], want))
                return 1
            n += 1
    print("%d model.json texts byte-equal to json.dumps" % n)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
