-- lifecycle_tick(max_transitions): due users advance oldest timer first,
-- at most max_transitions per call; lifecycle_status() and
-- lifecycle_history() report what happened; history.actor is the SET ROLE
-- role of the caller, or "lifecycle worker" for timers.
\set SHOW_CONTEXT never
SET timezone = 'UTC';

-- Five invitations an hour apart: their first reminders fall due in order.
SELECT i, lifecycle_invite('k' || i, 'k' || i || '@example.com', 't25') > 0 AS invited,
	   rt.travel('1 hour') AS then_travel
  FROM generate_series(1, 5) i;
SELECT rt.travel('3 days');
SELECT lifecycle_tick(0) AS transitions;
SELECT lifecycle_tick(2) AS transitions;
SELECT subject, step FROM lifecycle.users WHERE tenant = 't25' ORDER BY subject;
SELECT lifecycle_tick(2) AS transitions;
SELECT subject, step FROM lifecycle.users WHERE tenant = 't25' ORDER BY subject;
SELECT lifecycle_tick() AS transitions;
SELECT lifecycle_tick() AS transitions;
SELECT subject, step FROM lifecycle.users WHERE tenant = 't25' ORDER BY subject;
-- Every reminder was due in invitation order, and fired in that order.
SELECT count(*) AS reminders,
	   bool_and(h.id > prev_id) AS fired_in_due_order
  FROM (SELECT h.*, lag(h.id, 1, 0::bigint) OVER (ORDER BY h.due_at) AS prev_id
		  FROM lifecycle.history h JOIN lifecycle.users u ON u.id = h.user_id
		 WHERE u.tenant = 't25' AND h.event = 'invite_reminder') h;

-- lifecycle_status() and lifecycle_history() as the application sees them.
SELECT state, since = (SELECT at FROM lifecycle.history WHERE user_id = s.id
						 AND event = 'invite') AS since_invite,
	   next_event, next_at - since AS next_after, held, policy, policy_version
  FROM lifecycle_status('k1', 't25') s;
SELECT event, from_state, to_state, actor, due_at IS NOT NULL AS timer, detail
  FROM lifecycle_history('k1', 't25');
SELECT count(*) = count(DISTINCT id) AS ids_unique,
	   bool_and(user_id = rt.uid('k1', 't25')) AS one_user
  FROM lifecycle_history('k1', 't25');

-- The actor is the role set with SET ROLE (the functions are SECURITY
-- DEFINER, so current_user would always be the owner).
SET ROLE lifecycle_app;
SELECT lifecycle_register('k1', 't25');
SELECT lifecycle_complete('k1', 't25');
SELECT event, actor FROM lifecycle_history('k1', 't25') OFFSET 2;
RESET ROLE;
SET ROLE lifecycle_admin;
SELECT lifecycle_archive('k1', 't25');
SELECT lifecycle_hold('k1', 't25', 'audit');
RESET ROLE;
SELECT event, actor FROM rt.hist(rt.uid('k1', 't25')) OFFSET 4;

SELECT rt.cleanup('t25') AS erased;
SELECT count(*) AS pending_timers FROM lifecycle.users WHERE next_at IS NOT NULL;
