-- Retention deadlines (docs/COMPLIANCE.md): the situations of issue 14.
-- Lateness never extends how long personal data is kept and never
-- shortens a notice; lifecycle.violations lists every user past the
-- deadline of its state, whatever reminder is pending.
\set SHOW_CONTEXT never
SET timezone = 'UTC';

-- 1. A 60-day outage: invited users whose invitation expired 46 days ago
-- and whose erasure was due 16 days ago, while their next timer is still
-- the first invite reminder.  They are violations.
SELECT count(lifecycle_invite('o' || i, 'o' || i || '@example.com', 'cmp_dl')) AS invited
  FROM generate_series(1, 5) i;
SELECT lifecycle_travel('60 days') IS NOT NULL AS worker_down_60_days;
SELECT count(*) AS violations, min(deadline_event) AS deadline_event,
	   min(next_event) AS next_event, bool_and(overdue_by > interval '45 days') AS expired_46_days_ago
  FROM lifecycle.violations WHERE tenant = 'cmp_dl';
SELECT value = (SELECT count(*) FROM lifecycle.violations) AS metric_counts_the_view
  FROM lifecycle.metrics WHERE name = 'lifecycle_timers_violations';
SELECT violations FROM lifecycle.retention_report WHERE tenant = 'cmp_dl';
-- The catch-up: reminders that would announce an expiry already past are
-- skipped (no message), the expiry counts from its due time, so the
-- erasure due 16 days ago happens now: at day 60, not day 90.
SELECT lifecycle_tick() AS transitions;
SELECT count(*) AS violations FROM lifecycle.violations WHERE tenant = 'cmp_dl';
SELECT count(*) AS erased FROM lifecycle.erasures WHERE tenant = 'cmp_dl';
SELECT h.event, count(*) FROM lifecycle.history h JOIN lifecycle.users u ON u.id = h.user_id
 WHERE u.tenant = 'cmp_dl' GROUP BY h.event ORDER BY min(h.id);
SELECT o.message, count(*) FROM lifecycle.outbox o JOIN lifecycle.users u ON u.id = o.user_id
 WHERE u.tenant = 'cmp_dl' GROUP BY o.message ORDER BY 1;
-- Each erasure was due 44 days after the invitation (expiry + 30 days).
SELECT date_trunc('hour', h.due_at - i.at) AS erase_due_after_invite, count(*)
  FROM lifecycle.history h JOIN lifecycle.history i ON i.user_id = h.user_id AND i.event = 'invite'
  JOIN lifecycle.users u ON u.id = h.user_id
 WHERE u.tenant = 'cmp_dl' AND h.event = 'erase_due' GROUP BY 1;

-- 2. Completed and dormant users with a pending archive reminder, and an
-- active user whose dormancy is long overdue: all violations.
SELECT lifecycle_define_policy('cmp_dl', '{"dormant_after": "20 days",
	"archive_after": "10 days", "archive_reminders": ["3 days"],
	"erase_after": "20 days"}') AS version;
SELECT lifecycle_invite(s, s || '@example.com', 'cmp_dl2', 'cmp_dl') > 0 AS invited
  FROM unnest(ARRAY['act', 'com', 'dor']) s ORDER BY s;
SELECT lifecycle_register(s, 'cmp_dl2') FROM unnest(ARRAY['act', 'com', 'dor']) s ORDER BY s;
SELECT lifecycle_travel('21 days') IS NOT NULL AS travelled;
SELECT lifecycle_tick() AS transitions;	-- all three go dormant
SELECT lifecycle_touch('act', 'cmp_dl2');	-- act is active again
SELECT lifecycle_complete('com', 'cmp_dl2');
-- A notice-bearing transition counts the grace from when it fired.
SELECT subject, state, deadline_event, deadline_at - state_since AS grace, next_event
  FROM lifecycle.users WHERE tenant = 'cmp_dl2' ORDER BY subject;
SELECT lifecycle_travel('25 days') IS NOT NULL AS worker_down_25_days;
SELECT subject, state, deadline_event, next_event
  FROM lifecycle.violations WHERE tenant = 'cmp_dl2' ORDER BY subject;

-- 3. A late archive does not delay the erasure: com's archive was due 10
-- days after its completion and fires 15 days late; its erasure is due
-- erase_after (20 days) after the archive was due, not after the tick.
SELECT lifecycle_tick() AS transitions;
SELECT u.subject, u.state, u.deadline_event,
	   date_trunc('hour', u.deadline_at - h.due_at) AS after_due,
	   date_trunc('hour', u.deadline_at - h.at) AS after_fired
  FROM lifecycle.users u
  JOIN LATERAL (SELECT * FROM lifecycle.history h WHERE h.user_id = u.id
				 ORDER BY h.id DESC LIMIT 1) h ON true
 WHERE u.tenant = 'cmp_dl2' AND u.subject IN ('com', 'dor') ORDER BY u.subject;
-- The reminders the catch-up reached after the archive were skipped.
SELECT u.subject, h.event, h.due_at < h.at AS late
  FROM lifecycle.history h JOIN lifecycle.users u ON u.id = h.user_id
 WHERE u.tenant = 'cmp_dl2' AND h.event IN ('archive_reminder', 'reminder_skipped')
 ORDER BY u.subject, h.id;
SELECT count(*) AS archive_reminders_sent FROM lifecycle.outbox o
  JOIN lifecycle.users u ON u.id = o.user_id
 WHERE u.tenant = 'cmp_dl2' AND o.message = 'archive_reminder';
-- Six days on (day 52): the erasure of com, due at day 51, happens now.
SELECT lifecycle_travel('6 days') IS NOT NULL AS travelled;
SELECT subject, deadline_event FROM lifecycle.violations WHERE tenant = 'cmp_dl2' ORDER BY subject;
SELECT lifecycle_tick() AS transitions;
SELECT state, count(*) FROM lifecycle.users WHERE tenant = 'cmp_dl2' GROUP BY state ORDER BY state;

-- 4. A reminder is never armed after its deadline, and one that would
-- fall inside its window for some start dates but not others is refused:
-- "1 mon" is 28 days in February.
SELECT lifecycle_define_policy('cmp_feb', '{"invite_reminders": ["29 days"],
	"invite_expires_after": "1 mon"}');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy('cmp_feb', '{"archive_reminders": ["29 days"],
	"archive_after": "1 mon"}');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy('cmp_feb', '{"invite_reminders": ["1 mon", "29 days"],
	"invite_expires_after": "2 mons"}');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy('cmp_feb', '{"invite_reminders": ["27 days"],
	"invite_expires_after": "1 mon", "archive_reminders": ["27 days"],
	"archive_after": "1 mon"}') AS version;

SELECT rt.cleanup('cmp_dl') + rt.cleanup('cmp_dl2') >= 0 AS cleaned;
