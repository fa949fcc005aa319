#!/usr/bin/python3
"""Model-based test of workflows other than the user lifecycle.

An independent model, written from the design contract (its sections "The
workflow language", "Policies, instances and subjects", "The built-in dsar
workflow"; README.md "Workflows" and "Data subject requests") and not from
src/core/machine.c or sql/workflows/dsar.json: the built-in dsar workflow
as the design's prose states it, and a custom workflow (mtrial,
defined here) that uses every anchor (started, entered, due, last_seen),
both kinds of reminders (after the anchor, before the deadline), a summed
"after", a touch effect, noop and refuse edges and timer messages.

A seeded random sequence of lifecycle_start(), lifecycle_signal(), clock
moves with lifecycle_tick() and clock moves without (worker outages) drives
the model and a database; several subjects each run up to two requests
and a trial, under four policies (the built-in dsar policy's calendar
values and three with short intervals).  After every step, every
instance's state, next timer, deadline, history and messages (with the
deadline a notice announces), lifecycle_instances() of every subject
(42704 once all of the subject's instances are erased), and the sets in
lifecycle.violations and lifecycle.overdue are compared with the model.
Any difference is a failure (exit status 1) with the seed and step.

A signal first fires the instance's own due timers, as the worker would
have (README "Workflows": the lateness of the worker decides nothing), and
the event applies to the state they lead to: during an outage a request
past its answer deadline is overdue for lifecycle_signal(), so extend is
refused (DESIGN: once a request is overdue it can be answered, not
extended).  A refused signal (or one whose timers erase the instance:
42704) changes nothing, its timers included: they fire at the next tick.

  model_workflows.py --dsn DSN --seed N|random --steps N
"""
import argparse
import calendar
import collections
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
TENANT = 'wmodel'

# Intervals are (months, days, hours), added months first (day clamped to
# the month's end), then days, then hours, in UTC.


def add(t, v, sign=1):
    months, days, hours = v
    d = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
    if months:
        y, m = divmod(d.month - 1 + sign * months, 12)
        y += d.year
        d = d.replace(year=y, month=m + 1,
                      day=min(d.day, calendar.monthrange(y, m + 1)[1]))
    return d.timestamp() + sign * (days * DAY + hours * HOUR)


def order_key(v):
    months, days, hours = v
    return (months * 30 + days) * DAY + hours * HOUR


def iv(v):
    return '%d mons %d days %d hours' % v


# -- the workflows, from DESIGN ---------------------------------------------
# A state's timer: event, after (parameter names, summed in order), anchor,
# to, message, deadline label, reminders (kind 'after' | 'before',
# parameter, event, message).  Events: lists of edges (from states, kind
# 'to' | 'noop' | 'refuse' | 'touch', target, message).

# dsar (DESIGN "The built-in dsar workflow"): received -> extend ->
# extended; answer -> answered; refuse -> refused (from every open state;
# an overdue request can be answered, not extended); timers to overdue at
# receipt + respond_within, or extended at receipt + respond_within +
# extend_by, reminders before each; closed and overdue requests erased
# keep_after_close after (the anchor due: lateness never extends
# retention).
OPEN = ['received', 'extended', 'overdue']
DSAR = {
    'start': 'request',
    'states': {
        'received': dict(event='respond_due', after=['respond_within'], anchor='started',
                         to='overdue', message='request_overdue', deadline='respond',
                         rem=('before', 'reminders', 'respond_reminder', 'request_reminder')),
        'extended': dict(event='respond_due', after=['respond_within', 'extend_by'],
                         anchor='started', to='overdue', message='request_overdue',
                         deadline='respond',
                         rem=('before', 'reminders', 'respond_reminder', 'request_reminder')),
        'answered': dict(event='close_due', after=['keep_after_close'], anchor='due',
                         to='erased', message=None, deadline='close', rem=None),
        'refused': dict(event='close_due', after=['keep_after_close'], anchor='due',
                        to='erased', message=None, deadline='close', rem=None),
        'overdue': dict(event='close_due', after=['keep_after_close'], anchor='due',
                        to='erased', message=None, deadline='close', rem=None),
    },
    'events': {
        'request': [(['none'], 'to', 'received', 'request_received')],
        'extend': [(['received'], 'to', 'extended', 'request_extended'),
                   (['extended', 'overdue'], 'refuse', None, None)],
        'answer': [(OPEN, 'to', 'answered', 'request_answered'),
                   (['answered'], 'noop', None, None)],
        'refuse': [(OPEN, 'to', 'refused', 'request_refused'),
                   (['refused'], 'noop', None, None)],
    },
}

# mtrial: a custom workflow, its definition given to the database below.
TRIAL = {
    'start': 'begin',
    'states': {
        'trialing': dict(event='trial_end', after=['trial'], anchor='started', to='lapsed',
                         message='trial_over', deadline='trial_end',
                         rem=('after', 'nudges', 'nudge', 'trial_nudge')),
        'paying': dict(event='idle', after=['grace', 'trial'], anchor='last_seen',
                       to='lapsed', message='lapse_notice', deadline='idle', rem=None),
        'lapsed': dict(event='purge', after=['keep'], anchor='due', to='erased',
                       message=None, deadline='purge',
                       rem=('before', 'warn', 'purge_warning', 'purge_warning')),
        'cancelled': dict(event='purge', after=['grace'], anchor='entered', to='erased',
                          message=None, deadline='purge', rem=None),
    },
    'events': {
        'begin': [(['none'], 'to', 'trialing', 'welcome')],
        'pay': [(['trialing', 'lapsed'], 'to', 'paying', None),
                (['paying'], 'noop', None, None)],
        'use': [(['paying'], 'touch', None, None)],
        'cancel': [(['trialing', 'paying'], 'to', 'cancelled', 'bye'),
                   (['cancelled'], 'refuse', None, None)],
    },
}
TRIAL_JSON = {
    'description': 'model test: a trial',
    # (the engine wants every message declared; DESIGN: "messages"
    # declares only templates)
    'messages': {m: {} for m in ('welcome', 'trial_nudge', 'trial_over', 'lapse_notice',
                                 'purge_warning', 'bye')},
    'params': {'trial': '14 days', 'grace': '3 days', 'keep': '30 days',
               'nudges': ['2 days', '5 days'], 'warn': ['1 day']},
    'states': {
        'trialing': {'timer': {'event': 'trial_end', 'after': 'trial', 'from': 'started',
                               'to': 'lapsed', 'message': 'trial_over',
                               'reminders': {'after': 'nudges', 'event': 'nudge',
                                             'message': 'trial_nudge'}}},
        'paying': {'timer': {'event': 'idle', 'after': ['grace', 'trial'],
                             'from': 'last_seen', 'to': 'lapsed',
                             'message': 'lapse_notice'}},
        'lapsed': {'timer': {'event': 'purge', 'after': 'keep', 'from': 'due',
                             'to': 'erased',
                             'reminders': {'before': 'warn', 'event': 'purge_warning',
                                           'message': 'purge_warning'}}},
        'cancelled': {'timer': {'event': 'purge', 'after': 'grace', 'from': 'entered',
                                'to': 'erased'}},
    },
    'events': {
        'begin': [{'from': ['none'], 'to': 'trialing', 'message': 'welcome'}],
        'pay': [{'from': ['trialing', 'lapsed'], 'to': 'paying'},
                {'from': ['paying'], 'effect': 'noop'}],
        'use': [{'from': ['paying'], 'effect': 'touch'}],
        'cancel': [{'from': ['trialing', 'paying'], 'to': 'cancelled', 'message': 'bye'},
                   {'from': ['cancelled'], 'effect': 'refuse', 'hint': 'Already cancelled.'}],
    },
}
WORKFLOWS = {'dsar': DSAR, 'mtrial': TRIAL}

# Policies: workflow, parameters, touch granularity.  'dsar' is the
# built-in policy, at DESIGN's defaults.
POLICIES = {
    'dsar': ('dsar', dict(respond_within=(1, 0, 0), extend_by=(2, 0, 0),
                          reminders=[(0, 7, 0), (0, 1, 0)], keep_after_close=(24, 0, 0)), None),
    'md_fast': ('dsar', dict(respond_within=(0, 0, 30), extend_by=(0, 0, 60),
                             reminders=[(0, 0, 10), (0, 0, 2)], keep_after_close=(0, 0, 100)),
                (0, 0, 1)),
    'mtrial': ('mtrial', dict(trial=(0, 14, 0), grace=(0, 3, 0), keep=(0, 30, 0),
                              nudges=[(0, 2, 0), (0, 5, 0)], warn=[(0, 1, 0)]), (0, 0, 1)),
    'mt_fast': ('mtrial', dict(trial=(0, 0, 50), grace=(0, 0, 10), keep=(0, 0, 40),
                               nudges=[(0, 0, 5), (0, 0, 20)], warn=[(0, 0, 8)]), (0, 0, 3)),
}
KEYS = {'dsar': ['k1', 'k2'], 'mtrial': ['']}


class Refused(Exception):
    def __init__(self, sqlstate):
        Exception.__init__(self, sqlstate)
        self.sqlstate = sqlstate


class Inst:
    def __init__(self, iid, subject, workflow, key, policy, now):
        self.id = iid
        self.subject = subject
        self.workflow = workflow
        self.key = key
        self.policy = policy
        self.started = now
        self.state = None
        self.since = now
        self.due = now
        self.last_seen = now
        self.step = 0
        self.history = []
        self.messages = []      # (message, archive_at or None)


class Model:
    def __init__(self):
        self.insts = {}         # id -> Inst
        self.live = {}          # (subject, workflow, key) -> id
        self.compared = []

    def wf(self, i):
        return WORKFLOWS[i.workflow]

    def params(self, i):
        return POLICIES[i.policy][1]

    def deadline(self, i):
        """(label, time) of the state's timer: its deadline."""
        if i.state == 'erased':
            return None, None
        t = self.wf(i)['states'][i.state]
        p = self.params(i)
        at = {'started': i.started, 'entered': i.since, 'due': i.due,
              'last_seen': i.last_seen}[t['anchor']]
        for name in t['after']:
            at = add(at, p[name])
        return t['deadline'], at

    def timer(self, i):
        """The earlier of the next reminder and the deadline."""
        if i.state == 'erased':
            return None, None
        t = self.wf(i)['states'][i.state]
        _, dl = self.deadline(i)
        if t['rem'] is not None:
            kind, param, ev, _ = t['rem']
            p = self.params(i)
            anchor = {'started': i.started, 'entered': i.since, 'due': i.due,
                      'last_seen': i.last_seen}[t['anchor']]
            if kind == 'after':
                offs = sorted(p[param], key=order_key)
                ats = [add(anchor, o) for o in offs]
            else:
                offs = sorted(p[param], key=order_key, reverse=True)
                ats = [add(dl, o, -1) for o in offs]
            if i.step < len(ats) and ats[i.step] < dl:
                return ats[i.step], ev
        return dl, t['event']

    def announces(self, i):
        """The deadline a message written on entering i's state carries:
        a state whose deadline is announced by reminders before it."""
        t = self.wf(i)['states'].get(i.state)
        if t is None or t['rem'] is None or t['rem'][0] != 'before':
            return None
        return self.deadline(i)[1]

    def move(self, i, event, to, now, due, message):
        i.history.append((event, i.state, to))
        i.state = to
        i.since = now
        i.due = due
        i.step = 0
        if to == 'erased':
            self.live.pop((i.subject, i.workflow, i.key), None)
            return
        if self.wf(i)['states'][to]['anchor'] == 'last_seen':
            i.last_seen = now
        if message:
            i.messages.append((message, self.announces(i)))

    def fire(self, i, now):
        at, ev = self.timer(i)
        self.compared.append(at)
        t = self.wf(i)['states'][i.state]
        if t['rem'] is not None and ev == t['rem'][2]:
            _, dl = self.deadline(i)
            self.compared.append(dl)
            i.step += 1
            if now >= dl:
                i.history.append(('reminder_skipped', i.state, i.state))
            else:
                i.history.append((ev, i.state, i.state))
                i.messages.append((t['rem'][3], self.announces(i)))
        else:
            self.move(i, ev, t['to'], now, at, t['message'])

    def tick(self, now):
        while True:
            due = []
            for i in self.insts.values():
                at, _ = self.timer(i)
                if at is not None:
                    self.compared.append(at)
                    if at <= now:
                        due.append((at, i.id))
            if not due:
                return
            for _, iid in sorted(due):
                self.fire(self.insts[iid], now)

    def start(self, subject, workflow, key, policy, now):
        """None: a new instance (the caller adds it); else the live id."""
        return self.live.get((subject, workflow, key))

    def begin(self, iid, subject, workflow, key, policy, now):
        i = Inst(iid, subject, workflow, key, policy, now)
        wf = WORKFLOWS[workflow]
        edge = wf['events'][wf['start']][0]
        i.history.append((wf['start'], None, edge[2]))
        i.state = edge[2]
        if wf['states'][i.state]['anchor'] == 'last_seen':
            i.last_seen = now
        if edge[3]:
            i.messages.append((edge[3], self.announces(i)))
        self.insts[iid] = i
        self.live[(subject, workflow, key)] = iid

    def signal(self, subject, workflow, key, event, now):
        """The signal on a copy: the model changes only when it is not
        refused (a refusal rolls the call back, fired timers included)."""
        trial = copy.deepcopy(self)
        state = trial.apply_signal(subject, workflow, key, event, now)
        self.__dict__.update(trial.__dict__)
        return state

    def apply_signal(self, subject, workflow, key, event, now):
        iid = self.live.get((subject, workflow, key))
        if iid is None:
            raise Refused('42704')
        i = self.insts[iid]
        # The instance's due timers first, oldest first, as a tick fires them.
        while True:
            at, _ = self.timer(i)
            if at is None:
                break
            self.compared.append(at)
            if at > now:
                break
            self.fire(i, now)
            if i.state == 'erased':
                raise Refused('42704')
        for froms, kind, to, message in WORKFLOWS[workflow]['events'][event]:
            if i.state not in froms:
                continue
            if kind == 'to':
                self.move(i, event, to, now, now, message)
            elif kind == 'refuse':
                raise Refused('55000')
            elif kind == 'touch':
                gran = add(i.last_seen, POLICIES[i.policy][2])
                self.compared.append(gran)
                if now >= gran:
                    i.last_seen = now
            return i.state
        raise Refused('55000')

    def views(self, now):
        viol, over = set(), set()
        for i in self.insts.values():
            _, dl = self.deadline(i)
            at, _ = self.timer(i)
            if dl is not None and dl < now - 60:
                viol.add(i.id)
            if at is not None and at <= now:
                over.add(i.id)
        return viol, over

    def critical(self, now):
        out = []
        for i in self.insts.values():
            at, _ = self.timer(i)
            _, dl = self.deadline(i)
            for t in (at, dl):
                if t is not None:
                    out.extend((t, t + 60))
            if i.state == 'paying':
                out.append(add(i.last_seen, POLICIES[i.policy][2]))
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

    db.q("SELECT lifecycle_define_workflow('mtrial', %s::jsonb)", json.dumps(TRIAL_JSON))
    for name, (wf, p, gran) in POLICIES.items():
        if name in ('dsar', 'mtrial'):
            continue        # the workflows' own policies, at their defaults
        d = {'workflow': wf, 'touch_granularity': iv(gran), 'outbox_retention': '20 years'}
        for k, v in p.items():
            d[k] = [iv(x) for x in v] if isinstance(v, list) else iv(v)
        db.q("SELECT lifecycle_define_policy(%s, %s::jsonb)", name, json.dumps(d))
    # Messages stay for the whole run (outbox pruning is not modelled).
    for name in ('dsar', 'mtrial'):
        db.q("SELECT lifecycle_define_policy(%s, %s::jsonb)", name,
             json.dumps({'workflow': name, 'outbox_retention': '20 years'}))
    t = (int(db.now() // HOUR) + 2) * HOUR + 17 * 60
    db.set_clock(t)
    subjects = ['w%d' % n for n in range(6)]
    counts = dict(calls=0, refused=0, ticks=0, outages=0)

    def fail(step, what, got, want):
        print('MISMATCH seed %d step %d: %s\n  db:    %r\n  model: %r' % (seed, step, what, got, want))
        sys.exit(1)

    for step in range(1, a.steps + 1):
        kind = rnd.random()
        if kind < 0.55:
            for _ in range(rnd.randint(1, 3)):
                subj = rnd.choice(subjects)
                wf = rnd.choice(list(WORKFLOWS))
                key = rnd.choice(KEYS[wf])
                if m.live and rnd.random() < 0.6:
                    subj, wf, key = rnd.choice(sorted(m.live))
                events = list(WORKFLOWS[wf]['events'])
                op = rnd.choice(events + ['start'])
                i = m.insts.get(m.live.get((subj, wf, key)))
                if i is not None and rnd.random() < 0.7:
                    # Mostly events the instance's state allows.
                    op = rnd.choice([e for e, edges in WORKFLOWS[wf]['events'].items()
                                     if any(i.state in f for f, _, _, _ in edges)] or [op])
                counts['calls'] += 1
                counts['op ' + op] = counts.get('op ' + op, 0) + 1
                if op == 'start' or op == WORKFLOWS[wf]['start']:
                    pol = rnd.choice([n for n, p in POLICIES.items() if p[0] == wf])
                    live = m.start(subj, wf, key, pol, t)
                    r = db.call("SELECT lifecycle_start(%s, %s, %s, key => %s, policy => %s,"
                                " email => %s)", wf, subj, TENANT, key, pol,
                                subj + '@example.com')[0][0]
                    if live is None:
                        if r in m.insts:
                            fail(step, 'start of %s/%s/%s: a new id' % (subj, wf, key), r, 'new')
                        m.begin(r, subj, wf, key, pol, t)
                    elif r != live:
                        fail(step, 'start of %s/%s/%s: the live id' % (subj, wf, key), r, live)
                    continue
                try:
                    want = m.signal(subj, wf, key, op, t)
                    wstate = None
                except Refused as e:
                    want, wstate = None, e.sqlstate
                try:
                    got = db.call("SELECT lifecycle_signal(%s, %s, %s, %s, %s)",
                                  wf, subj, op, TENANT, key)[0][0]
                    gstate = None
                except Refused as e:
                    got, gstate = None, e.sqlstate
                counts['refused'] += gstate is not None
                if (got, gstate) != (want, wstate):
                    fail(step, 'signal %s of %s/%s/%s' % (op, subj, wf, key),
                         (got, gstate), (want, wstate))
        else:
            hours = rnd.choice([1, 2, 3, 5, 9, 14, 20, 30, 50, 100, 200, 400, 800])
            target = t + hours * HOUR
            ticked = kind < 0.85
            for _ in range(100):
                trial = copy.deepcopy(m)
                trial.compared = []
                # Without a tick too: the times a catch-up would reach,
                # which a signal's own timers may (no ties with them).
                probe = trial if ticked else copy.deepcopy(trial)
                probe.tick(target)
                crit = probe.compared + trial.critical(target)
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
        compare(db, m, t, step, fail, subjects)
    print('ok: %(calls)d calls (%(refused)d refused), %(ticks)d ticks, '
          '%(outages)d clock moves without tick' % counts,
          '%d instances' % len(m.insts),
          'states seen: %s;' % ' '.join(sorted({h[2] for i in m.insts.values() for h in i.history})),
          'events: %s' % ' '.join('%s=%d' % (e, n) for e, n in sorted(
              collections.Counter(h[0] for i in m.insts.values() for h in i.history).items())))


def compare(db, m, now, step, fail, subjects):
    rows = db.q("""SELECT id, state::text, extract(epoch FROM next_at)::float8, next_event,
                          deadline_event, extract(epoch FROM deadline_at)::float8,
                          workflow, key, subject
                     FROM lifecycle.users WHERE tenant = %s""", TENANT)
    got = {r[0]: r for r in rows}
    if set(got) != set(m.insts):
        fail(step, 'instances', sorted(got), sorted(m.insts))
    hist = {}
    for iid, ev, fr, to in db.q("""SELECT h.user_id, h.event, h.from_state::text, h.to_state::text
                                     FROM lifecycle.history h JOIN lifecycle.users u ON u.id = h.user_id
                                    WHERE u.tenant = %s ORDER BY h.at, h.id""", TENANT):
        hist.setdefault(iid, []).append((ev, fr, to))
    msgs = {}
    for iid, msg, at, erased in db.q("""SELECT o.user_id, o.message,
                                        extract(epoch FROM (o.payload ->> 'archive_at')::timestamptz)::float8,
                                        u.state = 'erased'
                                   FROM lifecycle.outbox o JOIN lifecycle.users u ON u.id = o.user_id
                                  WHERE u.tenant = %s ORDER BY o.id""", TENANT):
        msgs.setdefault(iid, []).append((msg, ts(at), erased))
    close = lambda a, b: (a is None and b is None) or (a is not None and b is not None and abs(a - b) <= TOL)
    for iid, i in m.insts.items():
        r = got[iid]
        at, ev = m.timer(i)
        dev, dl = m.deadline(i)
        what = '%d (%s/%s/%s, %s)' % (iid, i.subject, i.workflow, i.key, i.state)
        if (r[6], r[7]) != (i.workflow, i.key):
            fail(step, 'workflow and key of ' + what, (r[6], r[7]), (i.workflow, i.key))
        if r[1] != i.state:
            fail(step, 'state of ' + what, r[1], i.state)
        if r[3] != ev or not close(ts(r[2]), at):
            fail(step, 'next timer of ' + what, (r[3], r[2]), (ev, at))
        if r[4] != dev or not close(ts(r[5]), dl):
            fail(step, 'deadline of ' + what, (r[4], r[5]), (dev, dl))
        if (r[8] is None) != (i.state == 'erased'):
            fail(step, 'subject kept on ' + what, r[8], i.state)
        if hist.get(iid, []) != i.history:
            fail(step, 'history of ' + what, hist.get(iid), i.history)
        gm = msgs.get(iid, [])
        if [g[0] for g in gm] != [w[0] for w in i.messages]:
            fail(step, 'messages of ' + what, gm, i.messages)
        for g, w in zip(gm, i.messages):
            # An erased instance's payloads are scrubbed.
            if not g[2] and not close(g[1], w[1]):
                fail(step, 'deadline announced by %s of %s' % (w[0], what), g[1], w[1])
    for subj in subjects:
        want = sorted((m.insts[iid].workflow, m.insts[iid].key, m.insts[iid].state)
                      for (s, _, _), iid in m.live.items() if s == subj)
        try:
            gotl = sorted(db.call("SELECT workflow, key, state FROM lifecycle_instances(%s, %s)",
                                  subj, TENANT))
        except Refused as e:
            gotl = e.sqlstate
        if not want:
            want = '42704'
        if gotl != want:
            fail(step, 'lifecycle_instances(%s)' % subj, gotl, want)
    viol, over = m.views(now)
    gv = {r[0] for r in db.q("SELECT id FROM lifecycle.violations WHERE tenant = %s", TENANT)}
    if gv != viol:
        fail(step, 'lifecycle.violations', sorted(gv), sorted(viol))
    go = {r[0] for r in db.q("SELECT id FROM lifecycle.overdue WHERE tenant = %s", TENANT)}
    if go != over:
        fail(step, 'lifecycle.overdue', sorted(go), sorted(over))


def ts(t):
    return None if t is None else float(t)


if __name__ == '__main__':
    main()
