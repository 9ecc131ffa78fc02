"""A faulty link between the mount and the origin (scripts/fault_proxy.py:
503s, resets before and inside bodies, short bodies, stalls longer than the
mount's timeout). Parallel `cp -r` of costumes through the mount: every copy
ends, every file is right or its copy said it failed, and nothing is asked for
the costumes nobody reads."""

import json
import os
import re
import subprocess
import time

import pytest

from helpers import FaultProxy, costume, read_file, wait_for

COPIES = 8
COPY_LIMIT_S = 60  # each copy: a hung read would take the test's whole time


def copied_files(root):
    for d, _, files in os.walk(root):
        for f in files:
            yield os.path.relpath(os.path.join(d, f), root)


def failed_paths(stderr, src):
    """Files of src that cp said it could not copy (their path relative to
    src; "" for src itself)."""
    out = set()
    for m in re.finditer(r"'([^']*)'", stderr):
        p = m.group(1)
        if p == src:
            out.add("")
        elif p.startswith(src + "/"):
            out.add(p[len(src) + 1:])
    return out


def requests_for(log, names):
    """Requests in the origin's log that name one of the costumes."""
    pat = re.compile(r"/(%s)(_rip/|\.png$)" % "|".join(re.escape(n) for n in names))
    return [e for e in log if pat.search(e[2])]


def quiet_for(origin, seconds):
    """True once the origin has heard nothing for `seconds`."""
    n = origin.stats()["total"]
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0.1)
        if origin.stats()["total"] != n:
            return False
    return True


LINKS = {
    # A bit of everything.
    "mixed": dict(rate=0.25, kinds=["503", "reset", "midreset", "short", "stall"]),
    # Half the connections reset before any answer: a flaky link, not a
    # dead origin (three in a row must not fail everything in flight).
    "resets": dict(rate=0.5, kinds=["reset"]),
}


@pytest.fixture
def make_proxy(tmp_path):
    """make_proxy(origin, **kw): a FaultProxy stopped when the test ends."""
    started = []

    def make(origin, **kw):
        started.append(FaultProxy(tmp_path / ("proxy%d" % len(started)), origin, **kw))
        return started[-1]

    yield make
    for p in started:
        p.stop()


@pytest.mark.parametrize("link", sorted(LINKS))
def test_parallel_copies_over_a_faulty_link(make_origin, make_proxy, mount, tmp_path, link):
    origin = make_origin("--catalogue", "parity")
    proxy = make_proxy(origin, rate=0, stall=4, seed=15, kinds=LINKS[link]["kinds"])
    # A stall outlasts the timeout: the engine gives up on it and tries again.
    m = mount(origin=proxy, opts={"timeout": "2"})
    names = sorted(origin.catalogue()["costumes"])
    os.listdir(m["costumes"])
    read = names[::max(1, len(names) // COPIES)][:COPIES]
    unread = [n for n in names if n not in read]
    origin.reset()
    proxy.config(rate=LINKS[link]["rate"])

    procs = {}
    for n in read:
        procs[n] = subprocess.Popen(["cp", "-r", os.path.join(m["costumes"], n), str(tmp_path / n)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    hung, errors, wrong, files = [], {}, [], 0
    for n, p in procs.items():
        try:
            _, err = p.communicate(timeout=max(1, COPY_LIMIT_S - (time.monotonic() - t0)))
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate()
            hung.append(n)
        src = os.path.join(m["costumes"], n)
        bad = failed_paths(err, src)
        assert p.returncode == 0 or bad or n in hung, (n, p.returncode, err)
        errors[n] = bad
        c = costume(origin, n)
        expected = dict(c.files)
        for rel in copied_files(tmp_path / n):
            files += 1
            if rel in bad:
                continue
            got = read_file(tmp_path / n / rel)
            if rel == "model.json":
                ok = json.loads(got) == c.model_json
            elif rel == "name.txt":
                ok = len(got) > 0
            else:
                ok = rel in expected and got == origin.expected(expected[rel])
            if not ok:
                wrong.append("%s/%s" % (n, rel))
    failed = sum(len(b) for b in errors.values())
    # Nothing more goes to the origin for costumes nobody read, then or later.
    assert wait_for(lambda: quiet_for(origin, 2), 60)
    asked = requests_for(origin.request_log(), unread)
    print("FAULTY LINK | %s | %d copies, %d hung | %d files, %d wrong, %d reported failed (%.0f %%) | "
          "%d requests for %d unread costumes | proxy %s" %
          (link, len(read), len(hung), files, len(wrong), failed, 100.0 * failed / max(1, files + failed),
           len(asked), len(unread), proxy.stats()))
    assert hung == [], hung
    assert wrong == [], wrong
    assert asked == [], asked[:20]
    # A faulty link is not a dead origin: most files make it.
    assert failed <= files // 4, errors
