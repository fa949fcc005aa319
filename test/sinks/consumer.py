#!/usr/bin/python3
"""A lifecycle message consumer: the application's side of pg_cron mode.

Without a channel, lifecycle writes messages 'unrouted' and the application
delivers them itself.  This loop is the whole protocol:

  LISTEN lifecycle_messages;
  loop:
      claim a batch  (SELECT * FROM lifecycle_claim_messages(batch, lease))
      deliver it     (here: append it to --log; a real one sends the mail)
      acknowledge it (SELECT lifecycle_ack_messages(ids))
      repeat until a claim returns nothing, then wait for a notification
      (or --poll seconds, for leases that ended without one)

A claim is hidden from other consumers until its lease ends; a consumer
that dies before acknowledging loses nothing: the messages come back after
the lease with attempts + 1 (at least once: de-duplicate on the id).

Every event is one JSON line in --log: {"event": "ready"}, {"event":
"claim", "id", "message", "attempts", "email"}, {"event": "ack", "ids"},
{"event": "wake", "why": "notify" | "timeout"}.  With --crash-once MARKER
the first consumer to claim something while MARKER does not exist creates
it and dies at once without acknowledging (os._exit), as a crash would.

Usage:
  consumer.py --dsn DSN --log FILE [--batch 10] [--lease "5 minutes"]
              [--poll 300] [--crash-once MARKER]
"""
import argparse
import json
import os
import select
import signal
import sys

import psycopg2
import psycopg2.extensions


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dsn", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--batch", type=int, default=10)
    p.add_argument("--lease", default="5 minutes")
    p.add_argument("--poll", type=float, default=300)
    p.add_argument("--crash-once")
    args = p.parse_args()

    def log(record):
        with open(args.log, "a") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")

    def stop_now(*_):
        raise SystemExit(0)     # also ends a wait in select()

    signal.signal(signal.SIGTERM, stop_now)
    signal.signal(signal.SIGINT, stop_now)

    conn = psycopg2.connect(args.dsn)
    conn.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
    cur = conn.cursor()
    cur.execute("LISTEN lifecycle_messages")
    log({"event": "ready", "pid": os.getpid()})

    while True:
        # Claim until nothing is left: one notification may stand for
        # many messages, and messages may arrive while we work.
        while True:
            cur.execute("SELECT id, message, payload, attempts"
                        " FROM lifecycle_claim_messages(%s, %s::interval)",
                        (args.batch, args.lease))
            rows = cur.fetchall()
            if not rows:
                break
            for (mid, message, payload, attempts) in rows:
                log({"event": "claim", "id": mid, "message": message,
                     "attempts": attempts, "email": (payload or {}).get("email")})
            if args.crash_once and not os.path.exists(args.crash_once):
                open(args.crash_once, "w").close()
                os._exit(3)     # die mid-lease, acknowledging nothing
            cur.execute("SELECT lifecycle_ack_messages(%s::bigint[])",
                        ([r[0] for r in rows],))
            log({"event": "ack", "ids": [r[0] for r in rows],
                 "acked": cur.fetchone()[0]})
        # Wait for a NOTIFY (or the poll interval, for ended leases).
        ready = select.select([conn], [], [], args.poll)
        if ready == ([], [], []):
            log({"event": "wake", "why": "timeout"})
            continue
        conn.poll()
        del conn.notifies[:]
        log({"event": "wake", "why": "notify"})


if __name__ == "__main__":
    sys.exit(main())
