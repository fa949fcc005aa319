#!/usr/bin/python3
"""Model-based test of the counts kept as they change (issue 20).

The model is the full count: after every step, every count kept in
lifecycle.counts and lifecycle.count_deltas (users per tenant, policy and
state with those held; history rows per tenant and event; outbox rows per
tenant, channel and status) must equal a count of the rows, and
lifecycle.retention_report and the count families of lifecycle.metrics
must equal their 0.2.0 definitions, which counted every row (written out
below).  A seeded random sequence drives: application calls in every
state (invite, register, touch, complete, restore, archive, update,
erase), holds with and without an end, releases, adoption, policy
redefinitions with migration, claims and acknowledgements of messages,
outbox and history pruning, clock moves with ticks or with the worker
advancing, transactions rolled back whole or to a savepoint, backends
terminated inside a transaction, backends killed with SIGKILL (the server
restarts: crash recovery) and the scheduler terminated.  Any difference
is a failure (exit status 1) with the seed and step to reproduce it.

  counts.py --dsn DSN --seed N|random --steps N [--check-first]
"""
import argparse
import os
import random
import signal
import sys
import time

import psycopg2

TENANTS = ['ta', 'tb', 'tc']
SUBJECTS = ['s%d' % i for i in range(40)]
POLICIES = {
    'cp_fast': {"invite_reminders": ["1 day"], "invite_expires_after": "3 days",
                "dormant_after": "4 days", "archive_after": "2 days",
                "archive_reminders": ["1 day"], "erase_after": "3 days",
                "expired_erase_after": "1 day", "touch_granularity": "1 hour",
                "outbox_retention": "2 days", "history_retention": "2 days"},
    'cp_slow': {"invite_reminders": ["2 days", "5 days"],
                "invite_expires_after": "8 days", "dormant_after": "10 days",
                "archive_after": "6 days", "archive_reminders": [],
                "erase_after": "9 days", "expired_erase_after": "3 days",
                "touch_granularity": "1 hour", "outbox_retention": "4 days",
                "history_retention": "5 days"},
}
# Messages of this one go to a channel that refuses them: the sender
# retries them until they are dead.
POLICIES['cp_hook'] = dict(POLICIES['cp_fast'], channel='cnt-hook')

# The counts kept, summed with the deltas not folded yet.
KEPT = """
SELECT family, tenant, key1, key2, sum(n)::bigint AS n, sum(held)::bigint AS held
  FROM (SELECT family, tenant, key1, key2, n, held FROM lifecycle.counts
        UNION ALL
        SELECT family, tenant, key1, key2, n, held FROM lifecycle.count_deltas) c
 GROUP BY 1, 2, 3, 4
HAVING sum(n) <> 0 OR sum(held) <> 0"""

# The same by counting every row.
FULL = """
SELECT 'users'::text, u.tenant, u.policy, u.state::text, count(*),
       count(*) FILTER (WHERE u.held)
  FROM lifecycle.users u GROUP BY 2, 3, 4
UNION ALL
SELECT 'events', coalesce(u.tenant, ''), h.event, coalesce(u.workflow, ''), count(*), 0
  FROM lifecycle.history h LEFT JOIN lifecycle.users u ON u.id = h.user_id
 GROUP BY 2, 3, 4
UNION ALL
SELECT 'messages', coalesce(u.tenant, ''), coalesce(o.channel, ''), o.status,
       count(*), 0
  FROM lifecycle.outbox o LEFT JOIN lifecycle.users u ON u.id = o.user_id
 GROUP BY 2, 3, 4
UNION ALL
SELECT 'lateness', coalesce(u.tenant, ''),
       CASE WHEN h.at - h.due_at <= interval '1 second' THEN '1'
            WHEN h.at - h.due_at <= interval '10 seconds' THEN '10'
            WHEN h.at - h.due_at <= interval '1 minute' THEN '60'
            WHEN h.at - h.due_at <= interval '5 minutes' THEN '300'
            WHEN h.at - h.due_at <= interval '1 hour' THEN '3600'
            WHEN h.at - h.due_at <= interval '1 day' THEN '86400'
            ELSE '+Inf' END, '', count(*),
       sum((extract(epoch FROM h.at - h.due_at) * 1000000)::bigint)
  FROM lifecycle.history h LEFT JOIN lifecycle.users u ON u.id = h.user_id
 WHERE h.due_at IS NOT NULL
 GROUP BY 2, 3"""

# lifecycle.retention_report as 0.2.0 defined it (every row read), and the
# workflow column of 0.3.0 from the instances themselves.
REPORT_020 = """
SELECT u.tenant, u.policy, u.state, count(*) AS users,
       min(u.state_since) AS oldest_since,
       min(u.next_at) FILTER (WHERE NOT (u.held AND (u.hold_until IS NULL
            OR u.hold_until > (SELECT lifecycle_now())))) AS next_due,
       count(*) FILTER (WHERE u.held AND (u.hold_until IS NULL
            OR u.hold_until > (SELECT lifecycle_now()))) AS held,
       min(u.deadline_at) AS next_deadline,
       count(*) FILTER (WHERE u.deadline_at < (SELECT lifecycle_now()) - interval '1 minute'
            AND NOT (u.held AND (u.hold_until IS NULL
            OR u.hold_until > (SELECT lifecycle_now())))) AS violations,
       CASE WHEN count(DISTINCT u.workflow) = 1 THEN min(u.workflow) END
            AS workflow
  FROM lifecycle.users u
 GROUP BY u.tenant, u.policy, u.state"""
REPORT = """
SELECT tenant, policy, state, users, oldest_since, next_due, held,
       next_deadline, violations, workflow FROM lifecycle.retention_report"""

# The count and timer families of lifecycle.metrics as 0.2.0 computed them.
METRICS_020 = """
SELECT 'lifecycle_state_users'::text, jsonb_build_object('tenant', u.tenant,
        'policy', u.policy, 'state', u.state::text, 'workflow', u.workflow),
       count(*)::float8
  FROM lifecycle.users u GROUP BY u.tenant, u.policy, u.state, u.workflow
UNION ALL
SELECT 'lifecycle_state_held', jsonb_build_object('tenant', u.tenant,
        'policy', u.policy, 'state', u.state::text, 'workflow', u.workflow),
       count(*) FILTER (WHERE u.held AND (u.hold_until IS NULL
            OR u.hold_until > lifecycle_now()))::float8
  FROM lifecycle.users u GROUP BY u.tenant, u.policy, u.state, u.workflow
UNION ALL
SELECT 'lifecycle_workflow_timers_overdue', jsonb_build_object('workflow',
        u.workflow),
       count(*) FILTER (WHERE u.next_at <= lifecycle_now()
            AND NOT (u.held AND (u.hold_until IS NULL
            OR u.hold_until > lifecycle_now())))::float8
  FROM lifecycle.users u GROUP BY u.workflow
UNION ALL
SELECT 'lifecycle_workflow_timers_violations', jsonb_build_object('workflow',
        u.workflow),
       count(*) FILTER (WHERE u.deadline_at < lifecycle_now() - interval '1 minute'
            AND NOT (u.held AND (u.hold_until IS NULL
            OR u.hold_until > lifecycle_now())))::float8
  FROM lifecycle.users u GROUP BY u.workflow
UNION ALL
SELECT 'lifecycle_transitions_total', jsonb_build_object('event', h.event,
        'workflow', coalesce(u.workflow, '')), count(*)::float8
  FROM lifecycle.history h LEFT JOIN lifecycle.users u ON u.id = h.user_id
 GROUP BY h.event, coalesce(u.workflow, '')
UNION ALL
SELECT 'lifecycle_outbox_messages', jsonb_build_object('channel',
        coalesce(o.channel, ''), 'status', o.status), count(*)::float8
  FROM lifecycle.outbox o JOIN lifecycle.users u ON u.id = o.user_id
 GROUP BY coalesce(o.channel, ''), o.status
UNION ALL
SELECT 'lifecycle_dead_letters', jsonb_build_object('channel',
        coalesce(o.channel, '')), count(*)::float8
  FROM lifecycle.outbox o JOIN lifecycle.users u ON u.id = o.user_id
 WHERE o.status = 'dead'
 GROUP BY coalesce(o.channel, '')
UNION ALL
SELECT 'lifecycle_timers_overdue', '{}'::jsonb, count(*)::float8
  FROM lifecycle.users u
 WHERE u.next_at <= lifecycle_now()
   AND NOT (u.held AND (u.hold_until IS NULL OR u.hold_until > lifecycle_now()))
UNION ALL
SELECT 'lifecycle_timers_lag_seconds', '{}'::jsonb,
       coalesce(extract(epoch FROM lifecycle_now() - min(u.next_at)), 0)::float8
  FROM lifecycle.users u
 WHERE u.next_at <= lifecycle_now()
   AND NOT (u.held AND (u.hold_until IS NULL OR u.hold_until > lifecycle_now()))
UNION ALL
SELECT 'lifecycle_timer_lateness_seconds_bucket', jsonb_build_object('le', b.le),
       count(h.id) FILTER (WHERE b.s IS NULL OR h.at - h.due_at <= b.s)::float8
  FROM (VALUES ('1', interval '1 second'), ('10', interval '10 seconds'),
               ('60', interval '1 minute'), ('300', interval '5 minutes'),
               ('3600', interval '1 hour'), ('86400', interval '1 day'),
               ('+Inf', NULL)) b(le, s)
  LEFT JOIN lifecycle.history h ON h.due_at IS NOT NULL
 GROUP BY b.le
UNION ALL
SELECT 'lifecycle_timer_lateness_seconds_sum', '{}'::jsonb,
       coalesce(sum(extract(epoch FROM h.at - h.due_at)), 0)::float8
  FROM lifecycle.history h WHERE h.due_at IS NOT NULL
UNION ALL
SELECT 'lifecycle_timer_lateness_seconds_count', '{}'::jsonb, count(*)::float8
  FROM lifecycle.history h WHERE h.due_at IS NOT NULL
UNION ALL
SELECT 'lifecycle_timers_violations', '{}'::jsonb, count(*)::float8
  FROM lifecycle.users u
 WHERE u.deadline_at < lifecycle_now() - interval '1 minute'
   AND NOT (u.held AND (u.hold_until IS NULL OR u.hold_until > lifecycle_now()))"""
METRICS = """
SELECT name, labels, value FROM lifecycle.metrics
 WHERE name IN ('lifecycle_state_users', 'lifecycle_state_held',
                'lifecycle_transitions_total', 'lifecycle_outbox_messages',
                'lifecycle_dead_letters', 'lifecycle_timers_overdue',
                'lifecycle_timers_lag_seconds', 'lifecycle_timers_violations',
                'lifecycle_timer_lateness_seconds_bucket',
                'lifecycle_timer_lateness_seconds_sum',
                'lifecycle_timer_lateness_seconds_count',
                'lifecycle_workflow_timers_overdue',
                'lifecycle_workflow_timers_violations')"""


def diff_query(a, b):
    return ('SELECT count(*) FROM (((%s) EXCEPT ALL (%s)) UNION ALL '
            '((%s) EXCEPT ALL (%s))) d' % (a, b, b, a))


class Runner:
    def __init__(self, dsn, rng):
        self.dsn = dsn
        self.rng = rng
        self.conn = None
        self.connect()

    def connect(self):
        for _ in range(600):
            try:
                self.conn = psycopg2.connect(self.dsn)
                self.conn.autocommit = True
                return
            except psycopg2.OperationalError:
                time.sleep(0.1)
        raise RuntimeError('cannot connect')

    def q(self, sql, args=None, conn=None):
        c = conn or self.conn
        with c.cursor() as cur:
            cur.execute(sql, args)
            if cur.description is not None:
                return cur.fetchall()
            return None

    def safe(self, sql, args=None, conn=None):
        """Run a statement that may be refused (wrong state, unknown
        subject): the error is part of the test, not a failure."""
        c = conn or self.conn
        try:
            if not c.autocommit:
                self.q('SAVEPOINT s', conn=c)
            self.q(sql, args, conn=c)
            if not c.autocommit:
                self.q('RELEASE SAVEPOINT s', conn=c)
            return True
        except psycopg2.Error as e:
            # Connection lost, backend terminated: not a refusal.
            if e.pgcode is None or e.pgcode.startswith('57') or c.closed:
                raise
            if not c.autocommit:
                self.q('ROLLBACK TO SAVEPOINT s', conn=c)
            return False

    # --- the calls ---------------------------------------------------
    def call(self, conn=None):
        r = self.rng
        s, t = r.choice(SUBJECTS), r.choice(TENANTS)
        kind = r.choice(['invite', 'invite', 'register', 'register', 'touch',
                         'complete', 'restore', 'archive', 'erase', 'hold',
                         'hold_until', 'release', 'update'])
        if kind == 'invite':
            self.safe('SELECT lifecycle_invite(%s, %s, %s, %s)',
                      (s, s + '@example.com', t, r.choice(list(POLICIES))), conn)
        elif kind == 'hold':
            self.safe("SELECT lifecycle_hold(%s, %s, 'case')", (s, t), conn)
        elif kind == 'hold_until':
            self.safe("SELECT lifecycle_hold(%s, %s, 'case', lifecycle_now() + %s::interval)",
                      (s, t, '%d hours' % r.randint(1, 72)), conn)
        elif kind == 'update':
            self.safe('SELECT lifecycle_update(%s, %s, policy => %s)',
                      (s, t, r.choice(list(POLICIES))), conn)
        else:
            self.safe('SELECT lifecycle_%s(%%s, %%s)' % kind, (s, t), conn)

    def step(self, n):
        r = self.rng
        what = r.choices(
            ['calls', 'tick', 'worker', 'rollback', 'savepoint', 'terminate',
             'sigkill', 'kill_worker', 'migrate', 'adopt', 'messages', 'prune',
             'bulk_erase'],
            weights=[30, 8, 6, 6, 5, 3, 1, 2, 3, 2, 5, 3, 1])[0]
        if what == 'calls':
            for _ in range(r.randint(1, 6)):
                self.call()
        elif what == 'tick':
            self.q('SELECT lifecycle_travel(%s::interval)', ('%d hours' % r.randint(1, 60),))
            self.q('SELECT lifecycle_tick()')
        elif what == 'worker':
            # The worker advances what fell due (and folds, every pass).
            self.q('SELECT lifecycle_travel(%s::interval)', ('%d hours' % r.randint(1, 60),))
            time.sleep(r.choice([0, 0.05, 0.3]))
        elif what in ('rollback', 'savepoint'):
            c = psycopg2.connect(self.dsn)
            try:
                for _ in range(r.randint(1, 5)):
                    self.call(c)
                if what == 'savepoint':
                    self.q('SAVEPOINT sp', conn=c)
                    for _ in range(r.randint(1, 5)):
                        self.call(c)
                    self.q('ROLLBACK TO SAVEPOINT sp', conn=c)
                    for _ in range(r.randint(0, 3)):
                        self.call(c)
                    if r.random() < 0.2:
                        self.q('SELECT lifecycle_tick()', conn=c)
                    c.commit()
                else:
                    if r.random() < 0.3:
                        self.q('SELECT lifecycle_travel(%s::interval)',
                               ('%d hours' % r.randint(1, 60),), conn=c)
                        self.q('SELECT lifecycle_tick()', conn=c)
                    c.rollback()
            finally:
                c.close()
        elif what in ('terminate', 'sigkill'):
            c = psycopg2.connect(self.dsn)
            pid = self.q('SELECT pg_backend_pid()', conn=c)[0][0]
            for _ in range(r.randint(1, 5)):
                self.call(c)
            if what == 'terminate':
                self.q('SELECT pg_terminate_backend(%s)', (pid,))
            else:
                os.kill(pid, signal.SIGKILL)
            try:
                c.close()
            except psycopg2.Error:
                pass
            if what == 'sigkill':
                # The postmaster restarts every backend: reconnect.
                try:
                    self.conn.close()
                except psycopg2.Error:
                    pass
                time.sleep(0.5)
                self.connect()
                for _ in range(600):
                    try:
                        self.q('SELECT 1')
                        break
                    except psycopg2.Error:
                        time.sleep(0.1)
                        self.connect()
        elif what == 'kill_worker':
            self.q("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                   " WHERE backend_type = 'lifecycle scheduler'")
        elif what == 'migrate':
            pol = r.choice(list(POLICIES))
            d = dict(POLICIES[pol])
            d['dormant_after'] = '%d days' % r.randint(3, 12)
            d['erase_after'] = '%d days' % r.randint(2, 9)
            self.q('SELECT lifecycle_define_policy(%s, %s::jsonb)', (pol, json_dump(d)))
            self.q('SELECT lifecycle_migrate(%s)', (pol,))
        elif what == 'adopt':
            t = r.choice(TENANTS)
            self.q('DROP TABLE IF EXISTS cnt_accounts')
            self.q("CREATE TABLE cnt_accounts AS SELECT 'a' || i || '-' || %s AS subject,"
                   " 'a' || i || '@example.com' AS email,"
                   " lifecycle_now() - (i || ' hours')::interval AS last_seen"
                   " FROM generate_series(1, %s) i", (n, r.randint(1, 8)))
            self.safe('SELECT * FROM lifecycle_adopt(%s, %s, %s)',
                      ('cnt_accounts', t, r.choice(list(POLICIES))))
        elif what == 'messages':
            ids = [x[0] for x in self.q('SELECT id FROM lifecycle_claim_messages(%s)',
                                        (r.randint(1, 5),))]
            if ids and r.random() < 0.7:
                self.q('SELECT lifecycle_ack_messages(%s::bigint[])',
                       (ids[:r.randint(0, len(ids))],))
        elif what == 'prune':
            self.q('SELECT lifecycle_prune_outbox()')
            self.q('SELECT lifecycle_prune_history()')
        elif what == 'bulk_erase':
            t = r.choice(TENANTS)
            for s in r.sample(SUBJECTS, r.randint(2, 10)):
                self.safe("SELECT lifecycle_erase(%s, %s)", (s, t))
        return what

    def check(self, step, what, seed):
        bad = []
        n = self.q(diff_query(KEPT, FULL))[0][0]
        if n:
            bad.append('counts: %d groups differ' % n)
            for row in self.q('(%s) EXCEPT ALL (%s)' % (KEPT, FULL)):
                bad.append('  kept %r' % (row,))
            for row in self.q('(%s) EXCEPT ALL (%s)' % (FULL, KEPT)):
                bad.append('  full %r' % (row,))
        n = self.q(diff_query(REPORT, REPORT_020))[0][0]
        if n:
            bad.append('retention_report: %d rows differ from 0.2.0' % n)
            for row in self.q('(%s) EXCEPT ALL (%s)' % (REPORT, REPORT_020)):
                bad.append('  now  %r' % (row,))
            for row in self.q('(%s) EXCEPT ALL (%s)' % (REPORT_020, REPORT)):
                bad.append('  0.2.0 %r' % (row,))
        n = self.q(diff_query(METRICS, METRICS_020))[0][0]
        if n:
            bad.append('metrics: %d samples differ from 0.2.0' % n)
            for row in self.q('(%s) EXCEPT ALL (%s)' % (METRICS, METRICS_020)):
                bad.append('  now  %r' % (row,))
            for row in self.q('(%s) EXCEPT ALL (%s)' % (METRICS_020, METRICS)):
                bad.append('  0.2.0 %r' % (row,))
        if bad:
            print('FAIL seed %s step %d (%s):' % (seed, step, what))
            print('\n'.join(bad))
            return False
        return True


def json_dump(d):
    import json
    return json.dumps(d)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--dsn', required=True)
    ap.add_argument('--seed', default='1')
    ap.add_argument('--steps', type=int, default=300)
    ap.add_argument('--check-first', action='store_true',
                    help='compare before the first step (after an upgrade)')
    ap.add_argument('--check-only', action='store_true',
                    help='compare the database as it is, and nothing else')
    a = ap.parse_args()
    seed = random.randrange(1 << 30) if a.seed == 'random' else int(a.seed)
    rng = random.Random(seed)
    run = Runner(a.dsn, rng)
    if a.check_only:
        sys.exit(0 if run.check(0, 'check only', seed) else 1)
    if a.check_first and not run.check(0, 'start', seed):
        sys.exit(1)
    run.q("SELECT lifecycle_add_channel('cnt-hook', 'webhook', 'http://127.0.0.1:9/hook',"
          " 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')")
    for name, d in POLICIES.items():
        run.q('SELECT lifecycle_define_policy(%s, %s::jsonb)', (name, json_dump(d)))
    kinds = {}
    for step in range(1, a.steps + 1):
        what = run.step(step)
        kinds[what] = kinds.get(what, 0) + 1
        if not run.check(step, what, seed):
            sys.exit(1)
    rows = run.q('SELECT family, count(*), sum(n) FROM (%s) k GROUP BY 1 ORDER BY 1' % KEPT)
    print('seed %d: %d steps agree (%s); groups %s' % (
        seed, a.steps, ', '.join('%s %d' % kv for kv in sorted(kinds.items())),
        ', '.join('%s %d (%d rows)' % (f, g, s) for f, g, s in rows)))


if __name__ == '__main__':
    main()
