#!/usr/bin/env python3
"""A webhook receiver for lifecycle's tests (Python 3 standard library only).

Verifies each request's Standard Webhooks signature with the channel secret,
appends one JSON line per request to the log file, and answers as its mode
says:

  ok        200
  fail      500
  gone      410
  hang      never answers (until the mode changes or the sink stops)
  slow      answers 200 after --delay seconds
  redirect  302 to --redirect-to
  throttle  429 with Retry-After: --retry-after seconds
  hold_gone holds each request until the mode changes, then answers 410

The mode can be changed while it runs:
  POST /_control {"mode": "fail", "delay": 1.5, "redirect_to": "http://...",
                  "retry_after": 3600}
  GET  /_stats   -> {"requests": n, "valid": n, "invalid": n, "ok_ids": [...]}

Usage:
  webhook_sink.py --secret whsec_... --log FILE [--port 0] [--port-file F]
                  [--mode ok] [--delay 1] [--redirect-to URL] [--retry-after 3600]
"""
import argparse
import base64
import hashlib
import hmac
import json
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class State:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.mode = args.mode
        self.delay = args.delay
        self.redirect_to = args.redirect_to
        self.retry_after = args.retry_after
        self.secret = args.secret
        self.log_path = args.log
        self.requests = 0
        self.valid = 0
        self.invalid = 0
        self.ok_ids = set()
        self.release = threading.Event()  # set: hanging requests give up

    def key(self):
        if not self.secret:
            return None
        return base64.b64decode(self.secret[len("whsec_"):])

    def log(self, record):
        line = json.dumps(record, sort_keys=True)
        with self.lock:
            with open(self.log_path, "a") as f:
                f.write(line + "\n")
                f.flush()


def verify(key, msg_id, timestamp, body, header):
    """True if one of the v1 signatures in header matches."""
    if key is None or not msg_id or not timestamp or not header:
        return False
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for part in header.split(" "):
        version, _, sig = part.partition(",")
        if version == "v1" and hmac.compare_digest(sig, expected):
            return True
    return False


def make_handler(state):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # quiet
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
                    out = {"requests": state.requests, "valid": state.valid,
                           "invalid": state.invalid, "mode": state.mode,
                           "ok_ids": sorted(state.ok_ids, key=int)}
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
                    if "mode" in cmd:
                        state.mode = cmd["mode"]
                    if "delay" in cmd:
                        state.delay = float(cmd["delay"])
                    if "redirect_to" in cmd:
                        state.redirect_to = cmd["redirect_to"]
                    if "retry_after" in cmd:
                        state.retry_after = int(cmd["retry_after"])
                    # hanging requests end when the mode changes
                    old = state.release
                    state.release = threading.Event()
                old.set()
                self.reply(200, b"ok")
                return

            msg_id = self.headers.get("webhook-id")
            ts = self.headers.get("webhook-timestamp")
            valid = verify(state.key(), msg_id, ts, body, self.headers.get("webhook-signature"))
            try:
                doc = json.loads(body)
            except ValueError:
                doc = None
            with state.lock:
                mode = state.mode
                delay = state.delay
                redirect_to = state.redirect_to
                retry_after = state.retry_after
                release = state.release
                state.requests += 1
                if valid:
                    state.valid += 1
                else:
                    state.invalid += 1
            status = {"ok": 200, "fail": 500, "gone": 410, "hang": 0,
                      "slow": 200, "redirect": 302, "throttle": 429,
                      "hold_gone": 410}.get(mode, 500)
            record = {"id": msg_id, "timestamp": ts, "valid": valid, "path": self.path,
                      "mode": mode, "status": status, "at": time.time(),
                      "type": doc.get("type") if isinstance(doc, dict) else None,
                      "body_id": doc.get("id") if isinstance(doc, dict) else None,
                      "data": doc.get("data") if isinstance(doc, dict) else None,
                      "traceparent": self.headers.get("traceparent")}
            state.log(record)
            if mode == "hang":
                release.wait(600)
                self.close_connection = True
                return
            if mode == "hold_gone":
                release.wait(600)
            if mode == "slow":
                time.sleep(delay)
            if status == 429:
                self.reply(429, b"slow down", {"Retry-After": str(retry_after)})
                return
            if status == 302:
                self.reply(302, b"", {"Location": redirect_to or "http://127.0.0.1:1/"})
                return
            if 200 <= status < 300 and valid:
                with state.lock:
                    state.ok_ids.add(msg_id)
            self.reply(status, b"ok" if status == 200 else b"no")

    return Handler


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--secret", default=None)
    p.add_argument("--log", required=True)
    p.add_argument("--mode", default="ok")
    p.add_argument("--delay", type=float, default=1.0)
    p.add_argument("--redirect-to", default=None)
    p.add_argument("--retry-after", type=int, default=3600)
    args = p.parse_args()

    state = State(args)
    ThreadingHTTPServer.request_queue_size = 1024  # many connections at once
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
        import os
        os.replace(tmp, args.port_file)
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
