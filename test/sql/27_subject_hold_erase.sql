-- Subject-wide legal hold and erasure (issue 18): lifecycle_hold() and
-- lifecycle_release() stop and re-arm every live instance of the subject,
-- of every workflow; lifecycle_erase() ends them all at once (each
-- instance's erase hook, pending messages cancelled, one evidence row per
-- instance) and returns the user lifecycle's evidence id, else the first
-- instance's.  An instance erased by its own timer erases its own row:
-- the subject's shared personal data lives on in the other live
-- instances and is gone with the last of them.
\set SHOW_CONTEXT never
SET timezone = 'UTC';

\set trial '{"messages": {"trial_started": {"subject": "Your trial", "text": "Hello {{attrs.name}}."}}, "states": {"running": {"timer": {"event": "trial_end", "after": "10 days", "to": "ended", "deadline": "trial"}}, "ended": {"timer": {"event": "purge", "after": "5 days", "from": "due", "to": "erased"}}}, "events": {"begin": [{"from": ["none"], "to": "running", "message": "trial_started"}], "convert": [{"from": ["running"], "to": "ended"}]}}'
SELECT lifecycle_define_workflow('t27_trial', :'trial') AS version;

-- Erase hooks for both workflows, recording who was erased under which
-- policy and as whom.
CREATE TABLE t27_erased (policy text, subject text, tenant text, who name);
CREATE FUNCTION t27_erase_user(subject text, tenant text) RETURNS void
LANGUAGE sql AS $$ INSERT INTO public.t27_erased VALUES ('user', subject, tenant, current_user) $$;
CREATE FUNCTION t27_erase_trial(subject text, tenant text) RETURNS void
LANGUAGE sql AS $$ INSERT INTO public.t27_erased VALUES ('trial', subject, tenant, current_user) $$;
SELECT lifecycle_define_policy('t27_user', '{"dormant_after": "20 days", "archive_after": "5 days", "archive_reminders": [], "erase_after": "10 days", "hooks": {"erase": "t27_erase_user"}}') > 0 AS defined;
SELECT lifecycle_define_policy('t27_trial', '{"hooks": {"erase": "t27_erase_trial"}}') > 0 AS defined;

-- Subject a1: the user lifecycle and two trials.
SELECT lifecycle_invite('a1', 'a1@example.com', 't27', 't27_user', 'eu', '{"name": "Ada"}') > 0 AS invited;
SELECT lifecycle_register('a1', 't27') AS registered;
SELECT lifecycle_start('t27_trial', 'a1', 't27', data => '{"plan": "pro"}') > 0 AS started;
SELECT lifecycle_start('t27_trial', 'a1', 't27', key => 'second') > 0 AS started;
SELECT workflow, key, state, held FROM lifecycle_instances('a1', 't27') ORDER BY id;

-- Hold: every instance stops, one history row each.
SELECT lifecycle_hold('a1', 't27', 'litigation');
SELECT workflow, key, state, held, next_at IS NULL AS no_timer
  FROM lifecycle_instances('a1', 't27') ORDER BY id;
SELECT u.workflow, u.key, h.event, h.detail ->> 'reason' AS reason
  FROM lifecycle.history h JOIN lifecycle.users u ON u.id = h.user_id
 WHERE u.tenant = 't27' AND u.subject = 'a1' AND h.event = 'hold' ORDER BY u.id;
SELECT count(*) AS held_rows FROM lifecycle.holds WHERE tenant = 't27' AND subject = 'a1';
-- No timer fires for any of them while held.
SELECT rt.travel('11 days') IS NOT NULL AS travelled;
SELECT lifecycle_tick() >= 0 AS ticked;
SELECT workflow, key, state FROM lifecycle_instances('a1', 't27') ORDER BY id;
-- Erasure waits for the hold: refused for the subject, nothing erased.
SELECT lifecycle_erase('a1', 't27', 'asked to');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS erased_rows FROM t27_erased;
-- Release: every instance re-armed; the overdue trials move at the tick.
SELECT lifecycle_release('a1', 't27');
SELECT workflow, key, held, next_at IS NOT NULL AS armed
  FROM lifecycle_instances('a1', 't27') ORDER BY id;
SELECT count(*) AS release_rows FROM lifecycle.history h JOIN lifecycle.users u ON u.id = h.user_id
 WHERE u.tenant = 't27' AND u.subject = 'a1' AND h.event = 'release';
SELECT lifecycle_release('a1', 't27');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_tick() >= 2 AS ticked;
SELECT workflow, key, state FROM lifecycle_instances('a1', 't27') ORDER BY id;

-- Erasure: every instance at once, each hook, each its evidence row; the
-- result is the user lifecycle's evidence.
SELECT id AS a1_user FROM lifecycle.users
 WHERE tenant = 't27' AND subject = 'a1' AND workflow = 'user' \gset
CREATE TEMP TABLE a1_ids AS SELECT id, workflow, key FROM lifecycle.users
 WHERE tenant = 't27' AND subject = 'a1';
SELECT count(*) AS unsent_before FROM lifecycle.outbox
 WHERE user_id IN (SELECT id FROM a1_ids) AND status IN ('pending', 'unrouted');
SELECT lifecycle_erase('a1', 't27', 'asked to') AS evidence \gset
SELECT e.user_id = :a1_user AS user_evidence FROM lifecycle.erasures e WHERE e.id = :evidence;
SELECT i.workflow, i.key, e.state_before, e.reason, e.policy
  FROM lifecycle.erasures e JOIN a1_ids i ON i.id = e.user_id ORDER BY i.id;
SELECT policy, subject, tenant FROM t27_erased ORDER BY policy;
SELECT i.workflow, i.key, u.state, u.subject IS NULL AS subject_gone,
	   u.email IS NULL AS email_gone, u.attrs = '{}' AS attrs_gone, u.data = '{}' AS data_gone
  FROM lifecycle.users u JOIN a1_ids i ON i.id = u.id ORDER BY i.id;
SELECT i.workflow, h.event, h.detail ->> 'reason' AS reason
  FROM lifecycle.history h JOIN a1_ids i ON i.id = h.user_id
 WHERE h.event = 'erase' ORDER BY i.id;
SELECT status, count(*) AS messages, bool_and(payload = '{}') AS scrubbed
  FROM lifecycle.outbox WHERE user_id IN (SELECT id FROM a1_ids) GROUP BY status ORDER BY status;
SELECT * FROM lifecycle_instances('a1', 't27');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_erase('a1', 't27', 'again');
\echo :LAST_ERROR_SQLSTATE
TRUNCATE t27_erased;

-- Subject b1 has no user lifecycle: held, released and erased all the same;
-- the evidence is its first instance's.
SELECT lifecycle_start('t27_trial', 'b1', 't27', email => 'b1@example.com') AS b1_first \gset
SELECT lifecycle_start('t27_trial', 'b1', 't27', key => 'x') > 0 AS started;
SELECT lifecycle_hold('b1', 't27', 'audit', lifecycle_now() + interval '1 day');
SELECT key, held FROM lifecycle_instances('b1', 't27') ORDER BY id;
SELECT lifecycle_release('b1', 't27');
SELECT key, held FROM lifecycle_instances('b1', 't27') ORDER BY id;
SELECT lifecycle_erase('b1', 't27', 'asked to') AS evidence \gset
SELECT e.user_id = :b1_first AS first_instance_evidence FROM lifecycle.erasures e WHERE e.id = :evidence;
SELECT count(*) AS evidence_rows FROM lifecycle.erasures e JOIN lifecycle.users u ON u.id = e.user_id
 WHERE u.tenant = 't27' AND u.workflow = 't27_trial' AND e.reason = 'asked to'
   AND u.id >= :b1_first;
SELECT count(*) AS hooks_ran FROM t27_erased;
-- A subject nobody knows stays unknown.
SELECT lifecycle_hold('nobody', 't27', 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_release('nobody', 't27');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_erase('nobody', 't27', 'x');
\echo :LAST_ERROR_SQLSTATE

-- Subject c1: a trial erased by its own timer erases its own row only;
-- the subject's e-mail and attrs live on in the user lifecycle, and are
-- gone when it ends in turn (region stays on erased rows, as in 0.2.0).
SELECT lifecycle_invite('c1', 'c1@example.com', 't27', 't27_user', 'eu', '{"name": "Cy"}') > 0 AS invited;
SELECT lifecycle_register('c1', 't27') AS registered;
SELECT lifecycle_start('t27_trial', 'c1', 't27', data => '{"plan": "pro"}') AS c1_trial \gset
SELECT rt.travel('11 days') IS NOT NULL AS travelled;
SELECT lifecycle_tick() >= 1 AS ticked;
SELECT rt.travel('5 days') IS NOT NULL AS travelled;
SELECT lifecycle_tick() >= 1 AS ticked;
SELECT state, subject IS NULL AS subject_gone, email IS NULL AS email_gone,
	   attrs = '{}' AS attrs_gone, data = '{}' AS data_gone
  FROM lifecycle.users WHERE id = :c1_trial;
SELECT state_before, reason FROM lifecycle.erasures WHERE user_id = :c1_trial;
SELECT bool_and(payload = '{}') AS trial_payloads_scrubbed FROM lifecycle.outbox WHERE user_id = :c1_trial;
SELECT workflow, state, email, region, attrs FROM lifecycle.users
 WHERE tenant = 't27' AND subject = 'c1';
SELECT d ->> 'email' AS email, d -> 'attrs' AS attrs FROM lifecycle_export('c1', 't27') d;
SELECT workflow, key, state FROM lifecycle_instances('c1', 't27');
-- The user lifecycle runs out: dormant, archived, erased.
SELECT rt.uid('c1', 't27') AS c1_user \gset
SELECT rt.travel('10 days') IS NOT NULL AS travelled;
SELECT lifecycle_tick() >= 1 AS ticked;
SELECT rt.travel('6 days') IS NOT NULL AS travelled;
SELECT lifecycle_tick() >= 1 AS ticked;
SELECT rt.travel('11 days') IS NOT NULL AS travelled;
SELECT lifecycle_tick() >= 1 AS ticked;
SELECT state FROM lifecycle.users WHERE id = :c1_user;
SELECT count(*) AS rows_with_c1 FROM lifecycle.users
 WHERE subject = 'c1' OR email = 'c1@example.com' OR data <> '{}' AND id IN (:c1_user, :c1_trial)
	OR attrs <> '{}' AND id IN (:c1_user, :c1_trial);
SELECT count(*) AS payloads_with_c1 FROM lifecycle.outbox
 WHERE user_id IN (:c1_user, :c1_trial) AND payload <> '{}';
SELECT policy, subject FROM t27_erased ORDER BY policy;
SELECT * FROM lifecycle_instances('c1', 't27');
\echo :LAST_ERROR_SQLSTATE

SELECT count(*) AS live FROM lifecycle.users WHERE tenant = 't27' AND state <> 'erased';
DROP TABLE t27_erased;
