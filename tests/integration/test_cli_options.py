"""Options from L2DFS_OPTIONS, libfuse's mount options, and mount point hygiene."""

import os
import re
import signal
import subprocess

import pytest

from helpers import costume, mount_fstype, read_file, wait_for
from test_cli_helpers import Cli, cli  # noqa: F401 (fixture)

DEAD = "http://127.0.0.1:1"  # nothing listens there


def run(cmd, env, timeout=60):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout,
                          env=env)


def run_refused(cmd, env, mountpoints):
    """run() a command that must not mount; if it did, take the mount off again."""
    try:
        return run(cmd, env, timeout=15)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(cmd, None, "", "kept running")
    finally:
        for p in mountpoints:
            if mount_fstype(p) is not None:
                subprocess.run(["fusermount3", "-uz", str(p)], capture_output=True)


def env_with(options):
    return dict(Cli.env(), L2DFS_OPTIONS=options)


def origin_options(origin, cache):
    return "api_url=%s,assets_url=%s,cache_dir=%s" % (origin.api, origin.assets, cache)


def mount_info(path):
    """(fstype, source, super options) of the mount at path, or None."""
    want = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            mp = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), left.split(" ")[4])
            if mp == want:
                fstype, source, opts = right.split(" ")[:3]
                return fstype, source, opts.strip().split(",")
    return None


# ---- L2DFS_OPTIONS ----


def test_subcommand_reads_l2dfs_options(l2dfs_bin, origin, tmp_path):
    env = env_with(origin_options(origin, tmp_path / "c"))
    r = run([l2dfs_bin, "costumes", "高松 灯"], env)
    assert r.returncode == 0, r.stderr
    assert "036_live_event_307_ssr" in r.stdout
    assert os.path.exists(tmp_path / "c" / "index.db")


def test_command_line_overrides_l2dfs_options(l2dfs_bin, origin, tmp_path):
    good, cache = origin_options(origin, tmp_path / "c"), tmp_path / "c"
    # The environment's origin is dead, -o names the live one: -o wins.
    env = env_with("api_url=%s/api,assets_url=%s/assets,cache_dir=%s" % (DEAD, DEAD, cache))
    r = run([l2dfs_bin, "costumes", "-o", good, "高松 灯"], env)
    assert r.returncode == 0 and "036_live_event_307_ssr" in r.stdout, r.stderr
    # And the other way round: a dead origin on the command line fails.
    r = run([l2dfs_bin, "search", "-o", "api_url=%s/api,cache_dir=%s" % (DEAD, tmp_path / "d"),
             "Tomori"], env_with(good))
    assert r.returncode == 5 and DEAD in r.stderr, r.stderr


def test_command_line_mirrors_replace_those_of_l2dfs_options(l2dfs_bin, origin, tmp_path):
    """Eight dead mirrors in the environment, the live origin as the one mirror
    of -o: it replaces them (nine would be too many)."""
    dead = ",".join("%s/m%d" % (DEAD, i) for i in range(8))
    env = env_with("api_url=%s/api,assets_url=%s/assets,cache_dir=%s,retry_base_ms=20,mirror=%s"
                   % (DEAD, DEAD, tmp_path / "c", dead))
    r = run([l2dfs_bin, "costumes", "-o", "mirror=" + origin.url, "高松 灯"], env)
    assert r.returncode == 0 and "036_live_event_307_ssr" in r.stdout, r.stderr
    # The environment's mirrors alone (and a fresh cache) reach nothing.
    r = run([l2dfs_bin, "costumes", "-o", "cache_dir=%s" % (tmp_path / "d"), "高松 灯"], env)
    assert r.returncode == 5, r.stderr


def test_bad_l2dfs_options_are_named(l2dfs_bin, tmp_path):
    (tmp_path / "mnt").mkdir()
    env = env_with("cache_dir=%s,retries=99" % (tmp_path / "c"))
    for cmd in ([l2dfs_bin, "-f", tmp_path / "mnt"], [l2dfs_bin, "status", "x"],
                [l2dfs_bin, "gc", "--max-size", "1G"]):
        r = run_refused(cmd, env, [tmp_path / "mnt"])
        assert r.returncode == 1, (cmd, r.stderr)
        assert "L2DFS_OPTIONS" in r.stderr and "retries" in r.stderr and "0-20" in r.stderr, r.stderr
    r = run_refused([l2dfs_bin, "-o", "frobnicate", tmp_path / "mnt"], env_with(""), [tmp_path / "mnt"])
    assert r.returncode == 1 and "L2DFS_OPTIONS" not in r.stderr and "frobnicate" in r.stderr
    # --help still answers.
    assert run([l2dfs_bin, "--help"], env).returncode == 0
    assert run([l2dfs_bin, "pull", "--help"], env).returncode == 0


def test_mount_reads_l2dfs_options(mount, origin, tmp_path):
    cache = tmp_path / "envcache"
    m = mount(opts={"api_url": None, "assets_url": None, "cache_dir": None},
              env={"L2DFS_OPTIONS": origin_options(origin, cache) + ",lang=en"})
    assert "-o" in m.command() and origin.api not in " ".join(m.command())
    c = costume(origin, lang="en")
    assert c.character in os.listdir(m["characters"])
    assert read_file(c.path(m, "textures/texture_00.png")) == origin.expected(c.files["textures/texture_00.png"])
    assert os.path.exists(cache / "index.db")


def test_mount_option_overrides_l2dfs_options(mount, origin):
    m = mount(opts={"lang": "ja"}, env={"L2DFS_OPTIONS": "lang=en"})
    assert costume(origin, lang="ja").character in os.listdir(m["characters"])


# ---- libfuse's mount options ----


def test_libfuse_mount_options_pass_through(mount):
    m = mount(opts={"default_permissions": True, "allow_root": True})
    fstype, source, opts = mount_info(m.path)
    assert (fstype, source) == ("fuse.l2dfs", "l2dfs")
    # libfuse mounts allow_root as allow_other and turns others away itself.
    assert "default_permissions" in opts and "allow_other" in opts, opts
    assert os.listdir(m["characters"])


def test_auto_unmount_unmounts_a_killed_daemon(mount):
    """fusermount3 unmounts once the daemon is gone and opening the mount's
    root fails with ENOTCONN: l2dfs opens folders itself under auto_unmount,
    or the kernel would open the root without asking and the mount would
    stay. fusermount3 (3.14) races the kernel at the daemon's death (its open
    may come while the connection is being torn down, and fail otherwise):
    under load about 1 kill in 20 leaves the mount, whatever the daemon, so
    one of three kills must be seen through."""
    for _ in range(3):
        m = mount(opts={"auto_unmount": True})
        assert os.listdir(m["characters"])
        m.kill9()
        if wait_for(lambda: mount_fstype(m.path) is None, 10):
            return
        m.unmount()
    pytest.fail("still mounted 10 s after SIGKILL, three times")


def test_fsname_and_subtype(mount, tmp_path):
    m = mount(opts={"fsname": "bestdori", "subtype": "live2d"}, start=False)
    os.makedirs(m.path)
    proc = subprocess.Popen(m.command(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=m.env())
    try:
        assert wait_for(lambda: mount_info(m.path) is not None, 10)
        fstype, source, _ = mount_info(m.path)
        assert (fstype, source) == ("fuse.live2d", "bestdori")
        assert os.listdir(os.path.join(m.path, "characters"))
    finally:
        if mount_info(m.path):
            subprocess.run(["fusermount3", "-u", m.path], capture_output=True)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0


# ---- the mount point ----


def test_second_mount_on_one_mount_point_is_refused(mount, origin, l2dfs_bin):
    m = mount()
    c = costume(origin)
    second = subprocess.Popen(m.command(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=m.env())
    try:
        out, err = second.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        # It mounted on top of the first: take it off again.
        subprocess.run(["fusermount3", "-u", m.path], capture_output=True)
        second.kill()
        second.communicate()
        raise AssertionError("a second l2dfs mounted on %s" % m.path)
    assert second.returncode == 2, err
    assert "already has an l2dfs mount" in err and m.path in err
    # The first one is untouched and serves.
    assert m.alive()
    assert read_file(c.path(m, "textures/texture_00.png")) == origin.expected(c.files["textures/texture_00.png"])
    # A daemonizing second mount is refused the same way, before it forks.
    r = run([l2dfs_bin, "-o", "cache_dir=%s" % m.cache, m.path], Cli.env(), timeout=15)
    if r.returncode == 0:
        subprocess.run(["fusermount3", "-u", m.path], capture_output=True)
    assert r.returncode == 2 and "already has an l2dfs mount" in r.stderr


def test_extra_positional_argument_is_a_usage_error(l2dfs_bin, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    r = run_refused([l2dfs_bin, "-f", "-o", "cache_dir=%s" % (tmp_path / "c"), a, b], Cli.env(), [a, b])
    assert r.returncode == 1 and "too many arguments: %s" % b in r.stderr, r.stderr
