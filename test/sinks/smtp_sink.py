#!/usr/bin/python3
"""An SMTP receiver for lifecycle's tests (Debian's python3-aiosmtpd).

Every message it accepts is written to DIR/<n>.eml (the raw message) and
described by one JSON line in DIR/messages.jsonl (envelope sender,
recipients, file name).  It listens on 127.0.0.1 and writes the port it
got to --port-file.

Usage:
  smtp_sink.py --dir DIR [--port 0] [--port-file F]
"""
import argparse
import json
import os
import signal
import socket
import sys
import threading

from aiosmtpd.controller import Controller


class Handler:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
            name = "%06d.eml" % self.count
            path = os.path.join(self.directory, name)
            with open(path + ".tmp", "wb") as f:
                f.write(envelope.original_content or envelope.content)
            os.replace(path + ".tmp", path)
            with open(os.path.join(self.directory, "messages.jsonl"), "a") as f:
                f.write(json.dumps({"file": name, "mail_from": envelope.mail_from,
                                    "rcpt_tos": envelope.rcpt_tos}) + "\n")
        return "250 Message accepted for delivery"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    args = p.parse_args()
    os.makedirs(args.dir, exist_ok=True)

    port = args.port or free_port()
    controller = Controller(Handler(args.dir), hostname="127.0.0.1", port=port)
    controller.start()
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(str(port))
        os.replace(args.port_file + ".tmp", args.port_file)

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: done.set())
    signal.signal(signal.SIGINT, lambda *a: done.set())
    done.wait()
    controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
