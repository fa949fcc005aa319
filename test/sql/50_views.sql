-- Compliance views after a scenario: retention_report, violations,
-- overdue, holds, erasures.  Tenant cmp_v, policy cmp_views (no reminders,
-- so the next timer is the one that keeps data: expire, archive, erase).
SELECT lifecycle_define_policy('cmp_views', '{
  "invite_reminders": [], "invite_expires_after": "2 days",
  "dormant_after": "10 days", "archive_after": "5 days",
  "archive_reminders": [], "erase_after": "10 days",
  "expired_erase_after": "3 days"}') > 0 AS defined;
SELECT lifecycle_invite('v1', 'v1@example.com', 'cmp_v', 'cmp_views') > 0 AS v1,
       lifecycle_invite('v2', 'v2@example.com', 'cmp_v', 'cmp_views') > 0 AS v2,
       lifecycle_invite('v3', 'v3@example.com', 'cmp_v', 'cmp_views') > 0 AS v3;
SELECT lifecycle_register('v1', 'cmp_v'), lifecycle_register('v2', 'cmp_v');
SELECT lifecycle_complete('v1', 'cmp_v'), lifecycle_complete('v2', 'cmp_v');
SELECT lifecycle_hold('v2', 'cmp_v', 'litigation 42');

-- Nothing is due yet: no violation, nothing overdue.
SELECT count(*) AS violations FROM lifecycle.violations WHERE tenant = 'cmp_v';
SELECT count(*) AS overdue FROM lifecycle.overdue WHERE tenant = 'cmp_v';
SELECT state, users, held, next_due > lifecycle_now() AS next_due_in_future,
       oldest_since <= lifecycle_now() AS oldest_in_past
  FROM lifecycle.retention_report WHERE tenant = 'cmp_v' ORDER BY state;
SELECT subject, state, reason, until, held_by = current_user AS held_by_me,
       held_since <= lifecycle_now() AS held_since_past
  FROM lifecycle.holds WHERE tenant = 'cmp_v';

-- Six days pass and nobody advances the timers: v1 is kept a day past its
-- archive date, v3 four days past its invitation's expiry; v2 is held and
-- is neither a violation nor overdue.
SELECT lifecycle_travel('6 days') IS NOT NULL AS travelled;
SELECT subject, state, due_event, date_trunc('hour', overdue_by) AS overdue_by,
       policy, policy_version = 1 AS v1_of_policy
  FROM lifecycle.violations WHERE tenant = 'cmp_v' ORDER BY subject;
SELECT subject, state, next_event, date_trunc('hour', overdue_by) AS overdue_by,
       retries, last_error
  FROM lifecycle.overdue WHERE tenant = 'cmp_v' ORDER BY subject;
SELECT state, users, held, next_due < lifecycle_now() AS next_due_passed
  FROM lifecycle.retention_report WHERE tenant = 'cmp_v' ORDER BY state;

-- One tick advances them: the violations vanish.
SELECT lifecycle_tick() >= 2 AS ticked;
SELECT count(*) AS violations FROM lifecycle.violations WHERE tenant = 'cmp_v';
SELECT count(*) AS overdue FROM lifecycle.overdue WHERE tenant = 'cmp_v';
SELECT subject, state FROM lifecycle.users WHERE tenant = 'cmp_v' ORDER BY subject;

-- A timer that is due by less than a minute is overdue but not yet a
-- violation.
SELECT lifecycle_travel('10 days') IS NOT NULL AS travelled;
SELECT subject, due_event FROM lifecycle.violations WHERE tenant = 'cmp_v' ORDER BY subject;
SELECT subject, next_event FROM lifecycle.overdue WHERE tenant = 'cmp_v' ORDER BY subject;
SELECT lifecycle_travel('30 seconds') IS NOT NULL AS travelled;
SELECT subject, due_event, date_trunc('hour', overdue_by) AS overdue_by
  FROM lifecycle.violations WHERE tenant = 'cmp_v' ORDER BY subject;

-- Erasing clears them and leaves evidence (when, why, by whom, not who).
SELECT lifecycle_tick() >= 2 AS ticked;
SELECT count(*) AS violations FROM lifecycle.violations WHERE tenant = 'cmp_v';
SELECT e.state_before, e.reason, e.requested_by, e.policy,
       e.erased_at BETWEEN lifecycle_now() - interval '1 minute' AND lifecycle_now() AS erased_just_now
  FROM lifecycle.erasures e WHERE e.tenant = 'cmp_v' ORDER BY e.state_before;
SELECT state, users, held FROM lifecycle.retention_report
 WHERE tenant = 'cmp_v' ORDER BY state;

-- The held subject, months past its archive date, is still no violation;
-- released, its overdue archive shows at once, and one tick clears it.
SELECT count(*) AS held_violations FROM lifecycle.violations
 WHERE tenant = 'cmp_v' AND subject = 'v2';
SELECT lifecycle_release('v2', 'cmp_v');
SELECT count(*) AS holds FROM lifecycle.holds WHERE tenant = 'cmp_v';
SELECT subject, due_event, overdue_by > interval '10 days' AS long_overdue
  FROM lifecycle.violations WHERE tenant = 'cmp_v';
SELECT lifecycle_tick() >= 1 AS ticked;
SELECT count(*) AS violations FROM lifecycle.violations WHERE tenant = 'cmp_v';
SELECT subject, state FROM lifecycle.users WHERE tenant = 'cmp_v' AND subject IS NOT NULL;

-- A hold with an end lapses by itself; the subject is no violation while
-- held, and its timers run again afterwards.
SELECT lifecycle_hold('v2', 'cmp_v', 'audit', lifecycle_now() + interval '1 day');
SELECT subject, reason, until > lifecycle_now() AS until_in_future
  FROM lifecycle.holds WHERE tenant = 'cmp_v';
SELECT lifecycle_travel('2 days') IS NOT NULL AS travelled;
SELECT count(*) AS violations FROM lifecycle.violations WHERE tenant = 'cmp_v';
SELECT lifecycle_tick() >= 1 AS ticked;
SELECT subject, state, next_event FROM lifecycle.users WHERE tenant = 'cmp_v' AND subject IS NOT NULL;
SELECT count(*) AS holds FROM lifecycle.holds WHERE tenant = 'cmp_v';
SELECT event, from_state, to_state,
       CASE WHEN actor = session_user THEN '(me)' ELSE actor END AS actor
  FROM lifecycle_history('v2', 'cmp_v') ORDER BY at, id;
SELECT count(*) AS violations FROM lifecycle.violations WHERE tenant = 'cmp_v';
