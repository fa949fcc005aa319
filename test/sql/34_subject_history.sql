-- lifecycle_history() across a subject's instances (issue 18): the
-- history of every live instance of the subject, of every workflow,
-- oldest first (at, id), each row naming its instance (user_id); 0.2.0's
-- columns, and its rows for a subject that runs the user lifecycle only.
-- A subject running other workflows only is found.  lifecycle_status()
-- keeps its 0.2.0 contract (the user lifecycle); for a subject without
-- one but with other instances its 42704 says to use
-- lifecycle_instances().
\set SHOW_CONTEXT never
SET timezone = 'UTC';

-- The same columns as lifecycle.history, in its order.
SELECT pg_catalog.pg_get_function_result('lifecycle_history(text, text)'::regprocedure) AS result;

-- v1 runs the user lifecycle and two requests; v2 a request only; v3 the
-- user lifecycle only.
SELECT lifecycle_invite('v1', 'v1@example.com', 't34v') > 0 AS invited;
SELECT lifecycle_start('dsar', 'v1', 't34v', key => 'x') > 0 AS x;
SELECT lifecycle_register('v1', 't34v') AS registered;
SELECT lifecycle_start('dsar', 'v1', 't34v', key => 'y') > 0 AS y;
SELECT lifecycle_signal('dsar', 'v1', 'extend', 't34v', 'y') AS extended;
SELECT lifecycle_start('dsar', 'v2', 't34v', key => 'z', email => 'v2@example.com') > 0 AS z;
SELECT lifecycle_invite('v3', 'v3@example.com', 't34v') > 0 AS invited;
SELECT lifecycle_register('v3', 't34v') AS registered;

-- Every instance's rows, in the order of their times; user_id names the
-- instance.
SELECT h.ordinality AS n, u.workflow, u.key, h.event, h.from_state, h.to_state
  FROM lifecycle_history('v1', 't34v') WITH ORDINALITY AS h
  JOIN lifecycle.users u ON u.id = h.user_id
 ORDER BY h.ordinality;
SELECT bool_and(s.prev_at IS NULL OR s.at >= s.prev_at) AS oldest_first
  FROM (SELECT h.at, lag(h.at) OVER (ORDER BY h.ordinality) AS prev_at
		  FROM lifecycle_history('v1', 't34v') WITH ORDINALITY AS h) s;
SELECT (SELECT count(*) FROM lifecycle_history('v1', 't34v'))
	 = (SELECT count(*) FROM lifecycle.history h JOIN lifecycle.users u ON u.id = h.user_id
		 WHERE u.tenant = 't34v' AND u.subject = 'v1') AS every_row;
-- A subject with a request only is found.
SELECT u.workflow, u.key, h.event, h.to_state
  FROM lifecycle_history('v2', 't34v') h JOIN lifecycle.users u ON u.id = h.user_id;
-- The user lifecycle only: its rows, as in 0.2.0.
SELECT event, from_state, to_state FROM lifecycle_history('v3', 't34v');

-- lifecycle_status() is the user lifecycle's: v1's, not its requests'.
SELECT state, policy FROM lifecycle_status('v1', 't34v');
-- v2 has no user lifecycle: 42704, the HINT names lifecycle_instances().
SELECT * FROM lifecycle_status('v2', 't34v');
\echo :LAST_ERROR_SQLSTATE
SELECT workflow, key, state FROM lifecycle_instances('v2', 't34v');
-- Unknown subjects: 0.2.0's 42704 for both.
SELECT * FROM lifecycle_status('nobody', 't34v');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM lifecycle_history('nobody', 't34v');
\echo :LAST_ERROR_SQLSTATE

-- An erased instance's rows go with its subject: once the request is
-- erased by a subject-wide erasure, nothing is found.
SELECT lifecycle_erase('v2', 't34v') > 0 AS erased;
SELECT * FROM lifecycle_history('v2', 't34v');
\echo :LAST_ERROR_SQLSTATE

-- A role limited to another tenant sees neither (42501).
CREATE ROLE regress_t34v_other IN ROLE lifecycle_app;
INSERT INTO lifecycle.tenant_grants VALUES ('regress_t34v_other', 't34v_other');
SET ROLE regress_t34v_other;
SELECT count(*) FROM lifecycle_history('v1', 't34v');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
DELETE FROM lifecycle.tenant_grants WHERE role_name = 'regress_t34v_other';
DROP ROLE regress_t34v_other;

-- Nothing of this file is left running.
SELECT lifecycle_erase(s, 't34v') > 0 AS erased FROM (VALUES ('v1'), ('v3')) v(s);
