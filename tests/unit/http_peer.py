#!/usr/bin/env python3
"""Loopback HTTP peer for tests/unit/test_http.c.

Serves GET/HEAD on 127.0.0.1. The last path segment is a key that names a
request counter; the query string says how to answer:

  size=N        body of N bytes, byte i = i % 251 (default 64)
  fail=CODE     answer CODE (empty body) ...
  times=K       ... for the first K requests of the key only (default: all)
  retry_after=S with fail: a Retry-After header
  html=1        200, Content-Type text/html, an HTML page
  htmlbody=1    200, application/octet-stream, body "\\n  <!DOCTYPE html>..."
  short=1       Content-Length N but N/2 bytes, then close (honours times)
  stall=S       headers (Content-Length N), then S seconds of silence
  mute=S        S seconds of silence before anything
  nolen=1       no Content-Length: the body ends when the connection closes
  dribble=1     the first 40 bytes one at a time
  redirect=URL  302 to URL ("self": the request's own path)
  delay=MS      wait before answering
  gzip=1        a gzip-encoded body when the request accepts gzip

Paths under /down/ always answer 503. Control paths (any prefix):
  /count/KEY    requests seen for KEY
  /ae/KEY       the Accept-Encoding header of KEY's last request ("" if none)
  /stats/reset  start watching open connections
  /stats/max    most connections open at once since then, beyond those
                open at the reset
"""
import argparse
import gzip
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

LOCK = threading.Lock()
COUNTS = {}
ACCEPT = {}
CONNS = {"open": 0, "max": 0, "base": 0}

HTML = b"<!DOCTYPE html><html><head><title>Bestdori</title></head><body></body></html>"


def body_of(n):
    return bytes(i % 251 for i in range(n))


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        with LOCK:
            CONNS["open"] += 1
            CONNS["max"] = max(CONNS["max"], CONNS["open"])

    def finish(self):
        with LOCK:
            CONNS["open"] -= 1
        super().finish()

    def do_HEAD(self):
        self.answer(head=True)

    def do_GET(self):
        self.answer(head=False)

    def send(self, code, body, ctype="application/octet-stream", extra=(), head=False):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def control(self, path):
        if "/count/" in path:
            with LOCK:
                n = COUNTS.get(path.rsplit("/", 1)[-1], 0)
            self.send(200, str(n).encode(), "text/plain")
            return True
        if "/ae/" in path:
            with LOCK:
                ae = ACCEPT.get(path.rsplit("/", 1)[-1], "")
            self.send(200, ae.encode(), "text/plain")
            return True
        if path.endswith("/stats/reset"):
            with LOCK:
                CONNS["max"] = CONNS["base"] = CONNS["open"]
            self.send(200, b"ok", "text/plain")
            return True
        if path.endswith("/stats/max"):
            with LOCK:
                n = CONNS["max"] - CONNS["base"]
            self.send(200, str(n).encode(), "text/plain")
            return True
        return False

    def answer(self, head):
        url = urlsplit(self.path)
        if self.control(url.path):
            return
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        key = url.path.rsplit("/", 1)[-1]
        with LOCK:
            COUNTS[key] = COUNTS.get(key, 0) + 1
            nth = COUNTS[key]
            ACCEPT[key] = self.headers.get("Accept-Encoding", "")
        faulty = nth <= int(q.get("times", "1000000"))
        size = int(q.get("size", "64"))
        body = b"\n  " + HTML if "htmlbody" in q else body_of(size)
        time.sleep(int(q.get("delay", "0")) / 1000)
        if url.path.startswith("/down/"):
            self.send(503, b"", head=head)
        elif "fail" in q and faulty:
            extra = [("Retry-After", q["retry_after"])] if "retry_after" in q else []
            self.send(int(q["fail"]), b"", extra=extra, head=head)
        elif "redirect" in q:
            target = self.path if q["redirect"] == "self" else q["redirect"]
            self.send(302, b"", extra=[("Location", target)], head=head)
        elif "html" in q:
            self.send(200, HTML, "text/html; charset=utf-8", head=head)
        elif "mute" in q:
            time.sleep(int(q["mute"]))
            self.close_connection = True
        elif head:
            self.send(200, body, head=True)
        else:
            self.stream(q, body, faulty)

    def stream(self, q, body, faulty):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if "gzip" in q and "gzip" in self.headers.get("Accept-Encoding", ""):
            body = gzip.compress(body)
            self.send_header("Content-Encoding", "gzip")
        if "nolen" in q:
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if "stall" in q:
            self.wfile.flush()
            time.sleep(int(q["stall"]))
            self.close_connection = True
            return
        if "short" in q and faulty:
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return
        if "dribble" in q:
            for i in range(min(40, len(body))):
                self.wfile.write(body[i:i + 1])
                self.wfile.flush()
                time.sleep(0.002)
            body = body[40:]
        self.wfile.write(body)


class Server(ThreadingHTTPServer):
    request_queue_size = 1024
    daemon_threads = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    args = ap.parse_args()
    Handler.protocol_version = "HTTP/1.1"
    srv = Server(("127.0.0.1", 0), Handler)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, args.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
