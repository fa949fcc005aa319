-- The built-in dsar workflow (GDPR Art. 12(3), 12(4); DESIGN "The built-in
-- dsar workflow") end to end, as an application files requests: one
-- subject, five requests (keys r1..r5) started with lifecycle_start(),
-- moved with lifecycle_signal() and by their timers under
-- lifecycle_travel() + lifecycle_tick(): every state, the deadlines the
-- application and the auditors see, the reminders, a request gone overdue
-- in time and one gone overdue during a worker outage (the lateness
-- principle), erasure keep_after_close after closing, and the refusals.
\set SHOW_CONTEXT never
SET timezone = 'UTC';

-- A time as an offset from a request's receipt (created_at, the anchor
-- "started") or from its closing (state_since), in the timers' own
-- calendar arithmetic: the output does not depend on the day it runs.
CREATE FUNCTION pg_temp.t(at timestamptz, received timestamptz, closed timestamptz)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE
		WHEN at IS NULL THEN NULL
		WHEN at = (received + interval '1 mon') - interval '7 days' THEN 'receipt + 1 mon - 7 days'
		WHEN at = (received + interval '1 mon') - interval '1 day' THEN 'receipt + 1 mon - 1 day'
		WHEN at = received + interval '1 mon' THEN 'receipt + 1 mon'
		WHEN at = (received + interval '1 mon' + interval '2 mons') - interval '7 days' THEN 'receipt + 3 mons - 7 days'
		WHEN at = (received + interval '1 mon' + interval '2 mons') - interval '1 day' THEN 'receipt + 3 mons - 1 day'
		WHEN at = received + interval '1 mon' + interval '2 mons' THEN 'receipt + 3 mons'
		WHEN at = received + interval '1 mon' + interval '2 years' THEN 'receipt + 1 mon + 2 years'
		WHEN at = received + interval '1 mon' + interval '2 mons' + interval '2 years' THEN 'receipt + 3 mons + 2 years'
		WHEN at = closed + interval '2 years' THEN 'closed + 2 years'
		ELSE 'unexpected'
	END
$$;

-- The subject's requests as lifecycle_instances() shows them to the
-- application, with the instance's own data (the request's kind).
CREATE FUNCTION pg_temp.requests()
RETURNS TABLE (key text, kind text, state text, next_event text, next_at text,
			   deadline_event text, deadline_at text, held boolean)
LANGUAGE sql AS $$
	SELECT i.key, u.data ->> 'kind', i.state, i.next_event,
		   pg_temp.t(i.next_at, u.created_at, i.since), i.deadline_event,
		   pg_temp.t(i.deadline_at, u.created_at, i.since), i.held
	  FROM lifecycle_instances('dana', 't91') i
	  JOIN lifecycle.users u ON u.id = i.id
	 WHERE i.workflow = 'dsar'
	 ORDER BY i.key
$$;

-- A request's history (without times; timer: due_at is set) and messages
-- (each payload names its workflow and key; deadline: the deadline it
-- announces, archive_at) written since a time counted from the receipt
-- (older ones may have been pruned: outbox_retention).
CREATE FUNCTION pg_temp.hist(p_key text)
RETURNS TABLE (event text, from_state text, to_state text, timer boolean, late boolean)
LANGUAGE sql AS $$
	SELECT h.event, h.from_state, h.to_state, h.due_at IS NOT NULL,
		   h.at - h.due_at > interval '1 day'
	  FROM lifecycle.history h JOIN lifecycle.users u ON u.id = h.user_id
	 WHERE u.tenant = 't91' AND u.workflow = 'dsar' AND u.key = p_key
	 ORDER BY h.at, h.id
$$;
CREATE FUNCTION pg_temp.msgs(since_receipt interval)
RETURNS TABLE (key text, message text, status text, payload_key text, state text,
			   email text, deadline text)
LANGUAGE sql AS $$
	SELECT u.key, o.message, o.status,
		   (o.payload ->> 'workflow') || '/' || (o.payload ->> 'key'),
		   o.payload ->> 'state', o.payload ->> 'email',
		   pg_temp.t((o.payload ->> 'archive_at')::timestamptz, u.created_at, NULL)
	  FROM lifecycle.outbox o JOIN lifecycle.users u ON u.id = o.user_id
	 WHERE u.tenant = 't91' AND u.workflow = 'dsar'
	   AND o.created_at >= (SELECT min(created_at) FROM lifecycle.users
							 WHERE tenant = 't91') + since_receipt
	 ORDER BY u.key, o.id
$$;

-- Move the clock to a time counted from the requests' receipt (by a whole
-- number of days and seconds: the clock's offset may hold months, and
-- adding months to it is not adding them to the clock's time).
CREATE FUNCTION pg_temp.go(since_receipt interval) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
	receipt timestamptz := (SELECT min(created_at) FROM lifecycle.users WHERE tenant = 't91');
BEGIN
	RETURN lifecycle_travel((receipt + since_receipt) - lifecycle_now()) IS NOT NULL;
END
$$;

-- lifecycle_tick(), counting the transitions of this test's requests only
-- (other tests' users may fall due as the clock moves).
CREATE FUNCTION pg_temp.tick() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	before bigint := (SELECT count(*) FROM lifecycle.history h
					   JOIN lifecycle.users u ON u.id = h.user_id
					  WHERE u.tenant = 't91' OR h.user_id IN
						(SELECT user_id FROM lifecycle.erasures WHERE tenant = 't91'));
BEGIN
	PERFORM lifecycle_tick();
	RETURN (SELECT count(*) FROM lifecycle.history h
			  JOIN lifecycle.users u ON u.id = h.user_id
			 WHERE u.tenant = 't91' OR h.user_id IN
				(SELECT user_id FROM lifecycle.erasures WHERE tenant = 't91')) - before;
END
$$;

-- The built-in workflow has its same-named policy at the workflow's
-- defaults, and the retention bound of every state (days: 1 mon counts
-- 31, 3 mons 92, 2 years 731).
SELECT name, version, workflow, definition - 'hooks' - 'channel' AS definition
  FROM lifecycle.policies WHERE name = 'dsar';
SELECT state, bound, path FROM lifecycle.retention_bounds
 WHERE policy = 'dsar' ORDER BY bound DESC, state;
-- Its graph as DBAs read it: extend only from received, answer and refuse
-- from every open state (overdue included), the timers to overdue and
-- from every closed state to erased.
SELECT from_state, event, kind, to_state, effect, message
  FROM lifecycle.transitions('dsar')
 ORDER BY from_state, kind, event, to_state;

-- Receipt: five requests of one subject, each its own instance (key),
-- each with its kind in data; the subject's e-mail shared by all.
BEGIN;
SELECT lifecycle_start('dsar', 'dana', 't91', key => 'r1', email => 'dana@example.com',
					   attrs => '{"name": "Dana"}', data => '{"kind": "access"}') > 0 AS r1;
SELECT lifecycle_start('dsar', 'dana', 't91', key => 'r2', data => '{"kind": "erasure"}') > 0 AS r2;
SELECT lifecycle_start('dsar', 'dana', 't91', key => 'r3', data => '{"kind": "objection"}') > 0 AS r3;
SELECT lifecycle_start('dsar', 'dana', 't91', key => 'r4', data => '{"kind": "rectification"}') > 0 AS r4;
SELECT lifecycle_start('dsar', 'dana', 't91', key => 'r5', data => '{"kind": "portability"}') > 0 AS r5;
COMMIT;
-- Filing the same request again changes nothing.
SELECT lifecycle_start('dsar', 'dana', 't91', key => 'r1', data => '{"kind": "other"}')
	   = (SELECT id FROM lifecycle.users WHERE tenant = 't91' AND key = 'r1') AS same_id;
SELECT * FROM pg_temp.requests();
SELECT count(DISTINCT email) AS emails, min(email) AS email, min(policy) AS policy
  FROM lifecycle.users WHERE tenant = 't91';

-- r4 is refused at once, r2 and r5 extended (told to the subject with the
-- new deadline); a request is extended once only.
SELECT lifecycle_signal('dsar', 'dana', 'refuse', 't91', 'r4') AS r4;
SELECT lifecycle_signal('dsar', 'dana', 'extend', 't91', 'r2') AS r2;
SELECT lifecycle_signal('dsar', 'dana', 'extend', 't91', 'r5') AS r5;
SELECT lifecycle_signal('dsar', 'dana', 'extend', 't91', 'r2');
\echo :LAST_ERROR_SQLSTATE
-- Refusing it again is idempotent; answering a refused request is not
-- allowed (the HINT lists what is).
SELECT lifecycle_signal('dsar', 'dana', 'refuse', 't91', 'r4') AS r4_again;
SELECT lifecycle_signal('dsar', 'dana', 'answer', 't91', 'r4');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_signal('dsar', 'dana', 'extend', 't91', 'r4');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM pg_temp.requests();
SELECT * FROM pg_temp.msgs('0');

-- Seven days before the one-month deadline: the first reminder of each
-- request still in received.
SELECT pg_temp.go('1 mon -7 days 1 hour') AS travelled;
SELECT pg_temp.tick() AS transitions;
SELECT * FROM pg_temp.requests();
-- r1 is answered in time.
SELECT lifecycle_signal('dsar', 'dana', 'answer', 't91', 'r1') AS r1;
SELECT lifecycle_signal('dsar', 'dana', 'answer', 't91', 'r1') AS r1_again;
-- One day before: the second reminder.
SELECT pg_temp.go('1 mon -1 day 1 hour') AS travelled;
SELECT pg_temp.tick() AS transitions;
SELECT count(*) AS violations FROM lifecycle.violations WHERE tenant = 't91';
SELECT * FROM pg_temp.requests();

-- The deadline passes with r3 unanswered: until the tick, violations and
-- overdue list it (its deadline respond, next event its timer); then it
-- is overdue, the subject told, and it closes keep_after_close after
-- its deadline.
SELECT pg_temp.go('1 mon 1 hour') AS travelled;
SELECT v.state, v.deadline_event, v.overdue_by > interval '1 minute' AS late, v.next_event,
	   v.policy, u.key
  FROM lifecycle.violations v JOIN lifecycle.users u USING (id) WHERE v.tenant = 't91';
SELECT o.state, o.next_event, u.key
  FROM lifecycle.overdue o JOIN lifecycle.users u USING (id) WHERE o.tenant = 't91';
SELECT pg_temp.tick() AS transitions;
SELECT count(*) AS violations FROM lifecycle.violations WHERE tenant = 't91';
SELECT * FROM pg_temp.requests();
SELECT * FROM pg_temp.msgs('1 mon -8 days') WHERE key = 'r3';
-- An overdue request can be answered (or refused), not extended.
SELECT lifecycle_signal('dsar', 'dana', 'extend', 't91', 'r3');
\echo :LAST_ERROR_SQLSTATE
SELECT state FROM lifecycle.users WHERE tenant = 't91' AND key = 'r3';

-- Seven days before the extended deadline: the extended requests' first
-- reminder; r2 is answered in time.
SELECT pg_temp.go('3 mons -7 days 1 hour') AS travelled;
SELECT pg_temp.tick() AS transitions;
SELECT * FROM pg_temp.requests();
SELECT lifecycle_signal('dsar', 'dana', 'answer', 't91', 'r2') AS r2;

-- A worker outage across r5's extended deadline: nothing ticks for eight
-- days.  violations lists r5 while it is late; the catch-up skips the
-- reminder that fell due after its own deadline (reminder_skipped, no
-- message), moves it to overdue with the time it was due, and counts its
-- closing from that due time (lateness never extends retention).
SELECT pg_temp.go('3 mons 1 day 1 hour') AS travelled;
SELECT v.state, v.deadline_event, v.overdue_by > interval '1 day' AS late_by_a_day, u.key
  FROM lifecycle.violations v JOIN lifecycle.users u USING (id) WHERE v.tenant = 't91';
SELECT pg_temp.tick() AS transitions;
SELECT count(*) AS violations FROM lifecycle.violations WHERE tenant = 't91';
SELECT * FROM pg_temp.hist('r5');
SELECT * FROM pg_temp.requests();
-- The late request is answered after all.
SELECT lifecycle_signal('dsar', 'dana', 'extend', 't91', 'r5');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_signal('dsar', 'dana', 'answer', 't91', 'r5') AS r5;
SELECT * FROM pg_temp.requests();
SELECT * FROM pg_temp.msgs('3 mons -8 days');
SELECT key, ARRAY(SELECT event FROM pg_temp.hist(k.key)) AS events
  FROM (VALUES ('r1'), ('r2'), ('r3'), ('r4')) k(key);

-- Auditors see the same deadlines in lifecycle.instances, without personal
-- data (its columns name no e-mail, attrs or data).
SELECT workflow, key, state, deadline_event, held
  FROM lifecycle.instances WHERE tenant = 't91' ORDER BY key;

-- Closed requests are kept as accountability evidence for
-- keep_after_close (2 years), then erased by their own timer: r4 (refused
-- at receipt) first, then r1 and r3, then r2 and r5.  Each erasure
-- scrubs the request's data and leaves one evidence row; the subject's
-- shared personal data goes with the last request.
SELECT pg_temp.go('2 years 1 day') AS travelled;
SELECT pg_temp.tick() AS transitions;
SELECT * FROM pg_temp.requests();
SELECT pg_temp.go('2 years 1 mon 1 day') AS travelled;
SELECT pg_temp.tick() AS transitions;
SELECT * FROM pg_temp.requests();
SELECT pg_temp.go('2 years 4 mons') AS travelled;
SELECT pg_temp.tick() AS transitions;
SELECT key, state, subject IS NULL AS subject_gone, email IS NULL AS email_gone,
	   attrs IS NULL OR attrs = '{}' AS attrs_gone, data = '{}' AS data_gone,
	   next_at IS NULL AS no_timer
  FROM lifecycle.users WHERE tenant = 't91' ORDER BY key;
SELECT u.key, e.state_before, e.reason, e.policy
  FROM lifecycle.erasures e JOIN lifecycle.users u ON u.id = e.user_id
 WHERE e.tenant = 't91' ORDER BY u.key;
SELECT count(*) AS payloads_with_email FROM lifecycle.outbox o
  JOIN lifecycle.users u ON u.id = o.user_id
 WHERE u.tenant = 't91' AND o.payload ? 'email';
SELECT * FROM lifecycle_instances('dana', 't91');
\echo :LAST_ERROR_SQLSTATE
-- A new request of the same subject and key is a new instance.
SELECT lifecycle_start('dsar', 'dana', 't91', key => 'r1', email => 'dana@example.com')
	   NOT IN (SELECT id FROM lifecycle.users WHERE tenant = 't91' AND key = 'r1' AND state = 'erased') AS new_id;
SELECT * FROM pg_temp.requests();
