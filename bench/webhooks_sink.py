#!/usr/bin/python3
"""A fast webhook receiver for bench/webhooks.sh (asyncio, standard library).

HTTP/1.1 with keep-alive, one event loop, no threads: answers every POST
with 204 after --delay-ms (a simulated receiver latency; 0: at once),
checks every Standard Webhooks signature with --secret, and counts
requests and distinct webhook-ids.  GET /stats returns the counts as JSON;
POST /reset clears them.

Usage: webhooks_sink.py --secret whsec_... [--port 0] [--port-file F] [--delay-ms 0]
"""
import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import sys


class Stats:
    def __init__(self):
        self.reset()

    def reset(self):
        self.requests = 0
        self.valid = 0
        self.invalid = 0
        self.ids = set()


def make_protocol(key, delay, stats):
    loop = asyncio.get_event_loop()

    class Receiver(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport
            self.buf = b""

        def data_received(self, data):
            self.buf += data
            while True:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = self.buf[:end].decode("latin-1").split("\r\n")
                headers = {}
                for line in head[1:]:
                    k, _, v = line.partition(":")
                    headers[k.strip().lower()] = v.strip()
                length = int(headers.get("content-length", "0"))
                if len(self.buf) < end + 4 + length:
                    return
                body = self.buf[end + 4:end + 4 + length]
                self.buf = self.buf[end + 4 + length:]
                self.handle(head[0].split(" "), headers, body)

        def handle(self, request_line, headers, body):
            method, path = request_line[0], request_line[1]
            if method == "GET" and path == "/stats":
                out = json.dumps({"requests": stats.requests, "valid": stats.valid,
                                  "invalid": stats.invalid,
                                  "distinct_ids": len(stats.ids)}).encode()
                self.respond(b"200 OK", out)
                return
            if method == "POST" and path == "/reset":
                stats.reset()
                self.respond(b"200 OK", b"ok")
                return
            msg_id = headers.get("webhook-id", "")
            ts = headers.get("webhook-timestamp", "")
            signed = msg_id.encode() + b"." + ts.encode() + b"." + body
            expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
            sigs = [s.partition(",")[2] for s in headers.get("webhook-signature", "").split(" ")]
            stats.requests += 1
            if expected in sigs:
                stats.valid += 1
                stats.ids.add(msg_id)
            else:
                stats.invalid += 1
            if delay > 0:
                loop.call_later(delay, self.respond, b"204 No Content", b"")
            else:
                self.respond(b"204 No Content", b"")

        def respond(self, status, body):
            if self.transport.is_closing():
                return
            self.transport.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: "
                                 + str(len(body)).encode() + b"\r\n\r\n" + body)

    return Receiver


async def serve(args):
    key = base64.b64decode(args.secret[len("whsec_"):])
    stats = Stats()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(make_protocol(key, args.delay_ms / 1000.0, stats),
                                      "127.0.0.1", args.port, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(str(port))
        os.replace(args.port_file + ".tmp", args.port_file)
    async with server:
        await server.serve_forever()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--secret", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--delay-ms", type=float, default=0)
    args = p.parse_args()
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
