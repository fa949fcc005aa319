-- A held subject's new instance starts held (issue 18; DESIGN "Policies,
-- instances and subjects": a legal hold stops every timer of every
-- instance of the subject).  An instance started with lifecycle_start(),
-- or a user lifecycle begun with lifecycle_invite(), for a subject whose
-- other instances are on a hold in force takes that hold as
-- lifecycle_hold() places it on each instance: the same reason and end,
-- the hold event in its history, no timer but the lapse of the hold;
-- lifecycle.holds lists it under the subject, the counts stay exact, and
-- the release re-arms it from its anchors.  A hold that has lapsed is not
-- taken.
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

-- The instances of a subject, with their hold.
CREATE FUNCTION pg_temp.insts(s text) RETURNS TABLE (workflow text, key text, state text,
	held boolean, reason text, until_set boolean, next_event text, timer_is_lapse boolean)
LANGUAGE sql AS $$
	SELECT u.workflow, u.key, u.state::text, u.held, u.hold_reason, u.hold_until IS NOT NULL,
		   u.next_event, u.next_at IS NOT DISTINCT FROM u.hold_until
	  FROM lifecycle.users u WHERE u.tenant = 't34h' AND u.subject = s ORDER BY u.id
$$;

-- A short dsar policy: ten days to answer, records kept 30 days.
SELECT lifecycle_define_policy('t34h_dsar', '{"workflow": "dsar", "respond_within": "10 days",
	"extend_by": "10 days", "reminders": ["3 days"], "keep_after_close": "30 days"}') > 0 AS defined;

-- h1 files a request, then the subject is held for twenty days.
SELECT lifecycle_start('dsar', 'h1', 't34h', key => 'r1', policy => 't34h_dsar',
					   email => 'h1@example.com') > 0 AS started;
SELECT lifecycle_hold('h1', 't34h', 'litigation', lifecycle_now() + interval '20 days');
-- A second request filed while held starts held, with the subject's hold.
SELECT lifecycle_start('dsar', 'h1', 't34h', key => 'r2', policy => 't34h_dsar') > 0 AS started;
SELECT * FROM pg_temp.insts('h1');
SELECT count(DISTINCT hold_until) AS one_hold_until FROM lifecycle.users
 WHERE tenant = 't34h' AND subject = 'h1';
-- Its history: the request, then the hold, as lifecycle_hold() writes it.
SELECT h.event, h.from_state, h.to_state, h.detail ->> 'reason' AS reason,
	   (h.detail ->> 'until')::timestamptz = u.hold_until AS until_matches
  FROM lifecycle.history h JOIN lifecycle.users u ON u.id = h.user_id
 WHERE u.tenant = 't34h' AND u.key = 'r2' ORDER BY h.at, h.id;
-- Starting it again changes nothing (no second hold row).
SELECT lifecycle_start('dsar', 'h1', 't34h', key => 'r2')
	   = (SELECT id FROM lifecycle.users WHERE tenant = 't34h' AND key = 'r2') AS same_id;
SELECT count(*) AS hold_rows FROM lifecycle.history h JOIN lifecycle.users u ON u.id = h.user_id
 WHERE u.tenant = 't34h' AND u.key = 'r2' AND h.event = 'hold';
-- The user lifecycle begun now (by the application) starts held too.
CREATE ROLE regress_t34h_app IN ROLE lifecycle_app;
SET ROLE regress_t34h_app;
SELECT lifecycle_invite('h1', 'h1@example.com', 't34h') > 0 AS invited;
RESET ROLE;
SELECT * FROM pg_temp.insts('h1');
-- lifecycle.holds: one row for the subject, naming both workflows; its
-- hold was placed when and by whom lifecycle_hold() placed it (the user
-- lifecycle's own hold row is the invitation's).
SELECT subject, reason, workflows, until IS NOT NULL AS until_set,
	   held_by = session_user AS held_by_the_admin,
	   held_since = (SELECT h.at FROM lifecycle.history h JOIN lifecycle.users r ON r.id = h.user_id
					  WHERE r.tenant = 't34h' AND r.key = 'r1' AND h.event = 'hold') AS since_the_hold
  FROM lifecycle.holds WHERE tenant = 't34h';
SELECT h.actor FROM lifecycle.history h JOIN lifecycle.users u ON u.id = h.user_id
 WHERE u.tenant = 't34h' AND u.workflow = 'user' AND h.event = 'hold';
SELECT workflow, key, held FROM lifecycle_instances('h1', 't34h') ORDER BY id;
SELECT pg_temp.counts_exact('t34h') AS counts_exact;

-- No timer fires while held: past the requests' ten-day deadline.
SELECT lifecycle_travel('12 days') IS NOT NULL AS travelled;
SELECT lifecycle_tick() >= 0 AS ticked;
SELECT workflow, key, state FROM pg_temp.insts('h1');
-- The release re-arms every instance from its anchors: the late timers
-- fire at once (r2's reminder and deadline have passed).
SELECT lifecycle_release('h1', 't34h');
SELECT workflow, key, held, next_event, next_at < lifecycle_now() AS due_at_once
  FROM lifecycle.users WHERE tenant = 't34h' AND subject = 'h1' ORDER BY id;
SELECT lifecycle_tick() >= 2 AS ticked;
SELECT workflow, key, state, held FROM pg_temp.insts('h1');
SELECT pg_temp.counts_exact('t34h') AS counts_exact;

-- A hold that has lapsed (its until passed, the lapse not written yet)
-- is not taken: h2's new request starts unheld.
SELECT lifecycle_invite('h2', 'h2@example.com', 't34h') > 0 AS invited;
SELECT lifecycle_hold('h2', 't34h', 'short', lifecycle_now() + interval '1 day');
SELECT lifecycle_travel('2 days') IS NOT NULL AS travelled;
SELECT lifecycle_start('dsar', 'h2', 't34h', key => 'q', policy => 't34h_dsar') > 0 AS started;
SELECT workflow, key, held, next_event FROM pg_temp.insts('h2');
SELECT pg_temp.counts_exact('t34h') AS counts_exact;

-- Nothing of this file is left running (h2's hold lapses at the tick).
SELECT lifecycle_tick() >= 1 AS ticked;
SELECT lifecycle_erase(s, 't34h') > 0 AS erased FROM (VALUES ('h1'), ('h2')) v(s);
DROP ROLE regress_t34h_app;
