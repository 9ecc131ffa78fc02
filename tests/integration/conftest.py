"""Fixtures: a fixture origin per test, l2dfs mounts that are always unmounted."""

import os
import threading

import pytest

from helpers import REPO, Mount, Origin, sanitizer_report

TEST_TIMEOUT = float(os.environ.get("L2DFS_TEST_TIMEOUT", "90"))


@pytest.fixture
def make_origin(tmp_path):
    """make_origin(*args): a fixture server started with extra command-line args."""
    started = []

    def make(*args):
        o = Origin(tmp_path / ("origin%d" % len(started)), args)
        started.append(o)
        return o

    yield make
    for o in started:
        o.stop()


@pytest.fixture
def origin(make_origin):
    """The small catalogue on a fresh port; .stop()/.start() keep the port."""
    return make_origin()


@pytest.fixture(scope="session")
def l2dfs_bin():
    # The test build (make: build/l2dfs-test): the release binary has no test switches.
    path = os.environ.get("L2DFS_BIN") or str(REPO / "build" / "l2dfs-test")
    if not os.access(path, os.X_OK):
        pytest.skip("no l2dfs binary at %s (run make, or set L2DFS_BIN)" % path)
    return path


@pytest.fixture(scope="session")
def l2dfs_release_bin(l2dfs_bin):
    """The release build (make: build/l2dfs), which make install installs."""
    path = os.environ.get("L2DFS_RELEASE_BIN") or os.path.join(os.path.dirname(l2dfs_bin), "l2dfs")
    if not os.access(path, os.X_OK):
        pytest.skip("no release binary at %s (run make, or set L2DFS_RELEASE_BIN)" % path)
    return path


@pytest.fixture
def mount(request, tmp_path, l2dfs_bin, make_origin):
    """mount(origin=None, cache_dir=None, mountpoint=None, opts={}, env={}, args=[],
    foreground=True, start=True).

    Runs `l2dfs -f -o api_url=...,assets_url=...,cache_dir=...,retry_base_ms=20,
    log_level=debug[,opts] MOUNTPOINT` and waits until it is mounted. Fresh
    temporary mount point and cache unless given. Every mount is unmounted at
    teardown; a process that crashed or reported a sanitizer error fails the
    test (origins outlive the mounts). A watchdog kills the processes of a test that runs over
    L2DFS_TEST_TIMEOUT seconds, so a hung request cannot block the suite."""
    mounts = []
    fired = []

    def watchdog():
        fired.append(True)
        for m in mounts:
            if m.alive():
                m.kill9()

    timer = threading.Timer(TEST_TIMEOUT, watchdog)
    timer.daemon = True
    timer.start()

    def make(origin=None, cache_dir=None, mountpoint=None, opts=None, env=None, args=(), foreground=True,
             start=True):
        if origin is None:
            origin = request.getfixturevalue("origin")
        n = len(mounts)
        cache = cache_dir or str(tmp_path / ("cache%d" % n))
        mnt = mountpoint or str(tmp_path / ("mnt%d" % n))
        m = Mount(l2dfs_bin, origin, cache, mnt, opts, env, args, foreground)
        mounts.append(m)
        return m.start() if start else m

    yield make
    timer.cancel()
    problems = []
    for m in reversed(mounts):
        rc = m.unmount()
        report = sanitizer_report(m.log_text())
        if report:
            problems.append("%s: %s in the log:\n%s" % (m.path, report, m.log_text()[-6000:]))
        elif rc not in (None, 0) and not m.killed:
            problems.append("%s: l2dfs exited with %s:\n%s" % (m.path, rc, m.log_text()[-4000:]))
    if fired:
        problems.insert(0, "test ran over %.0f s: l2dfs killed" % TEST_TIMEOUT)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
