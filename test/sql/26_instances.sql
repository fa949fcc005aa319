-- Instances of any workflow: lifecycle_start(), lifecycle_signal(),
-- lifecycle_instances(), lifecycle.instances; several per subject, the
-- subject's personal data shared by them; timers of a custom workflow
-- under lifecycle_tick(); every refusal with its SQLSTATE.
\set SHOW_CONTEXT never
SET timezone = 'UTC';

\set review '{"params": {"every": "3 mons", "notice": ["14 days"]}, "messages": {"review_due": {"subject": "Access review", "text": "Review {{attrs.team}}."}}, "states": {"granted": {"timer": {"event": "review_due", "after": "every", "to": "lapsed", "message": "review_due", "deadline": "review", "reminders": {"before": "notice", "event": "review_reminder"}}}, "lapsed": {"timer": {"event": "purge_due", "after": "30 days", "from": "due", "to": "erased"}}}, "events": {"grant": [{"from": ["none", "lapsed"], "to": "granted"}], "confirm": [{"from": ["granted"], "to": "granted"}], "revoke": [{"from": ["granted"], "to": "lapsed", "role": "admin"}], "note": [{"from": ["granted", "lapsed"], "effect": "noop"}], "reopen": [{"from": ["lapsed"], "effect": "refuse", "hint": "Grant the access again."}]}}'
SELECT lifecycle_define_workflow('t26_review', :'review') AS version;

-- Start: the start event's state, timer and history; the workflow's own
-- policy by default; data is the instance's.
SELECT lifecycle_start('t26_review', 's1', 't26', email => 's1@example.com',
					   attrs => '{"team": "ops"}', data => '{"system": "crm"}') AS id \gset
SELECT workflow, workflow_version, key, policy, policy_version, state,
	   next_event, next_at - state_since AS next_in, deadline_event,
	   data, created_at = state_since AS started_now
  FROM lifecycle.users WHERE id = :id;
SELECT event, from_state, to_state FROM lifecycle.history WHERE user_id = :id;
-- Starting it again changes nothing and returns its id.
SELECT lifecycle_start('t26_review', 's1', 't26', data => '{"system": "other"}') = :id AS same_id;
SELECT count(*) AS history_rows FROM lifecycle.history WHERE user_id = :id;
-- A second key is a second instance; the user lifecycle a third.
SELECT lifecycle_start('t26_review', 's1', 't26', key => 'erp') <> :id AS new_instance;
SELECT lifecycle_invite('s1', 's1@example.com', 't26') > 0 AS invited;
SELECT lifecycle_register('s1', 't26') AS registered;
SELECT workflow, key, state, held, policy, workflow_version
  FROM lifecycle_instances('s1', 't26');
SELECT workflow, key, state, subject FROM lifecycle.instances
 WHERE tenant = 't26' ORDER BY id;

-- The subject's personal data is shared: a start without it takes it from
-- the other instances, a start with it gives it to them.
SELECT count(DISTINCT email) AS emails, count(DISTINCT attrs) AS attrs,
	   min(email) AS email FROM lifecycle.users WHERE tenant = 't26' AND subject = 's1';
SELECT lifecycle_start('t26_review', 's1', 't26', key => 'hr',
					   email => 's1.new@example.com') > 0 AS started;
SELECT count(DISTINCT email) AS emails, min(email) AS email, min(attrs::text) AS attrs
  FROM lifecycle.users WHERE tenant = 't26' AND subject = 's1';

-- Signals: calls of the definition, in the instance's own graph.
SELECT lifecycle_signal('t26_review', 's1', 'confirm', 't26') AS state;
SELECT lifecycle_signal('t26_review', 's1', 'note', 't26') AS state;
SELECT count(*) AS history_rows FROM lifecycle.history WHERE user_id = :id;
SELECT lifecycle_signal('t26_review', 's1', 'reopen', 't26');
\echo :LAST_ERROR_SQLSTATE
-- An event for admins needs lifecycle_admin.
CREATE ROLE t26_app IN ROLE lifecycle_app;
SET ROLE t26_app;
SELECT lifecycle_signal('t26_review', 's1', 'revoke', 't26');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_signal('t26_review', 's1', 'confirm', 't26') AS app_may_confirm;
SELECT lifecycle_start('t26_review', 's2', 't26') > 0 AS app_may_start;
RESET ROLE;
SELECT lifecycle_signal('t26_review', 's1', 'revoke', 't26', key => 'hr') AS admin_revoked;

-- Refusals, none echoing the subject, key or data.
SELECT lifecycle_signal('t26_review', 's1', 'nonsense', 't26');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_signal('t26_review', 's1', 'hold', 't26');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_signal('t26_review', 's1', 'review_due', 't26');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_signal('t26_review', 'nobody-secret', 'confirm', 't26');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_signal('t26_review', 's1', 'confirm', 't26', key => 'no-such-key');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_start('t26_nothing', 's1', 't26');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_start('t26_review', 's1', 't26', policy => 'default');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_start('t26_review', 's1', 't26', policy => 't26_none');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_start('user', 's1', 't26', key => 'second');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_start('t26_review', 's3', 't26', data => '["secret"]');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_start('t26_review', 's3', 't26', email => 'not-an-address');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_start('t26_review', NULL, 't26');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_start('t26_review', 's3', 't26', key => NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_start('t26_review', 's3', 't26', key => repeat('k', 257));
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM lifecycle_instances('nobody-secret', 't26');
\echo :LAST_ERROR_SQLSTATE
-- A role limited to another tenant starts and signals nothing here.
CREATE ROLE t26_other IN ROLE lifecycle_app;
SELECT lifecycle_grant_tenant('t26_other', 't26_elsewhere');
SET ROLE t26_other;
SELECT lifecycle_start('t26_review', 's9', 't26');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_signal('t26_review', 's1', 'confirm', 't26');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM lifecycle_instances('s1', 't26');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
DELETE FROM lifecycle.tenant_grants WHERE role_name = 't26_other';

-- Timers of the custom workflow under the scheduler's code: the review
-- falls due, then the purge erases the instance and its own data; the
-- subject's shared data stays with its live instances.
SELECT rt.travel('4 mons') IS NOT NULL AS travelled;
SELECT lifecycle_tick() > 0 AS advanced;
SELECT key, state, next_event FROM lifecycle.users
 WHERE tenant = 't26' AND workflow = 't26_review' ORDER BY id;
SELECT h.event, h.from_state, h.to_state, h.actor
  FROM lifecycle.history h WHERE h.user_id = :id ORDER BY h.at, h.id;
SELECT rt.travel('31 days') IS NOT NULL AS travelled;
SELECT lifecycle_tick() > 0 AS advanced;
SELECT key, state, subject IS NULL AS subject_gone, email IS NULL AS email_gone,
	   data = '{}' AS data_gone
  FROM lifecycle.users WHERE tenant = 't26' AND workflow = 't26_review' ORDER BY id;
SELECT state_before, reason FROM lifecycle.erasures e
  JOIN lifecycle.users u ON u.id = e.user_id
 WHERE u.tenant = 't26' AND u.workflow = 't26_review' ORDER BY e.id;
SELECT workflow, key, state FROM lifecycle_instances('s1', 't26');
-- An erased key starts anew, with a new id.
SELECT lifecycle_start('t26_review', 's1', 't26') NOT IN (:id) AS new_id;
SELECT workflow, key, state FROM lifecycle_instances('s1', 't26');

-- Clean up: the remaining instances run out by their own timers.
SELECT lifecycle_erase('s1', 't26', 'test cleanup') > 0 AS user_erased;
SELECT rt.travel('5 mons') IS NOT NULL AS travelled;
SELECT lifecycle_tick() >= 0 AS advanced;
SELECT rt.travel('31 days') IS NOT NULL AS travelled;
SELECT lifecycle_tick() >= 0 AS advanced;
SELECT count(*) AS live FROM lifecycle.users WHERE tenant = 't26' AND state <> 'erased';
DROP ROLE t26_app, t26_other;
