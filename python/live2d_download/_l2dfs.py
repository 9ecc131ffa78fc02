"""Running the l2dfs command: where it is, its -o options, its --json lines."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
from typing import Callable, Iterator, Optional

from .models import CancelledError, L2dfsError, CancelToken

# l2dfs exit statuses (l2dfs(1)).
EXIT_USAGE = 1
EXIT_FAILED = 5
EXIT_INTERRUPTED = 130


def binary() -> str:
    """$L2DFS_BIN, else l2dfs on PATH."""
    path = os.environ.get("L2DFS_BIN") or shutil.which("l2dfs")
    if not path:
        raise L2dfsError("l2dfs not found: install it or set L2DFS_BIN")
    return path


def _escape(v) -> str:
    """A value as l2dfs's -o reads it: "\\," a comma, "\\\\" a backslash."""
    return str(v).replace("\\", "\\\\").replace(",", "\\,")


def options_arg(opts: dict) -> list:
    """["-o", "a=1,b"] for the options set (True: a flag; a list: the
    option once per item), [] for none."""
    parts = []
    for k, v in opts.items():
        for item in v if isinstance(v, list) else [v]:
            if item is None or item is False:
                continue
            parts.append(k if item is True else "%s=%s" % (k, _escape(item)))
    return ["-o", ",".join(parts)] if parts else []


def run(opts: dict, cmd: str, *args: str, ok=(0,), timeout: Optional[float] = None) -> subprocess.CompletedProcess:
    """l2dfs CMD with opts; raises L2dfsError unless its exit status is in ok."""
    argv = [binary(), cmd] + options_arg(opts) + [str(a) for a in args]
    try:
        r = subprocess.run(argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except OSError as e:
        raise L2dfsError("cannot run %s: %s" % (argv[0], e)) from e
    if r.returncode not in ok:
        err = r.stderr.decode("utf-8", "replace").strip()
        raise L2dfsError("l2dfs %s: %s" % (cmd, err or "exit status %d" % r.returncode), r.returncode, err)
    return r


def json_lines(data: bytes) -> list:
    return [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]


def _stop_on_cancel(proc: subprocess.Popen, cancel: CancelToken, done: threading.Event) -> None:
    """SIGINT to proc once cancel is set: l2dfs stops within about a second,
    removes its temporaries and exits 130."""
    while not done.is_set():
        if cancel.wait(0.05):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
            return


def start(opts: dict, cmd: str, *args: str) -> subprocess.Popen:
    """l2dfs CMD with opts, its stdout a pipe to read as it comes."""
    argv = [binary(), cmd] + options_arg(opts) + [str(a) for a in args]
    try:
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    except OSError as e:
        raise L2dfsError("cannot run %s: %s" % (argv[0], e)) from e


def watch_cancel(proc: subprocess.Popen, cancel: Optional[CancelToken]) -> threading.Event:
    """SIGINT to proc once cancel is set (until the event returned is set)."""
    done = threading.Event()
    if cancel is not None:
        threading.Thread(target=_stop_on_cancel, args=(proc, cancel, done), daemon=True).start()
    return done


def stream(opts: dict, cmd: str, args: list, cancel: Optional[CancelToken],
           on_line: Callable[[dict], None]) -> tuple:
    """Run l2dfs CMD ... --json, calling on_line for each line as it comes;
    (exit status, stderr). CancelledError once cancel stopped it."""
    if cancel is not None:
        cancel.raise_if_cancelled()
    proc = start(opts, cmd, *args)
    err: list = []
    drain = threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True)
    drain.start()
    done = threading.Event()
    watcher = None
    if cancel is not None:
        watcher = threading.Thread(target=_stop_on_cancel, args=(proc, cancel, done), daemon=True)
        watcher.start()
    try:
        for line in _lines(proc):
            on_line(line)
    except BaseException:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        proc.wait()
        raise
    finally:
        done.set()
        rc = proc.wait()
        drain.join()
        if watcher is not None:
            watcher.join()
        proc.stdout.close()
        proc.stderr.close()
    stderr = (err[0] if err else b"").decode("utf-8", "replace").strip()
    if rc == EXIT_INTERRUPTED or (rc != 0 and cancel is not None and cancel.cancelled()):
        raise CancelledError("Operation cancelled")
    return rc, stderr


def _lines(proc: subprocess.Popen) -> Iterator[dict]:
    for raw in proc.stdout:
        if raw.strip():
            yield json.loads(raw)
