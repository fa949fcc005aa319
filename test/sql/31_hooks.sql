-- Hooks: the application's own functions run in the transition's
-- transaction.  A failing hook rolls back that user's transition only; in
-- lifecycle_tick() the user stays due and is retried with backoff, through
-- the API the error reaches the caller and nothing is written.
\set SHOW_CONTEXT never
SET timezone = 'UTC';
SET client_min_messages = warning;
CREATE SCHEMA app31;
RESET client_min_messages;
CREATE TABLE app31.accounts (subject text PRIMARY KEY, tenant text, status text NOT NULL DEFAULT 'live');
CREATE TABLE app31.fail (subject text PRIMARY KEY);   -- subjects whose archiving the app refuses
CREATE TABLE app31.log (n serial, hook text, subject text, tenant text);
CREATE FUNCTION app31.on_archive(subject text, tenant text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO app31.log (hook, subject, tenant) VALUES ('archive', subject, tenant);
	IF EXISTS (SELECT 1 FROM app31.fail f WHERE f.subject = on_archive.subject) THEN
		RAISE EXCEPTION 'the application refuses to archive %', subject;
	END IF;
	UPDATE app31.accounts a SET status = 'archived' WHERE a.subject = on_archive.subject;
END
$$;
CREATE FUNCTION app31.on_restore(subject text, tenant text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO app31.log (hook, subject, tenant) VALUES ('restore', subject, tenant);
	UPDATE app31.accounts a SET status = 'live' WHERE a.subject = on_restore.subject;
END
$$;
CREATE FUNCTION app31.on_erase(subject text, tenant text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO app31.log (hook, subject, tenant) VALUES ('erase', subject, tenant);
	DELETE FROM app31.accounts a WHERE a.subject = on_erase.subject;
END
$$;
SELECT lifecycle_define_policy('t31', '{"hooks": {"archive": "app31.on_archive",
	"restore": "app31.on_restore", "erase": "app31.on_erase"}}') AS version;
SELECT definition -> 'hooks' AS hooks FROM lifecycle.policies WHERE name = 't31';

INSERT INTO app31.accounts (subject, tenant)
SELECT s, 't31' FROM unnest(ARRAY['g1', 'g2', 'b1', 'api1', 'api2']) s;
SELECT lifecycle_invite(s, s || '@example.com', 't31', 't31') > 0 AS invited
  FROM unnest(ARRAY['g1', 'g2', 'b1', 'api1', 'api2']) s ORDER BY s;
SELECT lifecycle_register(s, 't31') FROM unnest(ARRAY['g1', 'g2', 'b1', 'api1', 'api2']) s ORDER BY s;
SELECT lifecycle_complete(s, 't31') FROM unnest(ARRAY['g1', 'g2', 'b1']) s ORDER BY s;

-- The application's table moves with the transition, in one transaction:
-- rolled back together ...
BEGIN;
SELECT lifecycle_archive('api1', 't31');
SELECT status FROM app31.accounts WHERE subject = 'api1';
ROLLBACK;
SELECT state FROM lifecycle_status('api1', 't31');
SELECT status FROM app31.accounts WHERE subject = 'api1';
-- ... and committed together.
SELECT lifecycle_archive('api1', 't31');
SELECT status FROM app31.accounts WHERE subject = 'api1';
SELECT lifecycle_restore('api1', 't31');
SELECT status FROM app31.accounts WHERE subject = 'api1';
SELECT hook, subject, tenant FROM app31.log ORDER BY n;

-- Through the API a failing hook's error reaches the caller, and nothing
-- is written: no state change, no history, no message, no hook side effect.
TRUNCATE app31.log;
INSERT INTO app31.fail VALUES ('api2');
SELECT count(*) AS history_before FROM lifecycle.history WHERE user_id = rt.uid('api2', 't31') \gset
SELECT count(*) AS outbox_before FROM lifecycle.outbox WHERE user_id = rt.uid('api2', 't31') \gset
SELECT lifecycle_archive('api2', 't31');
\echo :LAST_ERROR_SQLSTATE
SELECT state FROM lifecycle_status('api2', 't31');
SELECT count(*) - :history_before AS new_history FROM lifecycle.history WHERE user_id = rt.uid('api2', 't31');
SELECT count(*) - :outbox_before AS new_messages FROM lifecycle.outbox WHERE user_id = rt.uid('api2', 't31');
SELECT last_error, retries FROM lifecycle.users WHERE tenant = 't31' AND subject = 'api2';
SELECT count(*) AS hook_log FROM app31.log;
DELETE FROM app31.fail;

-- In lifecycle_tick() a failing hook rolls back that user only: g1 and g2
-- are archived (hook ran), b1 stays completed and due, with the error, a
-- retry count and a retry time 1 minute ahead on the lifecycle clock.
INSERT INTO app31.fail VALUES ('b1');
SELECT rt.travel('30 days 5 minutes');
BEGIN;
SELECT lifecycle_tick() AS transitions;
SELECT subject, state, next_event, retries, last_error,
	   date_trunc('second', retry_at - lifecycle_now()) AS retry_in
  FROM lifecycle.users WHERE tenant = 't31' ORDER BY subject;
COMMIT;
SELECT subject, status FROM app31.accounts ORDER BY subject;
SELECT hook, subject FROM app31.log ORDER BY n;   -- b1's attempt rolled back too
SELECT event, to_state FROM rt.hist(rt.uid('b1', 't31')) OFFSET 3;
SELECT subject, state, next_event, retries, last_error FROM lifecycle.overdue WHERE tenant = 't31';
SELECT subject, deadline_event, last_error FROM lifecycle.violations WHERE tenant = 't31';

-- Not retried before its time; then backoff doubles (1, 2, 4 minutes ...).
SELECT lifecycle_tick() AS transitions;
SELECT rt.travel('61 seconds');
BEGIN;
SELECT lifecycle_tick() AS transitions;
SELECT state, retries, date_trunc('second', retry_at - lifecycle_now()) AS retry_in
  FROM lifecycle.users WHERE tenant = 't31' AND subject = 'b1';
COMMIT;
SELECT rt.travel('1 minute');
SELECT lifecycle_tick() AS transitions;   -- still backing off
SELECT rt.travel('61 seconds');
BEGIN;
SELECT lifecycle_tick() AS transitions;
SELECT state, retries, date_trunc('second', retry_at - lifecycle_now()) AS retry_in
  FROM lifecycle.users WHERE tenant = 't31' AND subject = 'b1';
COMMIT;

-- Once the application accepts, the retry succeeds and the error clears.
DELETE FROM app31.fail;
SELECT rt.travel('4 minutes 1 second');
SELECT lifecycle_tick() AS transitions;
SELECT state, next_event, retries, retry_at, last_error
  FROM lifecycle.users WHERE tenant = 't31' AND subject = 'b1';
SELECT status FROM app31.accounts WHERE subject = 'b1';
SELECT event, from_state, to_state, timer FROM rt.hist(rt.uid('b1', 't31')) OFFSET 5;

-- The erase hook runs with the erase timer (and still sees the subject):
-- g1, g2, b1 are erased; api1 and api2 go dormant (late, so their archive
-- grace period counts from now).
TRUNCATE app31.log;
SELECT rt.travel('365 days');
SELECT lifecycle_tick() AS transitions;
SELECT hook, subject, tenant FROM app31.log ORDER BY hook, subject;
SELECT subject, status FROM app31.accounts ORDER BY subject;
SELECT count(*) AS erasures FROM lifecycle.erasures WHERE tenant = 't31';

-- Unqualified hook names resolve through the caller's search_path when
-- the policy is defined, and are stored qualified.
SET search_path = app31, public;
SELECT lifecycle_define_policy('t31-path', '{"hooks": {"archive": "on_archive"}}') AS version;
RESET search_path;
SELECT definition -> 'hooks' AS hooks FROM lifecycle.policies WHERE name = 't31-path';
TRUNCATE app31.log;
SELECT lifecycle_invite('p1', 'p1@example.com', 't31', 't31-path') > 0 AS invited;
SELECT lifecycle_archive('p1', 't31');
SELECT hook, subject FROM app31.log ORDER BY n;
-- Not on the search_path: not found.
SELECT lifecycle_define_policy('t31-path', '{"hooks": {"archive": "on_archive"}}');
\echo :LAST_ERROR_SQLSTATE
-- A function in public resolves with the default search_path.
CREATE FUNCTION public.t31_public_hook(subject text, tenant text) RETURNS int
LANGUAGE sql AS $$ SELECT 1 $$;
SELECT lifecycle_define_policy('t31-public', '{"hooks": {"restore": "t31_public_hook"}}') AS version;
SELECT definition -> 'hooks' AS hooks FROM lifecycle.policies WHERE name = 't31-public';

-- Invalid hooks: 22023 naming the key; no version is written.
CREATE FUNCTION app31.wrong_args(a int, b int) RETURNS void LANGUAGE sql AS $$ SELECT $$;
CREATE FUNCTION app31.three_args(a text, b text, c text) RETURNS void LANGUAGE sql AS $$ SELECT $$;
CREATE PROCEDURE app31.a_procedure(a text, b text) LANGUAGE sql AS $$ SELECT $$;
SELECT lifecycle_define_policy('t31-bad', '{"hooks": {"archive": "app31.no_such_function"}}');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy('t31-bad', '{"hooks": {"archive": "no_such_schema.on_archive"}}');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy('t31-bad', '{"hooks": {"erase": "app31.wrong_args"}}');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy('t31-bad', '{"hooks": {"erase": "app31.three_args"}}');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy('t31-bad', '{"hooks": {"restore": "app31.a_procedure"}}');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy('t31-bad', '{"hooks": {"restore": 42}}');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy('t31-bad', '{"hooks": {"restore": ""}}');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy('t31-bad', '{"hooks": {"restore": "app31.on_restore(text, text)"}}');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy('t31-bad', '{"hooks": {"restore": "a.b.c"}}');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy('t31-bad', '{"hooks": {"restore": "app31.on_restore; DROP TABLE app31.accounts"}}');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy('t31-bad', '{"hooks": {"delete": "app31.on_erase"}}');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy('t31-bad', '{"hooks": ["app31.on_erase"]}');
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_policy('t31-bad', '{"hooks": "app31.on_erase"}');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS bad_versions FROM lifecycle.policies WHERE name = 't31-bad';
SELECT count(*) AS accounts_table_intact FROM app31.accounts;

-- A hook function dropped after the policy was defined fails the
-- transitions that call it (42883), for those users only: other calls on
-- them and other users go on.  A function created again under the same
-- name is another function: the policy stays bound to the dropped one,
-- and the retries keep failing visibly (a new policy version fixes it).
CREATE FUNCTION app31.gone(subject text, tenant text) RETURNS void
LANGUAGE sql AS $$ INSERT INTO app31.log (hook, subject, tenant) VALUES ('gone', subject, tenant) $$;
SELECT lifecycle_define_policy('t31-gone', '{"archive_after": "2 days",
	"archive_reminders": [], "hooks": {"archive": "app31.gone"}}') AS version;
SELECT lifecycle_define_policy('t31-plain', '{"archive_after": "2 days",
	"archive_reminders": []}') AS version;
SELECT s, lifecycle_invite(s, s || '@example.com', 't31', p) > 0 AS invited
  FROM (VALUES ('gone1', 't31-gone'), ('gone2', 't31-gone'), ('plain1', 't31-plain')) v(s, p);
SELECT lifecycle_register(s, 't31') FROM unnest(ARRAY['gone1', 'gone2', 'plain1']) s;
SELECT lifecycle_complete(s, 't31') FROM unnest(ARRAY['gone1', 'plain1']) s;
DROP FUNCTION app31.gone(text, text);
TRUNCATE app31.log;
SELECT lifecycle_complete('gone2', 't31');
SELECT lifecycle_archive('gone2', 't31');
\echo :LAST_ERROR_SQLSTATE
SELECT rt.travel('2 days 1 minute');
SELECT lifecycle_tick() AS transitions;
SELECT subject, state, retries, last_error FROM lifecycle.users
 WHERE tenant = 't31' AND subject IN ('gone1', 'gone2', 'plain1') ORDER BY subject;
CREATE FUNCTION app31.gone(subject text, tenant text) RETURNS void
LANGUAGE sql AS $$ INSERT INTO app31.log (hook, subject, tenant) VALUES ('gone', subject, tenant) $$;
SELECT rt.travel('2 minutes');
SELECT lifecycle_tick() AS transitions;
SELECT subject, state, retries, last_error FROM lifecycle.users
 WHERE tenant = 't31' AND subject IN ('gone1', 'gone2', 'plain1') ORDER BY subject;
SELECT hook, subject FROM app31.log ORDER BY subject;

SELECT rt.cleanup('t31') AS erased;
SELECT count(*) AS pending_timers FROM lifecycle.users WHERE next_at IS NOT NULL;
