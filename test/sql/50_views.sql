-- Compliance views after a scenario: retention_report, violations,
-- overdue, holds, erasures.  Tenant cmp_v, policy cmp_views (no reminders).
-- violations lists the users whose retention deadline (users.deadline_at,
-- docs/COMPLIANCE.md) passed more than a minute ago with no hold in force.
SELECT lifecycle_define_policy('cmp_views', '{
  "invite_reminders": [], "invite_expires_after": "2 days",
  "dormant_after": "10 days", "archive_after": "5 days",
  "archive_reminders": [], "erase_after": "10 days",
  "expired_erase_after": "10 days"}') > 0 AS defined;
SELECT lifecycle_invite('v1', 'v1@example.com', 'cmp_v', 'cmp_views') > 0 AS v1,
       lifecycle_invite('v2', 'v2@example.com', 'cmp_v', 'cmp_views') > 0 AS v2,
       lifecycle_invite('v3', 'v3@example.com', 'cmp_v', 'cmp_views') > 0 AS v3;
SELECT lifecycle_register('v1', 'cmp_v'), lifecycle_register('v2', 'cmp_v');
SELECT lifecycle_complete('v1', 'cmp_v'), lifecycle_complete('v2', 'cmp_v');
SELECT lifecycle_hold('v2', 'cmp_v', 'litigation 42');

-- Every user carries the deadline of its state.
SELECT subject, state, deadline_event, deadline_at - state_since AS deadline_after
  FROM lifecycle.users WHERE tenant = 'cmp_v' ORDER BY subject;

-- Nothing is due yet: no violation, nothing overdue.
SELECT count(*) AS violations FROM lifecycle.violations WHERE tenant = 'cmp_v';
SELECT count(*) AS overdue FROM lifecycle.overdue WHERE tenant = 'cmp_v';
SELECT state, users, held, next_due > lifecycle_now() AS next_due_in_future,
       oldest_since <= lifecycle_now() AS oldest_in_past,
       next_deadline > lifecycle_now() AS next_deadline_in_future, violations
  FROM lifecycle.retention_report WHERE tenant = 'cmp_v' ORDER BY state;
SELECT subject, state, reason, until, held_by = current_user AS held_by_me,
       held_since <= lifecycle_now() AS held_since_past
  FROM lifecycle.holds WHERE tenant = 'cmp_v';

-- Six days pass and nobody advances the timers: v1 is kept a day past its
-- archive date, v3 four days past its invitation's expiry; v2 is held and
-- is neither a violation nor overdue.
SELECT lifecycle_travel('6 days') IS NOT NULL AS travelled;
SELECT subject, state, deadline_event, date_trunc('hour', overdue_by) AS overdue_by,
       next_event, next_at = deadline_at AS next_is_deadline,
       policy, policy_version = 1 AS v1_of_policy, last_error
  FROM lifecycle.violations WHERE tenant = 'cmp_v' ORDER BY subject;
SELECT subject, state, next_event, date_trunc('hour', overdue_by) AS overdue_by,
       retries, last_error
  FROM lifecycle.overdue WHERE tenant = 'cmp_v' ORDER BY subject;
SELECT state, users, held, next_due < lifecycle_now() AS next_due_passed,
       next_deadline < lifecycle_now() AS next_deadline_passed, violations
  FROM lifecycle.retention_report WHERE tenant = 'cmp_v' ORDER BY state;
SELECT value AS violations_metric FROM lifecycle.metrics
 WHERE name = 'lifecycle_timers_violations';

-- One tick advances them: the violations vanish.  The retention steps
-- were late, so the next deadlines count from when they were due: v1's
-- erasure 10 days after its archive was due (day 5), v3's 10 days after
-- its expiry was due (day 2).
SELECT lifecycle_tick() >= 2 AS ticked;
SELECT count(*) AS violations FROM lifecycle.violations WHERE tenant = 'cmp_v';
SELECT count(*) AS overdue FROM lifecycle.overdue WHERE tenant = 'cmp_v';
SELECT u.subject, u.state, u.deadline_event,
       date_trunc('hour', u.deadline_at - h.due_at) AS after_due,
       date_trunc('hour', u.deadline_at - h.at) AS after_fired
  FROM lifecycle.users u
  JOIN LATERAL (SELECT * FROM lifecycle.history h WHERE h.user_id = u.id
				 ORDER BY h.id DESC LIMIT 1) h ON true
 WHERE u.tenant = 'cmp_v' AND u.subject <> 'v2' ORDER BY u.subject;

-- A deadline passed by less than a minute is overdue but not yet a
-- violation; two minutes later it is one.
SELECT lifecycle_travel('6 days') IS NOT NULL AS travelled;
SELECT subject, deadline_event FROM lifecycle.violations WHERE tenant = 'cmp_v' ORDER BY subject;
SELECT subject, next_event FROM lifecycle.overdue WHERE tenant = 'cmp_v' ORDER BY subject;
SELECT lifecycle_travel('2 minutes') IS NOT NULL AS travelled;
SELECT subject, deadline_event, overdue_by > interval '1 minute' AS past_a_minute
  FROM lifecycle.violations WHERE tenant = 'cmp_v' ORDER BY subject;

-- Erasing clears it and leaves evidence (when, why, by whom, not who).
SELECT lifecycle_tick() >= 1 AS ticked;
SELECT count(*) AS violations FROM lifecycle.violations WHERE tenant = 'cmp_v';
SELECT e.state_before, e.reason, e.requested_by, e.policy,
       e.erased_at BETWEEN lifecycle_now() - interval '1 minute' AND lifecycle_now() AS erased_just_now
  FROM lifecycle.erasures e WHERE e.tenant = 'cmp_v' ORDER BY e.state_before;
SELECT state, users, held, next_deadline IS NULL AS no_deadline, violations
  FROM lifecycle.retention_report WHERE tenant = 'cmp_v' ORDER BY state;

-- The held subject, days past its archive date, is still no violation.
SELECT count(*) AS held_violations FROM lifecycle.violations
 WHERE tenant = 'cmp_v' AND subject = 'v2';

-- A hold with an end lapses by itself, and a hold whose until has passed
-- counts as lapsed everywhere at once, before the worker writes its
-- hold_lapse: v2 is a violation again, lifecycle.holds no longer lists
-- it, lifecycle_status() says not held, the metrics agree, and the
-- hold_lapse shows as overdue.
SELECT lifecycle_release('v2', 'cmp_v');
SELECT lifecycle_hold('v2', 'cmp_v', 'audit', lifecycle_now() + interval '1 day');
SELECT subject, reason, until > lifecycle_now() AS until_in_future
  FROM lifecycle.holds WHERE tenant = 'cmp_v';
SELECT held FROM lifecycle_status('v2', 'cmp_v');
SELECT count(*) AS violations FROM lifecycle.violations WHERE tenant = 'cmp_v';
SELECT lifecycle_travel('2 days') IS NOT NULL AS travelled;
SELECT u.held AS row_still_held FROM lifecycle.users u WHERE tenant = 'cmp_v' AND subject = 'v2';
SELECT subject, deadline_event, next_event FROM lifecycle.violations WHERE tenant = 'cmp_v';
SELECT count(*) AS holds FROM lifecycle.holds WHERE tenant = 'cmp_v';
SELECT held, deadline_event FROM lifecycle_status('v2', 'cmp_v');
SELECT subject, next_event FROM lifecycle.overdue WHERE tenant = 'cmp_v';
SELECT state, held, violations FROM lifecycle.retention_report
 WHERE tenant = 'cmp_v' AND state = 'completed';
SELECT labels ->> 'state' AS state, value AS held FROM lifecycle.metrics
 WHERE name = 'lifecycle_state_held' AND labels ->> 'tenant' = 'cmp_v' ORDER BY 1;
SELECT value AS violations_metric FROM lifecycle.metrics
 WHERE name = 'lifecycle_timers_violations';

-- The tick writes the lapse, then the overdue archive fires at once.
SELECT lifecycle_tick() >= 2 AS ticked;
SELECT subject, state, next_event, deadline_event FROM lifecycle.users
 WHERE tenant = 'cmp_v' AND subject IS NOT NULL;
SELECT event, from_state, to_state,
       CASE WHEN actor = session_user THEN '(me)' ELSE actor END AS actor
  FROM lifecycle_history('v2', 'cmp_v') ORDER BY at, id;
SELECT count(*) AS violations FROM lifecycle.violations WHERE tenant = 'cmp_v';

-- lifecycle.violations reads the partial indexes on deadline_at (users not
-- on hold) and hold_until (held users whose hold may have lapsed), and
-- lifecycle_status() the unique index on (tenant, subject).
SET enable_seqscan = off;
-- (Each range read by its index alone: an index scan or a bitmap scan is
-- the planner's choice on statistics; the test fixes it.)
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM lifecycle.violations;
RESET enable_bitmapscan;
EXPLAIN (COSTS OFF) SELECT u.id FROM lifecycle.users u
 WHERE u.tenant = 'cmp_v' AND u.subject = 'v2';
RESET enable_seqscan;
