#!/usr/bin/env python3
"""
A faulty link in front of an origin (standard library only): an HTTP proxy on
127.0.0.1 that forwards each request to --upstream and, at random, breaks its
answer the ways a bad network or an overloaded site does.

  503       answer 503 Service Unavailable without asking the upstream
  reset     reset the connection (TCP RST) before any answer
  midreset  send the headers and part of the body, then reset
  short     send the headers and part of the body, then close (FIN)
  stall     send the headers and part of the body, wait --stall seconds, then
            the rest (a stall longer than the client's timeout is a hang)

--rate P (0..1) is the chance that an answer is broken; the kind is drawn
from --kinds (comma-separated, equally likely). Draws come from --seed, so a
run can be repeated (requests racing each other aside).

Control (never forwarded, never broken):
  GET  /__proxy/stats    {"forwarded": n, "faults": {kind: n}}
  POST /__proxy/config   {"rate": P, "kinds": [...], "stall": seconds}
"""

import argparse
import http.client
import http.server
import json
import random
import socket
import struct
import sys
import threading
import time

from fixture_server import serve_until_stopped

KINDS = ("503", "reset", "midreset", "short", "stall")
HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}


class Link:
    """What the proxy does to answers, and what it did."""

    def __init__(self, upstream, rate, kinds, stall, seed):
        self.upstream = upstream
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        self.rate, self.kinds, self.stall = rate, list(kinds), stall
        self.forwarded, self.faults = 0, {}

    def draw(self):
        with self.lock:
            if self.kinds and self.rng.random() < self.rate:
                kind = self.rng.choice(self.kinds)
                self.faults[kind] = self.faults.get(kind, 0) + 1
                return kind, self.rng.random()
            self.forwarded += 1
            return None, 0.0

    def config(self, spec):
        with self.lock:
            self.rate = float(spec.get("rate", self.rate))
            self.stall = float(spec.get("stall", self.stall))
            kinds = spec.get("kinds", self.kinds)
            unknown = [k for k in kinds if k not in KINDS]
            if unknown:
                raise ValueError("unknown kinds %s (of %s)" % (unknown, ", ".join(KINDS)))
            self.kinds = list(kinds)
            return {"rate": self.rate, "kinds": self.kinds, "stall": self.stall}

    def stats(self):
        with self.lock:
            return {"forwarded": self.forwarded, "faults": dict(self.faults)}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fault-proxy"
    sys_version = ""

    def log_message(self, fmt, *args):
        pass

    @property
    def link(self):
        return self.server.link

    def do_GET(self):
        self.handle_one("GET")

    def do_HEAD(self):
        self.handle_one("HEAD")

    def do_POST(self):
        self.handle_one("POST")

    def reply_json(self, obj, status=200):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def rst(self):
        """Close with a TCP reset instead of a FIN."""
        self.close_connection = True
        self.wfile.flush()
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()

    def handle_one(self, method):
        if self.path.startswith("/__proxy/"):
            try:
                if method == "GET" and self.path == "/__proxy/stats":
                    self.reply_json(self.link.stats())
                elif method == "POST" and self.path == "/__proxy/config":
                    n = int(self.headers.get("Content-Length") or 0)
                    self.reply_json(self.link.config(json.loads(self.rfile.read(n) or b"{}")))
                else:
                    self.reply_json({"error": "no such control"}, 404)
            except (ValueError, TypeError) as e:
                self.reply_json({"error": str(e)}, 400)
            return
        body = None
        if method == "POST":
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n)
        kind, where = self.link.draw()
        try:
            if kind == "reset":
                self.rst()
                return
            if kind == "503":
                msg = b"503 fault proxy\n"
                self.send_response(503)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(msg)))
                self.end_headers()
                if method != "HEAD":
                    self.wfile.write(msg)
                return
            status, headers, data = self.forward(method, body)
            self.send_response(status)
            for k, v in headers:
                if k.lower() not in HOP:
                    self.send_header(k, v)
            self.end_headers()
            if method == "HEAD" or not data:
                return
            if kind is None:
                self.wfile.write(data)
                return
            cut = int(len(data) * where)
            self.wfile.write(data[:cut])
            self.wfile.flush()
            if kind == "midreset":
                self.rst()
            elif kind == "short":
                self.close_connection = True
            elif kind == "stall":
                time.sleep(self.link.stall)
                self.wfile.write(data[cut:])
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True

    def forward(self, method, body):
        """(status, headers, body) of the request at the upstream, on a
        connection of this thread's own."""
        conn = getattr(self, "_upstream", None)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP and k.lower() != "host"}
        for attempt in (0, 1):
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.link.upstream, timeout=120)
                self._upstream = conn
            try:
                conn.request(method, self.path, body=body, headers=headers)
                r = conn.getresponse()
                data = r.read()
                return r.status, r.getheaders(), data
            except (http.client.HTTPException, OSError):
                conn.close()
                conn = self._upstream = None
                if attempt:
                    raise
        raise OSError("unreachable")

    def finish(self):
        try:
            super().finish()
        finally:
            conn = getattr(self, "_upstream", None)
            if conn is not None:
                conn.close()


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True


def main(argv=None):
    p = argparse.ArgumentParser(description="A fault-injecting HTTP proxy (see the module docstring).")
    p.add_argument("--upstream", type=int, required=True, help="port of the origin on 127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0: pick a free port")
    p.add_argument("--port-file", help="write the port here once listening")
    p.add_argument("--rate", type=float, default=0.2, help="share of answers broken")
    p.add_argument("--kinds", default=",".join(KINDS), help="fault kinds drawn from")
    p.add_argument("--stall", type=float, default=2.0, help="seconds a stall lasts")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args(argv)

    link = Link(a.upstream, a.rate, [k for k in a.kinds.split(",") if k], a.stall, a.seed)
    link.config({})  # checks the kinds
    server = Server(("127.0.0.1", a.port), Handler)
    server.link = link
    return serve_until_stopped(server, a.port_file)


if __name__ == "__main__":
    sys.exit(main())
