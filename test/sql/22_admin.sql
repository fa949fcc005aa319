-- Calls that jump across the graph: lifecycle_archive (admin) from active,
-- dormant, completed and invited; lifecycle_restore from archived, dormant
-- and completed; lifecycle_erase from every state but erased.  The policy's
-- hooks log every call into an application table.
\set SHOW_CONTEXT never
SET timezone = 'UTC';
SET client_min_messages = warning;
CREATE SCHEMA app22;
RESET client_min_messages;
CREATE TABLE app22.log (n serial, hook text, subject text, tenant text);
CREATE FUNCTION app22.on_archive(subject text, tenant text) RETURNS void
LANGUAGE sql AS $$ INSERT INTO app22.log (hook, subject, tenant) VALUES ('archive', subject, tenant) $$;
CREATE FUNCTION app22.on_restore(subject text, tenant text) RETURNS void
LANGUAGE sql AS $$ INSERT INTO app22.log (hook, subject, tenant) VALUES ('restore', subject, tenant) $$;
CREATE FUNCTION app22.on_erase(subject text, tenant text) RETURNS void
LANGUAGE sql AS $$ INSERT INTO app22.log (hook, subject, tenant) VALUES ('erase', subject, tenant) $$;
SELECT lifecycle_define_policy('t22', '{"hooks": {"archive": "app22.on_archive",
	"restore": "app22.on_restore", "erase": "app22.on_erase"},
	"expired_erase_after": "100 days"}') AS version;

-- Three users go dormant and one invitation expires (late: the tick comes
-- a minute after the dormancy timers: dormant counts from the tick, so the
-- grace after the notice is whole; the expiry came 76 days late, and its
-- erasure counts from when it was due).
SELECT lifecycle_invite(s, s || '@example.com', 't22', 't22') > 0 AS invited
  FROM unnest(ARRAY['d1', 'd2', 'd3', 'x1']) s ORDER BY s;
SELECT lifecycle_register(s, 't22') FROM unnest(ARRAY['d1', 'd2', 'd3']) s ORDER BY s;
SELECT rt.travel('90 days 1 minute');
SELECT lifecycle_tick() AS transitions;
SELECT u.subject, u.state, u.next_event,
	   u.state_since = h.at AS since_fired, h.at > h.due_at AS late,
	   date_trunc('hour', u.next_at - u.state_since) AS next_after
  FROM lifecycle.users u
  JOIN LATERAL (SELECT * FROM lifecycle.history h WHERE h.user_id = u.id
				 ORDER BY h.id DESC LIMIT 1) h ON true
 WHERE u.tenant = 't22' ORDER BY u.subject;

-- More users: invited, active and completed ones.
SELECT lifecycle_invite(s, s || '@example.com', 't22', 't22') > 0 AS invited
  FROM unnest(ARRAY['i1', 'i2', 'a1', 'a2', 'k1', 'k2', 'k3']) s ORDER BY s;
SELECT lifecycle_register(s, 't22') FROM unnest(ARRAY['a1', 'a2', 'k1', 'k2', 'k3']) s ORDER BY s;
SELECT lifecycle_complete(s, 't22') FROM unnest(ARRAY['k1', 'k2', 'k3']) s ORDER BY s;
SELECT subject, state FROM lifecycle.users WHERE tenant = 't22' ORDER BY subject;

-- lifecycle_archive from invited, active, dormant, completed -> archived:
-- hook archive, message archived, one history row each, erase timer armed.
SELECT s, lifecycle_archive(s, 't22') FROM unnest(ARRAY['i1', 'a1', 'd1', 'k1']) s;
SELECT u.subject, h.event, h.from_state, h.to_state, h.actor = session_user AS by_caller,
	   h.due_at IS NULL AS not_timer, u.next_event, u.next_at - u.state_since AS erase_after
  FROM lifecycle.users u
  JOIN LATERAL (SELECT * FROM lifecycle.history h WHERE h.user_id = u.id
				 ORDER BY h.id DESC LIMIT 1) h ON true
 WHERE u.tenant = 't22' AND u.subject IN ('i1', 'a1', 'd1', 'k1') ORDER BY u.subject;
SELECT u.subject, o.message, o.status, o.payload ->> 'state' AS state
  FROM lifecycle.outbox o JOIN lifecycle.users u ON u.id = o.user_id
 WHERE u.tenant = 't22' AND o.message = 'archived' ORDER BY u.subject;
SELECT hook, subject, tenant FROM app22.log ORDER BY n;

-- Archiving an archived user again changes nothing.
SELECT count(*) AS history_before FROM lifecycle.history h JOIN lifecycle.users u ON u.id = h.user_id
 WHERE u.tenant = 't22' \gset
SELECT lifecycle_archive('a1', 't22');
SELECT count(*) - :history_before AS new_history_rows FROM lifecycle.history h
  JOIN lifecycle.users u ON u.id = h.user_id WHERE u.tenant = 't22';
SELECT count(*) AS hook_calls FROM app22.log;

-- lifecycle_restore from archived, dormant, completed -> active: hook
-- restore, message restored, last_seen = now, dormancy re-armed.
TRUNCATE app22.log;
SELECT s, lifecycle_restore(s, 't22') FROM unnest(ARRAY['a1', 'd2', 'k2']) s;
SELECT u.subject, h.event, h.from_state, h.to_state, u.state, u.next_event,
	   u.last_seen = u.state_since AS seen_now, u.next_at - u.last_seen AS dormant_after
  FROM lifecycle.users u
  JOIN LATERAL (SELECT * FROM lifecycle.history h WHERE h.user_id = u.id
				 ORDER BY h.id DESC LIMIT 1) h ON true
 WHERE u.tenant = 't22' AND u.subject IN ('a1', 'd2', 'k2') ORDER BY u.subject;
SELECT u.subject, o.message, o.status, o.payload ->> 'state' AS state
  FROM lifecycle.outbox o JOIN lifecycle.users u ON u.id = o.user_id
 WHERE u.tenant = 't22' AND o.message = 'restored' ORDER BY u.subject;
SELECT hook, subject, tenant FROM app22.log ORDER BY n;
-- Restoring an active user changes nothing.
SELECT lifecycle_restore('a1', 't22');
SELECT count(*) AS hook_calls FROM app22.log;

-- lifecycle_erase from invited, active, dormant, completed, archived and
-- expired -> erased: the erase hook still sees the subject, the evidence
-- row keeps the reason and the state before, personal data is gone.
TRUNCATE app22.log;
SELECT s, lifecycle_erase(s, 't22', 'ticket ' || s) > 0 AS evidence
  FROM unnest(ARRAY['i2', 'a2', 'd3', 'k3', 'i1', 'x1']) s;
SELECT hook, subject, tenant FROM app22.log ORDER BY n;
SELECT e.tenant, e.policy, e.reason, e.state_before, e.requested_by = session_user AS by_caller,
	   u.subject IS NULL AS no_subject, u.email IS NULL AS no_email, u.attrs,
	   u.state, u.next_at IS NULL AS no_timer
  FROM lifecycle.erasures e JOIN lifecycle.users u ON u.id = e.user_id
 WHERE e.tenant = 't22' ORDER BY e.id;
SELECT h.event, h.from_state, h.to_state, h.detail
  FROM lifecycle.erasures e JOIN lifecycle.history h ON h.user_id = e.user_id
 WHERE e.tenant = 't22' AND h.to_state = 'erased' ORDER BY h.id;
-- The default reason.
SELECT lifecycle_erase('d1', 't22') > 0 AS evidence;
SELECT reason, state_before FROM lifecycle.erasures WHERE tenant = 't22' ORDER BY id DESC LIMIT 1;

-- An erased subject is unknown to every call (42704).
SELECT lifecycle_status('i2', 't22');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_history('i2', 't22');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_register('i2', 't22');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_touch('a2', 't22');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_complete('a2', 't22');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_restore('i1', 't22');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_archive('d3', 't22');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_erase('k3', 't22');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_hold('x1', 't22', 'audit');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_release('x1', 't22');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS erasures FROM lifecycle.erasures WHERE tenant = 't22';

SELECT rt.cleanup('t22') AS erased;
SELECT count(*) AS pending_timers FROM lifecycle.users WHERE next_at IS NOT NULL;
