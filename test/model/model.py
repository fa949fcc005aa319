#!/usr/bin/python3
"""Model-based test of the lifecycle extension.

An independent model of the transition table as README.md ("The
lifecycle": the table, its decisions, late timers, holds) and
docs/COMPLIANCE.md ("Retention deadlines") describe it, written from those
documents and not from src/machine.c.
A seeded random sequence of calls, clock moves with ticks, clock moves
without ticks (worker outages), several custom policies and a redefinition
mid-run drives both the model and a database; after every step every
user's state, next timer, deadline, hold, history and messages, and the
sets in lifecycle.violations, lifecycle.overdue and
lifecycle.retention_report are compared with the model.  Any difference
is a failure (exit status 1) with the seed and step to reproduce it.

  model.py --dsn DSN --seed N|random --steps N
"""
import argparse
import calendar
import copy
import datetime
import json
import random
import sys

import psycopg2

DAY = 86400.0
HOUR = 3600.0
TOL = 30.0          # seconds: calls and ticks run just after the step's time
MARGIN = 180.0      # no timer within this of a step's time (no ties)
TENANT = 'model'

# Policies: intervals in hours, or (months, days, hours) for calendar
# arithmetic as README.md has it (months first, in UTC, the day clamped to
# the month's last; a "1 mon" window is 28 days in February).  Reminders:
# invite ones count from the invitation, archive ones back from the
# archive time.
POLICIES = {
    'm_fast': dict(invite_reminders=[24], invite_expires_after=72,
                   dormant_after=120, archive_after=48,
                   archive_reminders=[24, 6], erase_after=96,
                   expired_erase_after=30, touch_granularity=5),
    'm_slow': dict(invite_reminders=[30, 70, 100], invite_expires_after=150,
                   dormant_after=300, archive_after=200,
                   archive_reminders=[50], erase_after=400,
                   expired_erase_after=90, touch_granularity=25),
    'm_none': dict(invite_reminders=[], invite_expires_after=40,
                   dormant_after=60, archive_after=30,
                   archive_reminders=[], erase_after=50,
                   expired_erase_after=20, touch_granularity=1),
    'm_cal': dict(invite_reminders=[(0, 20, 0)], invite_expires_after=(1, 0, 0),
                  dormant_after=(1, 5, 0), archive_after=(1, 0, 0),
                  archive_reminders=[(0, 27, 0), (0, 1, 0)],
                  erase_after=(2, 0, 0), expired_erase_after=(0, 0, 200),
                  touch_granularity=(0, 0, 7)),
}
# Calls the table allows from each state (others are tried too).
PLAUSIBLE = {
    'invited': ['register', 'register', 'invite', 'archive', 'erase', 'hold'],
    'active': ['touch', 'touch', 'complete', 'archive', 'erase', 'hold', 'register'],
    'dormant': ['touch', 'complete', 'restore', 'archive', 'erase', 'hold'],
    'completed': ['touch', 'restore', 'archive', 'erase', 'hold', 'complete'],
    'archived': ['restore', 'erase', 'hold', 'archive'],
    'expired': ['invite', 'invite', 'erase', 'hold'],
}

REDEFINED = dict(invite_reminders=[10], invite_expires_after=20,
                 dormant_after=50, archive_after=20,
                 archive_reminders=[5], erase_after=30,
                 expired_erase_after=10, touch_granularity=3)


def interval(v):
    """(months, days, hours) of a policy value."""
    return v if isinstance(v, tuple) else (0, 0, v)


def add(t, v, sign=1):
    """t + v (or t - v) with PostgreSQL's timestamp arithmetic in UTC:
    months (day clamped to the month's end), then days, then time."""
    months, days, hours = interval(v)
    d = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
    if months:
        y, m = divmod(d.month - 1 + sign * months, 12)
        y += d.year
        d = d.replace(year=y, month=m + 1,
                      day=min(d.day, calendar.monthrange(y, m + 1)[1]))
    return d.timestamp() + sign * (days * DAY + hours * HOUR)


def order_key(v):
    """Interval comparison as interval_cmp does it (1 mon = 30 days)."""
    months, days, hours = interval(v)
    return (months * 30 + days) * DAY + hours * HOUR


def policy_json(p):
    def iv(v):
        months, days, hours = interval(v)
        return '%d mons %d days %d hours' % (months, days, hours)
    return json.dumps({
        'invite_reminders': [iv(h) for h in p['invite_reminders']],
        'invite_expires_after': iv(p['invite_expires_after']),
        'dormant_after': iv(p['dormant_after']),
        'archive_after': iv(p['archive_after']),
        'archive_reminders': [iv(h) for h in p['archive_reminders']],
        'erase_after': iv(p['erase_after']),
        'expired_erase_after': iv(p['expired_erase_after']),
        'touch_granularity': iv(p['touch_granularity']),
        # Messages stay for the whole run (outbox pruning is not modelled).
        'outbox_retention': '20 years',
    })


class Refused(Exception):
    def __init__(self, sqlstate):
        Exception.__init__(self, sqlstate)
        self.sqlstate = sqlstate


class User:
    """One subject's workflow as README.md describes it."""

    def __init__(self, uid, subject, policy, version, now):
        self.id = uid
        self.subject = subject
        self.policy = policy
        self.version = version
        self.state = 'invited'
        self.since = now
        self.due = now          # when entering the state was due
        self.last_seen = None
        self.step = 0
        self.held = False
        self.until = None
        self.history = [('invite', None, 'invited')]
        self.messages = ['invite']


class Model:
    def __init__(self):
        self.versions = {}      # policy name -> list of definitions
        self.users = {}         # id -> User
        self.by_subject = {}    # subject -> id of the live (not erased) user
        self.compared = []      # times compared with "now" by the last run

    def pol(self, u):
        return self.versions[u.policy][u.version - 1]

    # -- timers (README: timer bases, late timers) ---------------------
    def deadline(self, u):
        p = self.pol(u)
        if u.state == 'invited':
            return 'expire', add(u.since, p['invite_expires_after'])
        if u.state == 'active':
            base = u.last_seen if u.last_seen is not None else u.since
            return 'dormant', add(base, p['dormant_after'])
        if u.state in ('dormant', 'completed'):
            return 'archive', add(u.since, p['archive_after'])
        if u.state == 'archived':
            return 'erase', add(u.due, p['erase_after'])
        if u.state == 'expired':
            return 'erase', add(u.due, p['expired_erase_after'])
        return None, None

    def timer(self, u):
        """The earlier of the next reminder and the deadline; the lapse of
        a hold while held."""
        if u.held:
            return (u.until, 'hold_lapse') if u.until is not None else (None, None)
        p = self.pol(u)
        ev, dl = self.deadline(u)
        if ev is None:
            return None, None
        if u.state == 'invited':
            rem = sorted(p['invite_reminders'], key=order_key)
            if u.step < len(rem):
                at = add(u.since, rem[u.step])
                if at < dl:
                    return at, 'invite_reminder'
            return dl, 'expire'
        if u.state == 'active':
            return dl, 'dormant'
        if u.state in ('dormant', 'completed'):
            rem = sorted(p['archive_reminders'], key=order_key, reverse=True)
            if u.step < len(rem):
                at = add(dl, rem[u.step], -1)
                if at < dl:
                    return at, 'archive_reminder'
            return dl, 'archive_due'
        return dl, 'erase_due'

    def in_force(self, u, now):
        return u.held and (u.until is None or u.until > now)

    def move(self, u, event, to, now, due, message=None):
        u.history.append((event, u.state, to))
        if message:
            u.messages.append(message)
        u.state = to
        u.since = now
        u.due = due
        u.step = 0
        if to == 'active':
            u.last_seen = now
        if to == 'erased':
            self.by_subject.pop(u.subject, None)

    def fire(self, u, now):
        at, ev = self.timer(u)
        self.compared.append(at)
        if ev == 'hold_lapse':
            u.history.append(('hold_lapse', u.state, u.state))
            u.held = False
            u.until = None
        elif ev in ('invite_reminder', 'archive_reminder'):
            _, dl = self.deadline(u)
            self.compared.append(dl)
            u.step += 1
            if now >= dl:   # the event it announces is past: skipped
                u.history.append(('reminder_skipped', u.state, u.state))
            else:
                u.history.append((ev, u.state, u.state))
                u.messages.append(ev)
        elif ev == 'expire':
            self.move(u, 'expire', 'expired', now, at)
        elif ev == 'dormant':
            self.move(u, 'dormant', 'dormant', now, at, 'archive_notice')
        elif ev == 'archive_due':
            self.move(u, 'archive_due', 'archived', now, at, 'archived')
        elif ev == 'erase_due':
            self.move(u, 'erase_due', 'erased', now, at)

    def tick(self, now):
        while True:
            due = []
            for u in self.users.values():
                at, ev = self.timer(u)
                if at is not None:
                    self.compared.append(at)
                    if at <= now:
                        due.append((at, u.id))
            if not due:
                return
            for _, uid in sorted(due):
                self.fire(self.users[uid], now)

    # -- calls (README: the table and its decisions) ------------------------
    def live(self, subject):
        uid = self.by_subject.get(subject)
        if uid is None:
            raise Refused('42704')
        return self.users[uid]

    def call(self, op, subject, now, arg=None):
        if op == 'invite':
            uid = self.by_subject.get(subject)
            if uid is None:
                return 'new'
            u = self.users[uid]
            if u.state in ('invited', 'active', 'dormant', 'completed'):
                return 'noop'
            if u.state == 'archived':
                raise Refused('55000')
            # expired: invited again, same id, with the policy given
            u.policy, u.version = arg
            self.move(u, 'invite', 'invited', now, now, 'invite')
            return 'again'
        u = self.live(subject)
        s = u.state
        if op == 'register':
            if s == 'invited':
                self.move(u, 'register', 'active', now, now)
            elif s != 'active':
                raise Refused('55000')
        elif op == 'touch':
            if s == 'active':
                gran = add(u.last_seen, self.pol(u)['touch_granularity'])
                self.compared.append(gran)
                if now >= gran:
                    u.last_seen = now
            elif s in ('dormant', 'completed'):
                self.move(u, 'touch', 'active', now, now)
            else:
                raise Refused('55000')
        elif op == 'complete':
            if s in ('active', 'dormant'):
                self.move(u, 'complete', 'completed', now, now, 'archive_notice')
            elif s != 'completed':
                raise Refused('55000')
        elif op == 'archive':
            if s in ('active', 'dormant', 'completed', 'invited'):
                self.move(u, 'archive', 'archived', now, now, 'archived')
            elif s != 'archived':
                raise Refused('55000')
        elif op == 'restore':
            if s in ('archived', 'dormant', 'completed'):
                self.move(u, 'restore', 'active', now, now, 'restored')
            elif s != 'active':
                raise Refused('55000')
        elif op == 'erase':
            if u.held:
                raise Refused('55000')
            self.move(u, 'erase', 'erased', now, now)
        elif op == 'hold':
            u.history.append(('hold', s, s))
            u.held = True
            u.until = arg
        elif op == 'release':
            if not u.held:
                raise Refused('55000')
            u.history.append(('release', s, s))
            u.held = False
            u.until = None
        return 'ok'

    # -- what the views must show --------------------------------------------
    def expected_views(self, now):
        viol, over, report = set(), set(), {}
        for u in self.users.values():
            ev, dl = self.deadline(u)
            at, nev = self.timer(u)
            force = self.in_force(u, now)
            v = dl is not None and dl < now - 60 and not force
            if v:
                viol.add(u.id)
            # overdue reads next_at; a held row's timer is its lapse
            if at is not None and at <= now and not force:
                over.add(u.id)
            k = (u.policy, u.state)
            r = report.setdefault(k, [0, 0])
            r[0] += 1
            r[1] += v
        return viol, over, {k: tuple(v) for k, v in report.items()}

    def critical(self, now):
        """Every time a step at "now" would compare with now."""
        out = []
        for u in self.users.values():
            at, _ = self.timer(u)
            _, dl = self.deadline(u)
            # A release at this step would arm the timer the hold hides.
            held, u.held = u.held, False
            hidden, _ = self.timer(u)
            u.held = held
            for t in (at, dl, u.until, hidden):
                if t is not None:
                    out.extend((t, t + 60))
            if u.state == 'active' and u.last_seen is not None:
                out.append(add(u.last_seen, self.pol(u)['touch_granularity']))
        return out


class Db:
    def __init__(self, dsn):
        self.conn = psycopg2.connect(dsn)
        self.conn.autocommit = True
        self.cur = self.conn.cursor()

    def q(self, sql, *args):
        self.cur.execute(sql, args)
        try:
            return self.cur.fetchall()
        except psycopg2.ProgrammingError:
            return None

    def now(self):
        return self.q("SELECT extract(epoch FROM lifecycle_now())::float8")[0][0]

    def set_clock(self, target):
        by = target - self.now()
        assert by > 0, by
        self.q("SELECT lifecycle_travel(make_interval(secs => %s))", by)

    def call(self, sql, *args):
        try:
            return self.q(sql, *args)
        except psycopg2.Error as e:
            raise Refused(e.pgcode)


def ts(t):
    return None if t is None else float(t)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--dsn', required=True)
    ap.add_argument('--seed', default='1')
    ap.add_argument('--steps', type=int, default=300)
    a = ap.parse_args()
    seed = random.randrange(1 << 30) if a.seed == 'random' else int(a.seed)
    rnd = random.Random(seed)
    db = Db(a.dsn)
    m = Model()
    print('seed %d, %d steps' % (seed, a.steps))

    for name, p in POLICIES.items():
        v = db.q("SELECT lifecycle_define_policy(%s, %s::jsonb)", name, policy_json(p))[0][0]
        m.versions[name] = [None] * (v - 1) + [p]
    # Start on a whole hour, then every step lands minutes after one.
    t = (int(db.now() // HOUR) + 2) * HOUR + 17 * 60
    db.set_clock(t)
    subjects = ['s%d' % i for i in range(12)]
    redefined = False
    counts = dict(calls=0, refused=0, ticks=0, outages=0)

    def fail(step, what, got, want):
        print('MISMATCH seed %d step %d: %s\n  db:    %r\n  model: %r' % (seed, step, what, got, want))
        sys.exit(1)

    for step in range(1, a.steps + 1):
        kind = rnd.random()
        if not redefined and step > a.steps // 2:
            # Redefine a policy mid-run: new invitations take the new
            # version, running users keep theirs.
            v = db.q("SELECT lifecycle_define_policy('m_fast', %s::jsonb)", policy_json(REDEFINED))[0][0]
            m.versions['m_fast'].append(REDEFINED)
            assert len(m.versions['m_fast']) == v
            redefined = True
        if kind < 0.55:
            # A few calls at this step's time (the clock does not move).
            for _ in range(rnd.randint(1, 3)):
                op = rnd.choice(['invite', 'invite', 'register', 'register', 'touch', 'touch',
                                 'complete', 'archive', 'restore', 'erase', 'hold', 'release'])
                subj = rnd.choice(subjects)
                live = sorted(m.by_subject)
                if live and rnd.random() < 0.6:
                    # Mostly calls the table allows from the subject's state.
                    subj = rnd.choice(live)
                    u = m.users[m.by_subject[subj]]
                    op = rnd.choice(PLAUSIBLE[u.state] + (['release'] * 2 if u.held else []))
                pname = rnd.choice(list(POLICIES))
                arg = None
                if op == 'invite':
                    arg = (pname, len(m.versions[pname]))
                if op == 'hold':
                    arg = None if rnd.random() < 0.3 else t + rnd.randint(1, 200) * HOUR + 7 * 60
                    crit = m.critical(t)
                    if arg is not None and any(abs(arg - c) < MARGIN for c in crit):
                        arg += 11 * 60
                try:
                    res = m.call(op, subj, t, arg)
                    want = None
                except Refused as e:
                    res, want = None, e.sqlstate
                got = None
                try:
                    if op == 'invite':
                        r = db.call("SELECT lifecycle_invite(%s, %s, %s, %s)", subj,
                                    subj + '@example.com', TENANT, pname)[0][0]
                        if res == 'new':
                            m.users[r] = User(r, subj, pname, arg[1], t)
                            m.by_subject[subj] = r
                        elif r != m.by_subject[subj]:
                            fail(step, 'invite id of ' + subj, r, m.by_subject[subj])
                    elif op == 'hold':
                        db.call("SELECT lifecycle_hold(%s, %s, 'model', to_timestamp(%s))",
                                subj, TENANT, arg)
                    elif op in ('erase',):
                        db.call("SELECT lifecycle_erase(%s, %s)", subj, TENANT)
                    else:
                        db.call("SELECT lifecycle_%s(%%s, %%s)" % op, subj, TENANT)
                except Refused as e:
                    got = e.sqlstate
                counts['calls'] += 1
                counts['refused'] += got is not None
                if got != want:
                    fail(step, '%s(%s) sqlstate' % (op, subj), got, want)
        else:
            # The clock moves; with a tick (worker up) or without (outage).
            hours = rnd.choice([1, 2, 5, 9, 20, 30, 50, 100, 300, 800, 1500])
            target = t + hours * HOUR
            ticked = kind < 0.85
            for _ in range(100):
                trial = copy.deepcopy(m)
                trial.compared = []
                if ticked:
                    trial.tick(target)
                crit = trial.compared + trial.critical(target)
                if all(abs(target - c) >= MARGIN for c in crit):
                    break
                target += 13 * 60
            t = target
            db.set_clock(t)
            if ticked:
                m = trial
                db.q("SELECT lifecycle_tick()")
                counts['ticks'] += 1
            else:
                counts['outages'] += 1
        compare(db, m, t, step, fail)
    print('ok: %(calls)d calls (%(refused)d refused), %(ticks)d ticks, %(outages)d clock moves without tick' % counts,
          '%d users' % len(m.users))


def compare(db, m, now, step, fail):
    rows = db.q("""SELECT id, state::text, extract(epoch FROM next_at)::float8, next_event,
                          deadline_event, extract(epoch FROM deadline_at)::float8, held
                     FROM lifecycle.users WHERE tenant = %s""", TENANT)
    got = {r[0]: r for r in rows}
    if set(got) != set(m.users):
        fail(step, 'users', sorted(got), sorted(m.users))
    hist = {}
    for uid, ev, fr, to in db.q("""SELECT h.user_id, h.event, h.from_state::text, h.to_state::text
                                      FROM lifecycle.history h JOIN lifecycle.users u ON u.id = h.user_id
                                     WHERE u.tenant = %s ORDER BY h.at, h.id""", TENANT):
        hist.setdefault(uid, []).append((ev, fr, to))
    msgs = {}
    for uid, msg in db.q("""SELECT o.user_id, o.message FROM lifecycle.outbox o
                              JOIN lifecycle.users u ON u.id = o.user_id
                             WHERE u.tenant = %s ORDER BY o.id""", TENANT):
        msgs.setdefault(uid, []).append(msg)
    close = lambda a, b: (a is None and b is None) or (a is not None and b is not None and abs(a - b) <= TOL)
    for uid, u in m.users.items():
        r = got[uid]
        at, ev = m.timer(u)
        dev, dl = m.deadline(u)
        if r[1] != u.state:
            fail(step, 'state of %d (%s)' % (uid, u.subject), r[1], u.state)
        if r[3] != ev or not close(ts(r[2]), at):
            fail(step, 'next timer of %d (%s, %s)' % (uid, u.subject, u.state), (r[3], r[2]), (ev, at))
        if r[4] != dev or not close(ts(r[5]), dl):
            fail(step, 'deadline of %d (%s, %s)' % (uid, u.subject, u.state), (r[4], r[5]), (dev, dl))
        if r[6] != u.held:
            fail(step, 'held of %d' % uid, r[6], u.held)
        if hist.get(uid, []) != u.history:
            fail(step, 'history of %d (%s)' % (uid, u.subject), hist.get(uid), u.history)
        if msgs.get(uid, []) != u.messages:
            fail(step, 'messages of %d (%s)' % (uid, u.subject), msgs.get(uid), u.messages)
    # lifecycle_status(): held means a hold in force (a lapsed one is not,
    # written or not), with the deadline of the state.
    for subj, uid in m.by_subject.items():
        u = m.users[uid]
        r = db.q("SELECT held, deadline_event, extract(epoch FROM deadline_at)::float8"
                 " FROM lifecycle_status(%s, %s)", subj, TENANT)[0]
        dev, dl = m.deadline(u)
        if r[0] != m.in_force(u, now) or r[1] != dev or not close(ts(r[2]), dl):
            fail(step, 'lifecycle_status of %d (%s)' % (uid, subj), r, (m.in_force(u, now), dev, dl))
    viol, over, report = m.expected_views(now)
    gv = {r[0] for r in db.q("SELECT id FROM lifecycle.violations WHERE tenant = %s", TENANT)}
    if gv != viol:
        fail(step, 'lifecycle.violations', sorted(gv), sorted(viol))
    go = {r[0] for r in db.q("SELECT id FROM lifecycle.overdue WHERE tenant = %s", TENANT)}
    if go != over:
        fail(step, 'lifecycle.overdue', sorted(go), sorted(over))
    gr = {(p, s): (int(n), int(v)) for p, s, n, v in db.q(
        """SELECT policy, state::text, users, violations FROM lifecycle.retention_report
            WHERE tenant = %s""", TENANT)}
    if gr != report:
        fail(step, 'lifecycle.retention_report', gr, report)


if __name__ == '__main__':
    main()
