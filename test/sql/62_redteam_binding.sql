-- Red team: a hook is bound to the function checked when the policy was
-- defined (by OID), never looked up by name again.  Functions in pg_temp
-- are refused.  Renaming the hook function and creating another under its
-- old name changes nothing; dropping it makes the transition fail
-- visibly.  And DDL on functions while policies are loaded or in use (by
-- a hook, mid-batch) never makes the extension read freed memory (the
-- crash and the garbage policy names of issue 10).
CREATE ROLE cmp_b_owner LOGIN IN ROLE lifecycle_admin;
CREATE SCHEMA cmp_b AUTHORIZATION cmp_b_owner;
SET SESSION AUTHORIZATION cmp_b_owner;
CREATE TABLE cmp_b.calls (fn text, subject text);
CREATE FUNCTION cmp_b.on_archive(subject text, tenant text) RETURNS void
LANGUAGE sql AS $$ INSERT INTO cmp_b.calls VALUES ('original', subject) $$;

-- pg_temp, spelt either way, is refused (22023, naming the key).
CREATE FUNCTION pg_temp.cmp_b_tmp(subject text, tenant text) RETURNS void
LANGUAGE sql AS $$ SELECT NULL $$;
SELECT lifecycle_define_policy('cmp_b_tmp', '{"hooks": {"archive": "pg_temp.cmp_b_tmp"}}');
SELECT lifecycle_define_policy('cmp_b_tmp', jsonb_build_object('hooks',
	jsonb_build_object('erase', (SELECT nspname FROM pg_namespace
								  WHERE oid = pg_my_temp_schema()) || '.cmp_b_tmp')))
  IS NOT NULL AS defined_with_pg_temp_n;
SET search_path = pg_temp, public;
SELECT lifecycle_define_policy('cmp_b_tmp', '{"hooks": {"restore": "cmp_b_tmp"}}');
RESET search_path;
RESET SESSION AUTHORIZATION;
SELECT count(*) AS tmp_versions FROM lifecycle.policies WHERE name = 'cmp_b_tmp';
SET SESSION AUTHORIZATION cmp_b_owner;

SELECT lifecycle_define_policy('cmp_b', '{"archive_after": "1 day", "archive_reminders": [],
  "hooks": {"archive": "cmp_b.on_archive"}}') > 0 AS defined;
SELECT count(lifecycle_invite(s, s || '@example.com', 'cmp_b', 'cmp_b')) AS invited
  FROM unnest(ARRAY['bb1', 'bb2', 'bb3', 'bb4', 'bb5', 'bb6']) s;
SELECT count(lifecycle_register(s, 'cmp_b')) AS registered
  FROM unnest(ARRAY['bb1', 'bb2', 'bb3', 'bb4', 'bb5', 'bb6']) s;
SELECT lifecycle_archive('bb1', 'cmp_b');

-- Rename the hook function, create an impostor under the old name.
ALTER FUNCTION cmp_b.on_archive(text, text) RENAME TO on_archive_renamed;
CREATE FUNCTION cmp_b.on_archive(subject text, tenant text) RETURNS void
LANGUAGE sql AS $$ INSERT INTO cmp_b.calls VALUES ('impostor', subject) $$;
SELECT lifecycle_archive('bb2', 'cmp_b');
RESET SESSION AUTHORIZATION;
-- In another backend too (its policy cache is filled after the rename).
\c
SELECT lifecycle_archive('bb3', 'cmp_b');
SELECT fn, subject FROM cmp_b.calls ORDER BY subject;

-- A hook that renames a function and creates another under its old name
-- (pg_proc changes, with invalidations) for every user of a batch, while
-- the batch still holds the policies it loaded.
SET SESSION AUTHORIZATION cmp_b_owner;
CREATE SEQUENCE cmp_b.n;
CREATE FUNCTION cmp_b.victim(subject text, tenant text) RETURNS void
LANGUAGE sql AS $$ SELECT NULL $$;
CREATE FUNCTION cmp_b.churn(subject text, tenant text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	i bigint := pg_catalog.nextval('cmp_b.n');
BEGIN
	EXECUTE pg_catalog.format('ALTER FUNCTION cmp_b.victim(text, text) RENAME TO victim_%s', i);
	CREATE FUNCTION cmp_b.victim(subject text, tenant text) RETURNS void
	LANGUAGE sql AS 'SELECT NULL';
	INSERT INTO cmp_b.calls VALUES ('churn', subject);
END $$;
SELECT lifecycle_define_policy('cmp_b_churn', '{"archive_after": "1 day", "archive_reminders": [],
  "hooks": {"archive": "cmp_b.churn", "erase": "cmp_b.victim"}}') > 0 AS defined;
SELECT count(lifecycle_invite('bc' || i, 'bc' || i || '@example.com', 'cmp_b', p)) AS invited
  FROM generate_series(1, 8) i,
	   LATERAL (SELECT CASE WHEN i % 2 = 0 THEN 'cmp_b_churn' ELSE 'cmp_b' END AS p) x;
SELECT count(lifecycle_register('bc' || i, 'cmp_b')) AS registered FROM generate_series(1, 8) i;
SELECT count(lifecycle_complete('bc' || i, 'cmp_b')) AS completed FROM generate_series(1, 8) i;
RESET SESSION AUTHORIZATION;
SELECT lifecycle_travel('2 days') IS NOT NULL AS travelled;
SELECT lifecycle_tick() >= 8 AS ticked;
SELECT u.subject, u.state, u.policy, u.policy_version > 0 AS version_ok,
	   h.event, h.to_state
  FROM lifecycle.users u JOIN lifecycle.history h ON h.user_id = u.id
 WHERE u.tenant = 'cmp_b' AND u.subject LIKE 'bc%' AND h.to_state = 'archived'
 ORDER BY u.subject;
SELECT fn, count(*) FROM cmp_b.calls WHERE subject LIKE 'bc%' GROUP BY fn ORDER BY fn;

-- Dropped: the transition fails visibly, and the impostor under the old
-- name is never called in its place.
DROP FUNCTION cmp_b.on_archive_renamed(text, text);
SELECT lifecycle_archive('bb4', 'cmp_b');
SELECT state FROM lifecycle_status('bb4', 'cmp_b');
SET SESSION AUTHORIZATION cmp_b_owner;
SELECT lifecycle_complete(s, 'cmp_b') FROM unnest(ARRAY['bb5', 'bb6']) s;
RESET SESSION AUTHORIZATION;
SELECT lifecycle_travel('2 days') IS NOT NULL AS travelled;
SELECT lifecycle_tick() >= 0 AS ticked;
SELECT subject, state, retries > 0 AS retried, last_error IS NOT NULL AS has_error
  FROM lifecycle.overdue WHERE tenant = 'cmp_b' ORDER BY subject;
SELECT count(*) AS impostor_calls FROM cmp_b.calls WHERE fn = 'impostor';

-- Clean up.
SELECT count(lifecycle_erase(subject, tenant)) AS erased FROM lifecycle.users
 WHERE tenant = 'cmp_b' AND state <> 'erased';
DROP SCHEMA cmp_b CASCADE;
DROP ROLE cmp_b_owner;
