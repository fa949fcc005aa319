-- lifecycle_update(): a live user's e-mail, attrs, region or policy
-- change; messages not yet delivered follow; history names the fields.
\set SHOW_CONTEXT never
SET timezone = 'UTC';
CREATE ROLE cmp_up_app LOGIN IN ROLE lifecycle_app;
CREATE ROLE cmp_up_limited LOGIN IN ROLE lifecycle_app;
CREATE ROLE cmp_up_nobody LOGIN;
CREATE ROLE cmp_up_auditor LOGIN IN ROLE lifecycle_auditor;
SELECT lifecycle_grant_tenant('cmp_up_limited', 't72-other');

SELECT lifecycle_invite('u1', 'old@example.com', 't72', 'default', 'eu',
						'{"name": "Old"}') > 0 AS invited;
SELECT lifecycle_invite('u2', 'u2@example.com', 't72') > 0 AS invited;
-- u1 has two undelivered messages (invite, reminder) and one delivered.
SELECT rt.travel('3 days') IS NOT NULL AS travelled;
SELECT lifecycle_tick() >= 2 AS ticked;
UPDATE lifecycle.outbox SET status = 'sent'
 WHERE user_id = rt.uid('u1', 't72') AND message = 'invite';
SELECT * FROM rt.msgs(rt.uid('u1', 't72'));

SET ROLE cmp_up_app;
SELECT lifecycle_update('u1', 't72', email => 'new@example.com',
						attrs => '{"name": "New"}');
RESET ROLE;
SELECT email, attrs, region FROM lifecycle.users WHERE id = rt.uid('u1', 't72');
-- The delivered message keeps what it was sent with; the other one is
-- rewritten.
SELECT message, status, payload ->> 'email' AS email, payload -> 'attrs' AS attrs
  FROM lifecycle.outbox WHERE user_id = rt.uid('u1', 't72') ORDER BY id;
-- One history row naming the fields, never their values.
SELECT event, from_state, to_state, actor, detail
  FROM lifecycle.history WHERE user_id = rt.uid('u1', 't72') AND event = 'update';

-- NULL leaves a field unchanged; attrs replaces the whole document; a
-- call that changes nothing writes nothing.
SELECT lifecycle_update('u1', 't72', region => 'us');
SELECT lifecycle_update('u1', 't72', attrs => '{}');
SELECT lifecycle_update('u1', 't72');
SELECT lifecycle_update('u1', 't72', email => 'new@example.com', region => 'us');
SELECT email, attrs, region FROM lifecycle.users WHERE id = rt.uid('u1', 't72');
SELECT detail FROM lifecycle.history
 WHERE user_id = rt.uid('u1', 't72') AND event = 'update' ORDER BY id;

-- A new policy: the user moves to its latest version and its timers are
-- re-armed from its existing anchors; a deadline already past fires at
-- the next tick, with its notice.
SELECT lifecycle_define_policy('p72', '{"dormant_after": "60 days"}');
SELECT lifecycle_define_policy('p72', '{"dormant_after": "2 days"}');
SELECT lifecycle_register('u2', 't72');
SELECT rt.travel('5 days') IS NOT NULL AS travelled;
SELECT next_event, next_at - last_seen AS after FROM lifecycle.users
 WHERE id = rt.uid('u2', 't72');
SELECT lifecycle_update('u2', 't72', policy => 'p72');
SELECT policy, policy_version, state, next_event, next_at - last_seen AS after,
	   next_at <= lifecycle_now() AS due_now
  FROM lifecycle.users WHERE id = rt.uid('u2', 't72');
SELECT detail FROM lifecycle.history
 WHERE user_id = rt.uid('u2', 't72') AND event = 'update';
SELECT lifecycle_tick() >= 1 AS ticked;
SELECT state FROM lifecycle.users WHERE id = rt.uid('u2', 't72');
SELECT message FROM lifecycle.outbox WHERE user_id = rt.uid('u2', 't72') ORDER BY id;
-- The same policy again, already at its latest version: nothing changes.
SELECT lifecycle_update('u2', 't72', policy => 'p72');
SELECT count(*) AS updates FROM lifecycle.history
 WHERE user_id = rt.uid('u2', 't72') AND event = 'update';

-- Errors change nothing.
CREATE TABLE rt.before72 AS SELECT * FROM lifecycle.users WHERE tenant = 't72';
SELECT lifecycle_update(NULL, 't72', email => 'x@example.com');
SELECT lifecycle_update('u1', NULL, email => 'x@example.com');
SELECT lifecycle_update('u1', 't72', email => 'not an address');
SELECT lifecycle_update('u1', 't72', email => '');
SELECT lifecycle_update('u1', 't72', attrs => '[1]');
SELECT lifecycle_update('u1', 't72', attrs => jsonb_build_object('x', repeat('y', 9000)));
SELECT lifecycle_update('u1', 't72', region => ' ');
SELECT lifecycle_update('u1', 't72', policy => 'no such policy');
SELECT lifecycle_update('nobody', 't72', email => 'x@example.com');
SET ROLE cmp_up_limited;
SELECT lifecycle_update('u1', 't72', email => 'x@example.com');
RESET ROLE;
SET ROLE cmp_up_nobody;
SELECT lifecycle_update('u1', 't72', email => 'x@example.com');
RESET ROLE;
SET ROLE cmp_up_auditor;
SELECT lifecycle_update('u1', 't72', email => 'x@example.com');
RESET ROLE;
SELECT count(*) AS changed FROM (
	SELECT * FROM lifecycle.users WHERE tenant = 't72'
	EXCEPT SELECT * FROM rt.before72) c;
-- An erased subject is unknown.
SELECT lifecycle_erase('u1', 't72') > 0 AS erased;
SELECT lifecycle_update('u1', 't72', email => 'x@example.com');

SELECT rt.cleanup('t72') AS cleaned;
