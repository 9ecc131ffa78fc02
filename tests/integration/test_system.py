"""l2dfs in a Linux system: the man page, make install, mount(8) and fstab,
the systemd user unit, and the log (stderr in the foreground, syslog when
daemonized).

mount(8) runs mount.fuse3 without PATH, and mount.fuse3 finds "l2dfs" in
/bin/sh's default PATH. The tests that go through mount(8) therefore work in a
private mount namespace where a folder holding only l2dfs is bind-mounted on
/usr/local/sbin (the first folder of that PATH): nothing outside the
namespace sees it, or the mounts made there."""

import errno
import os
import re
import shlex
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from helpers import PROXY_VARS, REPO, TEX0 as TEX, costume, oserror, read_file, wait_for

MAN = REPO / "doc" / "l2dfs.1"
UNIT = REPO / "contrib" / "l2dfs@.service"
# What mount(8), mount.fuse3 and fstab lines may hand to l2dfs.
FSTAB_NOISE = "noauto,nofail,_netdev,user,x-systemd.automount,x-systemd.idle-timeout=60,defaults,comment=x"

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mount(8) and namespaces need root")


def run(cmd, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 60)
    return subprocess.run([str(c) for c in cmd], **kw)


def clean_env(**extra):
    """The environment without proxies (everything here is on 127.0.0.1)."""
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update(extra)
    return env


def origin_opts(origin, cache):
    return "api_url=%s,assets_url=%s,cache_dir=%s" % (origin.api, origin.assets, cache)


def make(*args):
    return run(["make", "-s", "-C", REPO] + list(args))


def install_args(l2dfs_bin, **kw):
    """make variables that install the binary under test without rebuilding it."""
    bin_path = os.path.abspath(l2dfs_bin)
    args = ["BUILD=" + os.path.dirname(bin_path), "-o", bin_path]
    return args + ["%s=%s" % kv for kv in kw.items()]


# ---- a private mount namespace ----


class Namespace:
    """A mount namespace held by a sleeping process. Commands run in it through
    nsenter; its files are reached from outside through /proc/<pid>/root."""

    def __init__(self):
        self.proc = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sleep", "3600"])
        mine = os.readlink("/proc/self/ns/mnt")
        if not wait_for(lambda: self._ns() not in (None, mine), 5):
            self.close()
            raise RuntimeError("unshare did not start a mount namespace")
        self.ns = self._ns()
        self.mounts = []

    def _ns(self, pid=None):
        try:
            return os.readlink("/proc/%d/ns/mnt" % (pid or self.proc.pid))
        except OSError:
            return None

    def run(self, *cmd, env=None, check=True):
        r = run(["nsenter", "-t", self.proc.pid, "-m", "--"] + list(cmd), env=env or clean_env())
        if check:
            assert r.returncode == 0, "%s: exit %d\n%s%s" % (" ".join(map(str, cmd)), r.returncode,
                                                            r.stdout, r.stderr)
        return r

    def path(self, p):
        return "/proc/%d/root%s" % (self.proc.pid, os.path.abspath(str(p)))

    def bind_l2dfs(self, l2dfs_bin, tmp_path):
        """l2dfs first on /bin/sh's default PATH, in this namespace only."""
        d = tmp_path / "sbin"
        d.mkdir()
        os.symlink(os.path.abspath(l2dfs_bin), d / "l2dfs")
        self.run("mount", "--bind", d, "/usr/local/sbin")

    def mount_of(self, mnt):
        """(fstype, source) of the mount at mnt in the namespace, or None."""
        r = self.run("findmnt", "-n", "-o", "FSTYPE,SOURCE", "--mountpoint", mnt, check=False)
        return tuple(r.stdout.split()) if r.returncode == 0 else None

    def daemons(self):
        """Processes in the namespace other than its holder (the l2dfs daemons)."""
        out = []
        for d in os.listdir("/proc"):
            if d.isdigit() and int(d) != self.proc.pid and self._ns(int(d)) == self.ns:
                out.append(int(d))
        return out

    def mounted(self, mnt):
        self.mounts.append(str(mnt))
        got = wait_for(lambda: self.mount_of(mnt), 10)
        assert got == ("fuse.l2dfs", "l2dfs"), got

    def unmount(self, mnt):
        """umount(8), as root would; the daemon must then exit by itself."""
        self.run("umount", mnt)
        self.mounts.remove(str(mnt))
        assert wait_for(lambda: not self.daemons(), 10), "l2dfs still running after umount"

    def close(self):
        for mnt in self.mounts:
            self.run("umount", "-l", mnt, check=False)
        wait_for(lambda: not self.daemons(), 5)
        for pid in self.daemons():
            os.kill(pid, 9)
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def ns():
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("nsenter"):
        pytest.skip("needs root, unshare and nsenter")
    n = Namespace()
    yield n
    n.close()


def in_mount(c, mnt, rel=""):
    """c's file rel under the mount point mnt (a path, not a Mount)."""
    return os.path.join(str(mnt), "characters", c.character, c.name, rel)


def assert_serves(ns, origin, mnt, cache, lang="zh-hans"):
    """The tree is there, a file has the origin's bytes and lands in cache."""
    c = costume(origin, lang=lang)
    path = ns.path(in_mount(c, mnt, TEX))
    assert c.character in os.listdir(ns.path(mnt / "characters"))
    assert read_file(path) == origin.expected(c.files[TEX])
    assert os.getxattr(path, "user.l2dfs.state") == b"completed"
    assert os.getxattr(path, "user.l2dfs.cache_path").decode().startswith(str(cache) + "/live2d/assets/jp/")


# ---- the man page ----


def man_source():
    return MAN.read_text()


def roff(text):
    return text.replace("-", "\\-")


def test_man_page_renders_without_warnings():
    r = run(["groff", "-man", "-ww", "-z", MAN])
    assert r.returncode == 0 and r.stderr == "", r.stderr
    r = run(["man", "-l", MAN], env=dict(os.environ, MANWIDTH="80"))
    assert r.returncode == 0 and r.stderr == "", r.stderr
    text = re.sub(".\b", "", r.stdout)  # overstrike bold and underline
    for section in ("SYNOPSIS", "DESCRIPTION", "THE TREE", "MOUNT OPTIONS", "STATUS ATTRIBUTES",
                    "SUBCOMMANDS", "FILES", "ENVIRONMENT", "EXIT STATUS", "EXAMPLES", "SEE ALSO"):
        assert "\n" + section + "\n" in text
    if shutil.which("mandoc"):
        r = run(["mandoc", "-Tlint", "-Wwarning", MAN])
        assert r.returncode == 0, r.stdout + r.stderr


def help_options(l2dfs_bin):
    """{key: allowed values or None} of the option table, as --help prints it."""
    usage = run([l2dfs_bin, "--help"]).stdout
    lines = re.findall(r"^  ([a-z][a-z0-9_]*)(=\S+)?\s", usage.split("Options (-o")[1], re.M)
    return {k: (v[1:].split("|") if "|" in v else None) for k, v in lines}


def man_options():
    """{key: allowed values or None} of the man page's MOUNT OPTIONS entries."""
    section = man_source().split(".SH MOUNT OPTIONS")[1].split(".SH ")[0]
    out = {}
    for m in re.finditer(r"^\.TP\n\.B[IR]? ([a-z][a-z0-9_]*)(=?)(.*)$", section, re.M):
        values = m.group(3).replace("\\-", "-").split()
        out[m.group(1)] = values[::2] if m.group(2) and len(values) > 1 and "|" in values else None
    return out


def test_man_page_documents_every_option(l2dfs_bin):
    """The option table (through --help) and the man page list the same
    options, with the same allowed values; README's table names them all."""
    usage = run([l2dfs_bin, "--help"]).stdout
    table, man = help_options(l2dfs_bin), man_options()
    assert len(table) >= 25, usage
    assert set(table) == set(man), (set(table) ^ set(man))
    for key, values in table.items():
        assert values == man[key], key
    readme = (REPO / "README.md").read_text()
    for key in table:
        assert re.search(r"`%s[=`]" % key, readme), "README: option %s" % key
    src = man_source()
    for flag in re.findall(r"^  (-[a-zA-Z])\b", usage, re.M):
        assert re.search(r"^\.B[IR]? %s\b" % re.escape(roff(flag)), src, re.M), "flag %s" % flag


def test_man_page_documents_every_subcommand(l2dfs_bin):
    usage = run([l2dfs_bin, "--help"]).stdout
    names = re.search(r"l2dfs ([a-z|]+) \[-o OPTIONS\]", usage).group(1).split("|")
    assert "pull" in names and "verify" in names
    src = man_source()
    synopsis = src.split(".SH DESCRIPTION")[0]
    for name in names:
        assert "\n.B %s\n" % name in synopsis, name
        r = run([l2dfs_bin, name, "--help"])
        assert r.returncode == 0, (name, r.stderr)
        head = r.stdout.split("\n\n")[0]
        for flag in set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", head)) - {"-o", "-h", "--help"}:
            assert roff(flag) in synopsis, "%s %s" % (name, flag)


def test_man_page_exit_statuses_match_cli_h():
    enum = (REPO / "cli" / "cli.h").read_text().split("enum cli_exit")[1].split("};")[0]
    values = re.findall(r"= (\d+),", enum)
    assert len(values) >= 7
    section = man_source().split(".SH EXIT STATUS")[1].split(".SH ")[0]
    assert re.findall(r"^\.B (\d+)$", section, re.M) == values


def test_man_page_lists_the_status_attributes(mount, origin):
    m = mount()
    c = costume(origin)
    read_file(c.path(m, TEX))
    names = os.listxattr(c.path(m, TEX)) + os.listxattr(c.path(m))
    assert len(names) == 10, names
    src = man_source()
    for name in names:
        assert "\n.I %s\n" % name in src, name


# ---- make install / uninstall ----


def test_make_install_and_uninstall(tmp_path, l2dfs_release_bin):
    l2dfs_bin = l2dfs_release_bin
    dest = tmp_path / "dest"
    r = make("install", *install_args(l2dfs_bin, DESTDIR=dest, PREFIX="/usr/local"))
    assert r.returncode == 0, r.stdout + r.stderr
    files = {
        "usr/local/bin/l2dfs": 0o755,
        "usr/local/share/man/man1/l2dfs.1": 0o644,
        "usr/local/lib/systemd/user/l2dfs@.service": 0o644,
        "usr/local/lib/systemd/user/l2dfs-serve.service": 0o644,
        "usr/local/share/doc/l2dfs/examples/nginx-l2dfs-cache.conf": 0o644,
    }
    site = run(["/usr/bin/python3", "-c", "import sys; print(sys.path)"]).stdout
    pydir = next(iter(re.findall(r"'/(usr/local/lib/python3[.\d]*/dist-packages)'", site)))
    pkg = pydir + "/live2d_download/"
    files.update({pkg + p.name: 0o644 for p in (REPO / "python" / "live2d_download").glob("*.py")})
    got = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if not p.is_dir())
    assert got == sorted(files)
    for rel, mode in files.items():
        assert (dest / rel).stat().st_mode & 0o777 == mode, rel
    assert read_file(dest / "usr/local/bin/l2dfs") == read_file(l2dfs_bin)
    assert read_file(dest / "usr/local/share/man/man1/l2dfs.1") == read_file(MAN)
    assert not (dest / "sbin").exists()
    assert run([dest / "usr/local/bin/l2dfs", "--version"]).stdout.startswith("l2dfs ")
    # Where the system python3 looks (pydir, from its sys.path), importable from there.
    r = subprocess.run(["/usr/bin/python3", "-c", "import live2d_download as l; print(l.__file__)"],
                       capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(dest / pydir)))
    assert r.stdout.strip() == str(dest / pkg / "__init__.py"), r.stderr

    r = make("uninstall", *install_args(l2dfs_bin, DESTDIR=dest, PREFIX="/usr/local"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert [p for p in dest.rglob("*") if not p.is_dir()] == []
    assert not (dest / "usr/local/share/doc/l2dfs").exists()


def test_installed_unit_runs_the_installed_binary(tmp_path, l2dfs_release_bin):
    l2dfs_bin = l2dfs_release_bin
    dest = tmp_path / "dest"
    r = make("install", *install_args(l2dfs_bin, DESTDIR=dest, PREFIX="/opt/l2dfs"))
    assert r.returncode == 0, r.stdout + r.stderr
    unit = (dest / "opt/l2dfs/lib/systemd/user/l2dfs@.service").read_text()
    assert "ExecStart=/opt/l2dfs/bin/l2dfs -f " in unit
    assert unit.replace("/opt/l2dfs/bin/", "/usr/local/bin/") == UNIT.read_text()


# ---- mount(8) and /etc/fstab ----


@needs_root
def test_mount_t_fuse_l2dfs(ns, origin, tmp_path, l2dfs_bin):
    ns.bind_l2dfs(l2dfs_bin, tmp_path)
    mnt, cache = tmp_path / "mnt", tmp_path / "cache"
    mnt.mkdir()
    ns.run("mount", "-t", "fuse.l2dfs", "l2dfs", mnt, "-o",
           "server=jp,%s,%s" % (origin_opts(origin, cache), FSTAB_NOISE))
    ns.mounted(mnt)
    assert_serves(ns, origin, mnt, cache)
    ns.unmount(mnt)
    assert os.listdir(mnt) == []


@needs_root
def test_fstab_line(ns, origin, tmp_path, l2dfs_bin):
    ns.bind_l2dfs(l2dfs_bin, tmp_path)
    mnt, cache = tmp_path / "mnt", tmp_path / "cache"
    mnt.mkdir()
    fstab = tmp_path / "fstab"
    fstab.write_text("# a line as in /etc/fstab\nl2dfs  %s  fuse.l2dfs  %s,server=jp,lang=en,%s  0  0\n"
                     % (mnt, FSTAB_NOISE, origin_opts(origin, cache)))
    ns.run("mount", "-T", fstab, mnt)
    ns.mounted(mnt)
    assert_serves(ns, origin, mnt, cache, lang="en")
    ns.unmount(mnt)


def test_mount_helper_options_are_ignored(mount):
    """Run directly (not through mount(8), which drops some of them), l2dfs
    accepts every option an fstab line may carry."""
    m = mount(opts={k: True for k in (FSTAB_NOISE + ",users,nouser,ro,rw,nodev,nosuid,noexec,"
                                      "noatime,relatime,auto,dev,suid,exec,atime,async,sync").split(",")})
    assert os.listdir(m["characters"])


def test_mount_point_is_the_last_of_two_positionals(tmp_path, l2dfs_bin, origin):
    """mount.fuse3 runs `l2dfs SOURCE MOUNTPOINT -o ...`; a third is an error."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = run([l2dfs_bin, "l2dfs", mnt, tmp_path, "-o", origin_opts(origin, tmp_path / "c")])
    assert r.returncode == 1 and "too many arguments" in r.stderr


def pids_with_arg(arg):
    """Processes with arg among their arguments (the daemons serving a mount point)."""
    out = []
    for p in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                if os.fsencode(arg) in f.read().split(b"\0"):
                    out.append(p)
        except OSError:
            pass
    return out


def test_relative_cache_dir_is_one_cache(tmp_path, l2dfs_bin, origin):
    """Daemonized, l2dfs works from /; a relative cache_dir must still name the
    folder it named on the command line."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = run([l2dfs_bin, "-o", origin_opts(origin, "rel-cache") + ",log_level=error", mnt],
            cwd=tmp_path, env=clean_env())
    assert r.returncode == 0, r.stderr
    try:
        c = costume(origin)
        read_file(in_mount(c, mnt, TEX))
        cache_path = os.getxattr(in_mount(c, mnt, TEX), "user.l2dfs.cache_path")
    finally:
        daemon = pids_with_arg(str(mnt))
        run(["fusermount3", "-u", mnt])
        wait_for(lambda: not any(os.path.exists("/proc/" + p) for p in daemon), 10)
        stray = Path("/rel-cache")
        if stray.is_dir() and stray.stat().st_mtime > time.time() - 120:
            shutil.rmtree(stray)
    assert cache_path.decode().startswith(str(tmp_path / "rel-cache") + "/")


# ---- the systemd user unit ----


def unit_service(text, home, instance, config):
    """The [Service] settings of the unit as systemd would run them for
    l2dfs@<instance> with HOME=home and XDG_CONFIG_HOME=config: commands as
    (argv, failure ignored) lists, %-specifiers and ${VARS} expanded."""
    spec = {"%h": str(home), "%I": instance.replace("-", "/"), "%i": instance, "%E": str(config)}
    expand = lambda s: re.sub(r"%[hIiE]", lambda m: spec[m.group(0)], s)
    service, env = {}, {}
    section = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line
            continue
        key, _, value = line.partition("=")
        if section == "[Service]":
            service.setdefault(key, []).append(expand(value))
    for value in service.get("Environment", []):
        k, _, v = value.partition("=")
        env[k] = v
    for value in service.get("EnvironmentFile", []):
        path = value.lstrip("-")
        if os.path.exists(path):
            env.update(line.split("=", 1) for line in Path(path).read_text().splitlines() if "=" in line)
        else:
            assert value.startswith("-"), "missing EnvironmentFile " + path

    def command(value):
        ignore = value.startswith("-")
        words = shlex.split(value.lstrip("-"))
        return [re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], w) for w in words], ignore

    for key in ("ExecStartPre", "ExecStart", "ExecStop", "ExecStopPost"):
        service[key] = [command(v) for v in service.get(key, [])]
    return service


def test_systemd_unit_mounts_and_unmounts(tmp_path, origin, l2dfs_bin):
    """Runs the unit's commands in systemd's order, without systemd: start
    mounts ~/live2d and keeps running (Type=simple); stop unmounts, and the
    service's process then exits 0."""
    home, config = tmp_path / "home", tmp_path / "config"
    (config / "l2dfs").mkdir(parents=True)
    home.mkdir()
    cache = tmp_path / "cache"
    (config / "l2dfs" / "live2d.conf").write_text(
        "L2DFS_OPTIONS=%s,retry_base_ms=20\n" % origin_opts(origin, cache))
    text = UNIT.read_text().replace("/usr/local/bin/l2dfs", os.path.abspath(l2dfs_bin))
    s = unit_service(text, home, "live2d", config)
    assert s["Type"] == ["simple"]
    assert "WantedBy=default.target" in text
    env = clean_env(HOME=str(home), XDG_CONFIG_HOME=str(config))
    mnt = home / "live2d"

    for argv, _ in s["ExecStartPre"]:
        assert run(argv, env=env).returncode == 0, argv
    (argv, _), = s["ExecStart"]
    assert argv[-1] == str(mnt) and "-f" in argv
    log = open(tmp_path / "journal", "wb")
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: os.path.isdir(mnt / "characters") or proc.poll() is not None, 10)
        assert proc.poll() is None, (tmp_path / "journal").read_text()
        c = costume(origin)
        assert read_file(in_mount(c, mnt, TEX)) == origin.expected(c.files[TEX])
        for argv, ignore in s["ExecStop"]:
            r = run(argv, env=env)
            assert r.returncode == 0 or ignore, (argv, r.stderr)
        assert proc.wait(10) == 0
        for argv, ignore in s["ExecStopPost"]:
            r = run(argv, env=env)
            assert r.returncode == 0 or ignore, (argv, r.stderr)
            assert r.stderr == ""
    finally:
        if proc.poll() is None:
            run(["fusermount3", "-uz", mnt])
            proc.kill()
            proc.wait()
        log.close()
    assert "serving %s" % mnt in (tmp_path / "journal").read_text()
    assert os.listdir(mnt) == []


def test_systemd_analyze_verify(tmp_path, l2dfs_release_bin):
    l2dfs_bin = l2dfs_release_bin
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed: the unit file was not verified")
    prefix = tmp_path / "prefix"
    r = make("install", *install_args(l2dfs_bin, PREFIX=prefix))
    assert r.returncode == 0, r.stdout + r.stderr
    units = tmp_path / "units"
    units.mkdir()
    shutil.copy(prefix / "lib/systemd/user/l2dfs@.service", units)
    os.symlink("l2dfs@.service", units / "l2dfs@live2d.service")
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    # The offline manager checks ExecStart= binaries and Documentation=man:.
    env = dict(os.environ, XDG_RUNTIME_DIR=str(runtime), MANPATH=str(prefix / "share/man"),
               SYSTEMD_LOG_LEVEL="notice")
    r = run(["systemd-analyze", "--user", "verify", units / "l2dfs@live2d.service"], env=env)
    assert r.returncode == 0 and r.stderr.strip() == "" and r.stdout.strip() == "", r.stdout + r.stderr


# ---- the log ----


def log_lines(m, level):
    return [l for l in m.log_text().splitlines() if re.match(r"^l2dfs [\d:.]+ %s: " % level, l)]


def test_log_level_error_is_quiet(mount, origin):
    m = mount(opts={"log_level": "error"})
    c = costume(origin)
    read_file(c.path(m, TEX))
    assert wait_for(lambda: os.getxattr(c.path(m), "user.l2dfs.files_done") ==
                    os.getxattr(c.path(m), "user.l2dfs.files_total"), 10)
    assert m.log_text() == ""


def test_log_level_debug_names_each_file(mount, origin):
    m = mount(opts={"log_level": "debug", "prefetch": "off"})
    c = costume(origin)
    f = next(x for x in c.info["files"] if x["rel"] == TEX)
    read_file(c.path(m, TEX))
    assert log_lines(m, "info"), m.log_text()
    line = "%s/%s: cached, %d bytes" % (f["bundle"], f["file"], len(origin.expected(f["url"])))
    assert wait_for(lambda: any(l.endswith(line) for l in log_lines(m, "debug")), 5), m.log_text()


def test_failed_download_is_logged_with_path_and_reason(mount, origin):
    c = costume(origin)
    f = next(x for x in c.info["files"] if x["rel"] == TEX)
    origin.fault(path=re.escape(f["url"]) + "$", kind="status", status=500, method="GET")
    m = mount(opts={"log_level": "error", "prefetch": "off", "retries": "0"})
    assert oserror(read_file, c.path(m, TEX)) == errno.EIO
    want = "%s/%s: download failed: HTTP 500" % (f["bundle"], f["file"])
    assert [l for l in log_lines(m, "error") if want in l], m.log_text()
    assert os.getxattr(c.path(m, TEX), "user.l2dfs.state") == b"failed"
    assert os.getxattr(c.path(m, TEX), "user.l2dfs.error").startswith(b"HTTP 500")


@needs_root
def test_daemon_logs_to_syslog(ns, origin, tmp_path, l2dfs_bin):
    """Without -f the log goes to syslog(3): a private /dev in the namespace
    holds a /dev/log socket this test listens on."""
    dev = tmp_path / "dev"
    dev.mkdir()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(dev / "log"))
    sock.settimeout(0.2)
    for node in ("null", "zero", "random", "urandom", "fuse"):
        (dev / node).touch()
        ns.run("mount", "--bind", "/dev/" + node, dev / node)
    ns.run("mount", "--rbind", dev, "/dev")

    c = costume(origin)
    bad = next(x for x in c.info["files"] if x["rel"] == "textures/texture_01.png")
    origin.fault(path=re.escape(bad["url"]) + "$", kind="status", status=500, method="GET")
    mnt, cache = tmp_path / "mnt", tmp_path / "cache"
    mnt.mkdir()
    r = ns.run(l2dfs_bin, "-o", origin_opts(origin, cache) + ",log_level=debug,prefetch=off,retries=0", mnt,
               check=False)
    assert r.returncode == 0 and r.stderr == "" and r.stdout == "", r.stderr
    ns.mounts.append(str(mnt))
    read_file(ns.path(in_mount(c, mnt, TEX)))
    assert oserror(read_file, ns.path(in_mount(c, mnt, bad["rel"]))) == errno.EIO

    got = []

    def has(prio, text):
        while True:
            try:
                got.append(sock.recv(65536).decode("utf-8", "replace"))
            except socket.timeout:
                break
        return any(m.startswith("<%d>" % prio) and text in m for m in got)

    daemon = 3 << 3  # LOG_DAEMON
    assert wait_for(lambda: has(daemon + 6, "]: serving %s" % mnt), 5), got
    assert wait_for(lambda: has(daemon + 7, "%s/texture_00.png: cached" % bad["bundle"]), 5), got
    assert wait_for(lambda: has(daemon + 3, "%s/%s: download failed: HTTP 500" % (bad["bundle"], bad["file"])),
                    5), got
    assert all(re.match(r"<\d+>.*l2dfs\[\d+\]: ", m) for m in got), got
    ns.unmount(mnt)
    sock.close()
