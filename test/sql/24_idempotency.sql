-- Calls for the state a subject is already in change nothing: no history,
-- no message, not even a new row version (xmin unchanged).
\set SHOW_CONTEXT never
SET timezone = 'UTC';

-- (The invitation that expires is sent 76 days later, so that its
-- erasure, expired_erase_after after the expiry was due, is still ahead.)
SELECT lifecycle_invite('dor', 'dor@example.com', 't24') > 0 AS invited;
SELECT lifecycle_register('dor', 't24');
SELECT rt.travel('76 days');
SELECT lifecycle_invite('inv', 'inv@example.com', 't24') > 0 AS invited;
SELECT rt.travel('14 days 1 minute');
SELECT lifecycle_tick() AS transitions;  -- dor goes dormant, inv expires
SELECT lifecycle_invite(s, s || '@example.com', 't24') > 0 AS invited
  FROM unnest(ARRAY['inv', 'act', 'com']) s ORDER BY s;
SELECT lifecycle_register(s, 't24') FROM unnest(ARRAY['act', 'com']) s ORDER BY s;
SELECT lifecycle_complete('com', 't24');
SELECT subject, state FROM lifecycle.users WHERE tenant = 't24' ORDER BY subject;

CREATE TEMP TABLE snap AS
SELECT u.id, u.subject, u.xmin::text AS row_xmin, u.email, u.state, u.state_since,
	   u.last_seen, u.next_at,
	   (SELECT count(*) FROM lifecycle.history h WHERE h.user_id = u.id) AS history,
	   (SELECT count(*) FROM lifecycle.outbox o WHERE o.user_id = u.id) AS outbox
  FROM lifecycle.users u WHERE u.tenant = 't24';
CREATE TEMP VIEW changed AS
SELECT s.subject, u.xmin::text <> s.row_xmin AS new_version,
	   u.email IS DISTINCT FROM s.email AS email_changed,
	   u.state IS DISTINCT FROM s.state AS state_changed,
	   u.state_since IS DISTINCT FROM s.state_since AS since_changed,
	   u.last_seen IS DISTINCT FROM s.last_seen AS seen_changed,
	   u.next_at IS DISTINCT FROM s.next_at AS timer_changed,
	   (SELECT count(*) FROM lifecycle.history h WHERE h.user_id = u.id) - s.history AS new_history,
	   (SELECT count(*) FROM lifecycle.outbox o WHERE o.user_id = u.id) - s.outbox AS new_messages
  FROM snap s JOIN lifecycle.users u ON u.id = s.id;

-- invite of invited, active, dormant, completed: the existing id, even
-- with another address, policy or attrs.
SELECT s.subject, lifecycle_invite(s.subject, 'other@example.com', 't24', 't20-routed',
								   'eu', '{"x": 1}') = s.id AS same_id
  FROM snap s ORDER BY s.subject;
-- register of active, complete of completed, archive of archived is in
-- 22_admin, restore of active.
SELECT lifecycle_register('act', 't24');
SELECT lifecycle_complete('com', 't24');
SELECT lifecycle_restore('act', 't24');
-- touch within touch_granularity (1 hour) of the last touch or registration.
SELECT lifecycle_touch('act', 't24');
SELECT rt.travel('59 minutes');
SELECT lifecycle_touch('act', 't24');
SELECT lifecycle_touch('act', 't24');
SELECT * FROM changed ORDER BY subject;

-- Once the granularity has passed, a touch writes last_seen (a new row
-- version) but still no history row.
SELECT rt.travel('2 minutes');
SELECT lifecycle_touch('act', 't24');
SELECT * FROM changed WHERE subject = 'act';
SELECT last_seen AS seen FROM lifecycle.users WHERE tenant = 't24' AND subject = 'act' \gset
SELECT xmin AS act_xmin FROM lifecycle.users WHERE tenant = 't24' AND subject = 'act' \gset
SELECT lifecycle_touch('act', 't24') FROM generate_series(1, 5);
SELECT last_seen = :'seen' AS seen_unchanged, xmin::text = :'act_xmin' AS same_version
  FROM lifecycle.users WHERE tenant = 't24' AND subject = 'act';

-- A policy's own granularity.
SELECT lifecycle_define_policy('t24-daily', '{"touch_granularity": "1 day"}') AS version;
SELECT lifecycle_invite('day', 'day@example.com', 't24', 't24-daily') > 0 AS invited;
SELECT lifecycle_register('day', 't24');
SELECT last_seen AS seen FROM lifecycle.users WHERE tenant = 't24' AND subject = 'day' \gset
SELECT rt.travel('23 hours');
SELECT lifecycle_touch('day', 't24');
SELECT last_seen = :'seen' AS seen_unchanged FROM lifecycle.users
 WHERE tenant = 't24' AND subject = 'day';
SELECT rt.travel('2 hours');
SELECT lifecycle_touch('day', 't24');
SELECT last_seen > :'seen' AS seen_moved FROM lifecycle.users
 WHERE tenant = 't24' AND subject = 'day';

SELECT rt.cleanup('t24') AS erased;
SELECT count(*) AS pending_timers FROM lifecycle.users WHERE next_at IS NOT NULL;
