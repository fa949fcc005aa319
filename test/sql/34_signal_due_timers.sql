-- A signal first fires the instance's due timers (issue 18; DESIGN
-- "Decisions that complete the table", late timers: lateness never
-- extends how long personal data is kept; "The built-in dsar workflow":
-- extend works only from received, once a request is overdue it can be
-- answered, not extended).  While the worker is late, lifecycle_signal()
-- fires the due timers of the instance it is called on, in its own
-- transaction, exactly as the worker would (history rows with their due
-- time and the worker as actor, reminders skipped after their deadline,
-- messages, counts), then applies the event to the state they lead to:
-- extend is refused once the request is past its deadline, answer answers
-- the overdue request.  A refused signal changes nothing; a timer that
-- erases the instance makes the signal 42704 (nothing changed: the worker
-- erases it).  The user lifecycle's 0.2.0 functions keep 0.2.0's rule
-- (they act on the state as stored); lifecycle_signal('user', ...) follows
-- the new one.
\set SHOW_CONTEXT never
SET timezone = 'UTC';
-- The counts kept as they change (lifecycle.counts and the deltas not
-- folded yet) equal a full count of the tenant's rows, as
-- test/model/counts.py checks them (the second key of the events, their
-- workflow, is left out here).
CREATE FUNCTION pg_temp.counts_exact(t text) RETURNS boolean
LANGUAGE sql AS $$
WITH kept AS (
	SELECT c.family, c.tenant, c.key1,
		   CASE WHEN c.family = 'events' THEN '' ELSE c.key2 END AS key2,
		   sum(c.n)::bigint AS n, sum(c.held)::bigint AS held
	  FROM (SELECT k.family, k.tenant, k.key1, k.key2, k.n, k.held FROM lifecycle.counts k
			UNION ALL
			SELECT d.family, d.tenant, d.key1, d.key2, d.n, d.held FROM lifecycle.count_deltas d) c
	 WHERE c.tenant = t
	 GROUP BY 1, 2, 3, 4
	HAVING sum(c.n) <> 0 OR sum(c.held) <> 0
), counted AS (
	SELECT 'users'::text AS family, u.tenant, u.policy AS key1, u.state::text AS key2,
		   count(*)::bigint AS n, count(*) FILTER (WHERE u.held)::bigint AS held
	  FROM lifecycle.users u WHERE u.tenant = t GROUP BY 2, 3, 4
	UNION ALL
	SELECT 'events', u.tenant, h.event, '', count(*), 0
	  FROM lifecycle.history h JOIN lifecycle.users u ON u.id = h.user_id
	 WHERE u.tenant = t GROUP BY 2, 3
	UNION ALL
	SELECT 'messages', u.tenant, coalesce(o.channel, ''), o.status, count(*), 0
	  FROM lifecycle.outbox o JOIN lifecycle.users u ON u.id = o.user_id
	 WHERE u.tenant = t GROUP BY 2, 3, 4
	UNION ALL
	SELECT 'lateness', u.tenant,
		   CASE WHEN h.at - h.due_at <= interval '1 second' THEN '1'
				WHEN h.at - h.due_at <= interval '10 seconds' THEN '10'
				WHEN h.at - h.due_at <= interval '1 minute' THEN '60'
				WHEN h.at - h.due_at <= interval '5 minutes' THEN '300'
				WHEN h.at - h.due_at <= interval '1 hour' THEN '3600'
				WHEN h.at - h.due_at <= interval '1 day' THEN '86400'
				ELSE '+Inf' END, '', count(*),
		   sum((extract(epoch FROM h.at - h.due_at) * 1000000)::bigint)::bigint
	  FROM lifecycle.history h JOIN lifecycle.users u ON u.id = h.user_id
	 WHERE u.tenant = t AND h.due_at IS NOT NULL GROUP BY 2, 3
)
SELECT NOT EXISTS (SELECT * FROM kept EXCEPT SELECT * FROM counted)
   AND NOT EXISTS (SELECT * FROM counted EXCEPT SELECT * FROM kept)
$$;

-- A short dsar policy: ten days to answer, reminders three days and one
-- day before, records kept two days after closing.
SELECT lifecycle_define_policy('t34s_dsar', '{"workflow": "dsar", "respond_within": "10 days",
	"extend_by": "10 days", "reminders": ["3 days", "1 day"], "keep_after_close": "2 days"}') > 0 AS defined;

-- Events of an instance: event, states, due time after its receipt
-- (created_at), actor.
CREATE FUNCTION pg_temp.hist(k text) RETURNS TABLE (event text, from_state text,
	to_state text, due text, actor text)
LANGUAGE sql AS $$
	SELECT h.event, h.from_state::text, h.to_state::text,
		   (h.due_at - u.created_at)::text,
		   CASE WHEN h.actor = 'lifecycle worker' THEN 'worker' ELSE 'caller' END
	  FROM lifecycle.history h JOIN lifecycle.users u ON u.id = h.user_id
	 WHERE u.tenant = 't34s' AND u.key = k ORDER BY h.at, h.id
$$;

-- Three requests of one subject, filed together; no tick for eleven days
-- (the worker is down).
BEGIN;
SELECT lifecycle_start('dsar', 'sam', 't34s', key => 'a', policy => 't34s_dsar',
					   email => 'sam@example.com') > 0 AS a;
SELECT lifecycle_start('dsar', 'sam', 't34s', key => 'b', policy => 't34s_dsar') > 0 AS b;
SELECT lifecycle_start('dsar', 'sam', 't34s', key => 'c', policy => 't34s_dsar') > 0 AS c;
COMMIT;
SELECT lifecycle_travel('11 days') IS NOT NULL AS travelled;
SELECT key, state, next_event FROM lifecycle.users WHERE tenant = 't34s' ORDER BY key;

-- Request a is past its deadline: extend is refused with its hint (the
-- request is overdue for the application, whatever the worker), and the
-- refusal changes nothing.
SELECT lifecycle_signal('dsar', 'sam', 'extend', 't34s', 'a');
\echo :LAST_ERROR_SQLSTATE
SELECT key, state FROM lifecycle.users WHERE tenant = 't34s' AND key = 'a';
-- answer answers it: its reminders skipped, overdue at the time it was
-- due, written as the worker writes them, then the answer.
SELECT lifecycle_signal('dsar', 'sam', 'answer', 't34s', 'a') AS a;
SELECT * FROM pg_temp.hist('a');
-- The subject was told it is overdue, then answered; no reminder.
SELECT o.message, o.payload ->> 'state' AS state
  FROM lifecycle.outbox o JOIN lifecycle.users u ON u.id = o.user_id
 WHERE u.tenant = 't34s' AND u.key = 'a' ORDER BY o.id;
-- Its closing counts from the answer (a call), as for one answered in time.
SELECT deadline_event, deadline_at = state_since + interval '2 days' AS close_from_answer
  FROM lifecycle.users WHERE tenant = 't34s' AND key = 'a';
SELECT pg_temp.counts_exact('t34s') AS counts_exact;

-- The worker writes the same history for request b.
SELECT lifecycle_tick() >= 3 AS ticked;
SELECT lifecycle_signal('dsar', 'sam', 'answer', 't34s', 'b') AS b;
SELECT (SELECT array_agg(row(event, from_state, to_state, due, actor)::text) FROM pg_temp.hist('a'))
	 = (SELECT array_agg(row(event, from_state, to_state, due, actor)::text) FROM pg_temp.hist('b'))
	   AS same_as_the_worker;
-- A signal with nothing due fires nothing: c, overdue after the tick, is
-- refused again, answered as it is.
SELECT lifecycle_signal('dsar', 'sam', 'extend', 't34s', 'c');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_signal('dsar', 'sam', 'refuse', 't34s', 'c') AS c;
SELECT count(*) AS c_rows FROM pg_temp.hist('c');

-- Within the first month a due reminder fires before the extension (and
-- its message goes out): extend is accepted.
SELECT lifecycle_start('dsar', 'sam', 't34s', key => 'd', policy => 't34s_dsar') > 0 AS d;
SELECT lifecycle_travel('8 days') IS NOT NULL AS travelled;
SELECT lifecycle_signal('dsar', 'sam', 'extend', 't34s', 'd') AS d;
SELECT * FROM pg_temp.hist('d');

-- A closed request whose erasure is due: the signal finds it erased
-- (42704) and changes nothing; the worker erases it.
SELECT lifecycle_travel('2 days') IS NOT NULL AS travelled;
SELECT lifecycle_signal('dsar', 'sam', 'answer', 't34s', 'a');
\echo :LAST_ERROR_SQLSTATE
SELECT state, subject IS NOT NULL AS has_subject FROM lifecycle.users
 WHERE tenant = 't34s' AND key = 'a';
SELECT lifecycle_tick() >= 1 AS ticked;
SELECT key, state FROM lifecycle.users WHERE tenant = 't34s' AND key IN ('a', 'b', 'c') ORDER BY key;
SELECT pg_temp.counts_exact('t34s') AS counts_exact;

-- The user lifecycle: lifecycle_touch() keeps 0.2.0's rule (an active
-- user whose dormancy is due but not fired is seen, and stays active, no
-- notice); lifecycle_signal('user', ..., 'touch') fires the dormancy
-- first (its notice), then the touch reactivates.
SELECT lifecycle_define_policy('t34s_user', '{"dormant_after": "10 days"}') > 0 AS defined;
SELECT lifecycle_invite('u1', 'u1@example.com', 't34s', 't34s_user') > 0 AS u1,
	   lifecycle_invite('u2', 'u2@example.com', 't34s', 't34s_user') > 0 AS u2;
SELECT lifecycle_register('u1', 't34s') AS u1, lifecycle_register('u2', 't34s') AS u2;
SELECT lifecycle_travel('11 days') IS NOT NULL AS travelled;
SELECT lifecycle_touch('u1', 't34s') AS touched;
SELECT lifecycle_signal('user', 'u2', 'touch', 't34s') AS signalled;
SELECT u.subject, h.event, h.from_state, h.to_state, h.due_at IS NOT NULL AS timer
  FROM lifecycle.history h JOIN lifecycle.users u ON u.id = h.user_id
 WHERE u.tenant = 't34s' AND u.workflow = 'user' ORDER BY u.subject, h.at, h.id;
SELECT u.subject, o.message FROM lifecycle.outbox o JOIN lifecycle.users u ON u.id = o.user_id
 WHERE u.tenant = 't34s' AND u.workflow = 'user' ORDER BY u.subject, o.id;
SELECT pg_temp.counts_exact('t34s') AS counts_exact;

-- Nothing of this file is left running.
SELECT lifecycle_erase(s, 't34s') > 0 AS erased FROM (VALUES ('sam'), ('u1'), ('u2')) v(s);
