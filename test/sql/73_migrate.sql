-- lifecycle_migrate(): every running user of a policy on an older version
-- moves to the new one, set-based, timers re-armed from its anchors.
\set SHOW_CONTEXT never
SET timezone = 'UTC';
CREATE ROLE cmp_mg_admin LOGIN IN ROLE lifecycle_admin;
CREATE ROLE cmp_mg_limited LOGIN IN ROLE lifecycle_admin;
CREATE ROLE cmp_mg_app LOGIN IN ROLE lifecycle_app;
SELECT lifecycle_grant_tenant('cmp_mg_limited', 't73');

SELECT lifecycle_define_policy('p73', '{"dormant_after": "90 days",
	"archive_after": "30 days", "archive_reminders": ["7 days"],
	"erase_after": "365 days"}');
-- One user in each running state, one held, one erased.
SELECT lifecycle_invite(s, s || '@example.com', 't73', 'p73') > 0 AS invited
  FROM unnest(ARRAY['act', 'dor', 'com', 'arc', 'held']) s;
SELECT lifecycle_register(s, 't73')
  FROM unnest(ARRAY['act', 'dor', 'com', 'arc', 'held']) s;
SELECT lifecycle_complete('com', 't73'), lifecycle_complete('dor', 't73'),
	   lifecycle_archive('arc', 't73');
SELECT lifecycle_touch('dor', 't73');	-- back to active ...
SELECT rt.travel('91 days') IS NOT NULL AS travelled;
SELECT lifecycle_tick() > 0 AS ticked;	-- ... and dormant by timer
SELECT lifecycle_touch('act', 't73');	-- active again, seen now
SELECT lifecycle_invite(s, s || '@example.com', 't73', 'p73') > 0 AS invited
  FROM unnest(ARRAY['inv', 'gone']) s;
SELECT lifecycle_hold('held', 't73', 'case 73');
SELECT lifecycle_erase('gone', 't73') > 0 AS erased;
SELECT subject, state, next_event FROM lifecycle.users
 WHERE tenant = 't73' ORDER BY id;
-- 40 days later, no tick in between: the active user's dormancy is not
-- due under version 1 (90 days), but is under version 2 (30 days).
SELECT rt.travel('40 days') IS NOT NULL AS travelled;

-- A shortened version 2.
SELECT lifecycle_define_policy('p73', '{"dormant_after": "30 days",
	"archive_after": "10 days", "archive_reminders": ["2 days"],
	"erase_after": "100 days", "invite_expires_after": "20 days"}');
CREATE TABLE rt.before73 AS SELECT * FROM lifecycle.users WHERE tenant = 't73';
SET ROLE cmp_mg_admin;
SELECT lifecycle_migrate('p73') AS moved;
RESET ROLE;
-- Timers and deadlines come from the anchors with the new intervals
-- (last_seen for dormancy, entering the state for notices, when entering
-- it was due for retention); the erased user stays as it was.
SELECT u.subject, u.state, u.policy_version, u.next_event,
	   CASE WHEN u.next_event = 'dormant' THEN u.next_at - u.last_seen
			WHEN u.state IN ('archived', 'expired') THEN u.next_at - u.state_due_at
			ELSE u.next_at - u.state_since END AS after_anchor,
	   u.deadline_event,
	   CASE WHEN u.deadline_event = 'dormant' THEN u.deadline_at - u.last_seen
			WHEN u.state IN ('archived', 'expired') THEN u.deadline_at - u.state_due_at
			ELSE u.deadline_at - u.state_since END AS deadline_after,
	   b.next_at IS DISTINCT FROM u.next_at AS rearmed
  FROM lifecycle.users u JOIN rt.before73 b ON b.id = u.id ORDER BY u.id;
SELECT u.subject, h.event, h.from_state, h.to_state, h.actor, h.detail
  FROM lifecycle.history h JOIN lifecycle.users u ON u.id = h.user_id
 WHERE u.tenant = 't73' AND h.event = 'migrate' ORDER BY u.subject;
-- The active user's dormancy under the new version is past: it fires at
-- the next tick, notice first (the full grace after it).
SELECT lifecycle_tick() > 0 AS ticked;
SELECT subject, state FROM lifecycle.users WHERE tenant = 't73' ORDER BY id;
SELECT message, (payload ->> 'archive_at')::timestamptz - u.state_since AS grace
  FROM lifecycle.outbox o JOIN lifecycle.users u ON u.id = o.user_id
 WHERE o.user_id = rt.uid('act', 't73') ORDER BY o.id DESC LIMIT 1;
-- Nothing left to move; an explicit older version moves nobody back.
SELECT lifecycle_migrate('p73') AS moved_again;
SELECT lifecycle_migrate('p73', 1) AS moved_back;

-- Errors: bad arguments, unknown policy or version, limited admins.
SELECT lifecycle_migrate(NULL);
SELECT lifecycle_migrate('');
SELECT lifecycle_migrate('no such policy');
SELECT lifecycle_migrate('p73', 0);
SELECT lifecycle_migrate('p73', 3);
SET ROLE cmp_mg_limited;
SELECT lifecycle_migrate('p73');
RESET ROLE;
SET ROLE cmp_mg_app;
SELECT lifecycle_migrate('p73');
RESET ROLE;

SELECT lifecycle_release('held', 't73');
SELECT rt.cleanup('t73') AS cleaned;
