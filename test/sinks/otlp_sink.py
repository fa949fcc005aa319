#!/usr/bin/env python3
"""An OTLP/HTTP (JSON) trace receiver for lifecycle's tests (Python 3
standard library only).

Accepts POST /v1/traces, appends one JSON line per request to the log file
({"at", "path", "status", "headers", "body"}: the decoded request and the
status it answered), and answers as told:

  ok        200 {}
  partial   200 {"partialSuccess": {"rejectedSpans": N, "errorMessage": ...}}
  status    --status (e.g. 400, 429, 503), with Retry-After: --retry-after
            seconds when that is not empty
  hang      never answers (until the mode changes or the sink stops)

"queue" is a list of statuses answered first, one per request (then the
mode applies), e.g. [503, 503, 200].  The answers can be changed while it
runs:

  POST /_control {"mode": "status", "status": 503, "retry_after": "1",
                  "queue": [503, 200], "rejected": 2}
  GET  /_stats   -> {"requests": n, "spans": n}

--quiet (benchmarks): answer 200 at once, log nothing, count spans by
their "spanId" keys.

Usage:
  otlp_sink.py --log FILE [--port 0] [--port-file F] [--mode ok] [--quiet]
"""
import argparse
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class State:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.mode = args.mode
        self.status = args.status
        self.retry_after = args.retry_after
        self.rejected = 1
        self.queue = []
        self.log_path = args.log
        self.quiet = args.quiet
        self.requests = 0
        self.spans = 0
        self.release = threading.Event()

    def log(self, record):
        line = json.dumps(record, sort_keys=True)
        with self.lock:
            with open(self.log_path, "a") as f:
                f.write(line + "\n")
                f.flush()


def count_spans(doc):
    n = 0
    for rs in (doc or {}).get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            n += len(ss.get("spans", []))
    return n


def make_handler(state):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            pass

        def reply(self, status, body=b"", headers=None):
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body:
                self.wfile.write(body)

        def do_GET(self):
            if self.path == "/_stats":
                with state.lock:
                    out = {"requests": state.requests, "spans": state.spans,
                           "mode": state.mode}
                self.reply(200, json.dumps(out).encode(),
                           {"Content-Type": "application/json"})
            else:
                self.reply(404)

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if self.path == "/_control":
                cmd = json.loads(body or b"{}")
                with state.lock:
                    for k in ("mode", "status", "retry_after", "queue", "rejected"):
                        if k in cmd:
                            setattr(state, k, cmd[k])
                    old = state.release
                    state.release = threading.Event()
                old.set()
                self.reply(200, b"ok")
                return

            if state.quiet:
                with state.lock:
                    state.requests += 1
                    state.spans += body.count(b'"spanId"')
                self.reply(200, b"{}", {"Content-Type": "application/json"})
                return
            try:
                doc = json.loads(body)
            except ValueError:
                doc = None
            with state.lock:
                if state.queue:
                    mode, status = "status", int(state.queue.pop(0))
                else:
                    mode, status = state.mode, int(state.status)
                retry_after = state.retry_after
                rejected = int(state.rejected)
                release = state.release
                state.requests += 1
                if mode in ("ok", "partial") or (mode == "status" and 200 <= status < 300):
                    state.spans += count_spans(doc)
            if mode in ("ok", "partial"):
                status = 200
            if mode == "hang":
                status = 0
            record = {"at": time.time(), "path": self.path, "mode": mode,
                      "status": status,
                      "headers": {k.lower(): v for k, v in self.headers.items()},
                      "body": doc, "raw": body.decode("utf-8", "replace")}
            state.log(record)
            if mode == "hang":
                release.wait(600)
                self.close_connection = True
                return
            if mode == "partial":
                self.reply(200, json.dumps({"partialSuccess": {
                    "rejectedSpans": str(rejected),
                    "errorMessage": "rejected by the test"}}).encode(),
                    {"Content-Type": "application/json"})
                return
            headers = {"Content-Type": "application/json"}
            if status in (429, 502, 503, 504) and retry_after not in (None, ""):
                headers["Retry-After"] = str(retry_after)
            self.reply(status, b"{}", headers)

    return Handler


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--log", required=True)
    p.add_argument("--mode", default="ok")
    p.add_argument("--status", type=int, default=503)
    p.add_argument("--retry-after", default="")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args()

    state = State(args)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(state))
    server.daemon_threads = True

    def stop(signum, frame):
        state.release.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(server.server_address[1]))
        os.replace(tmp, args.port_file)
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
