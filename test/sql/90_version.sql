-- Between a package upgrade and ALTER EXTENSION lifecycle UPDATE, the new
-- library meets a schema of another version (test/t/500_upgrade.pl takes
-- that path for real, from 0.1.0).  Every call that reads or writes the
-- extension's tables then fails with 55000 naming the update, and leaves
-- nothing behind; what touches no table works.  Here the installed version
-- is faked in pg_extension, for new sessions (src/version.c).
SELECT extversion AS lc_version FROM pg_extension WHERE extname = 'lifecycle' \gset
UPDATE pg_extension SET extversion = '0.0.1' WHERE extname = 'lifecycle';
\c
CREATE FUNCTION pg_temp.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	st text;
	msg text;
	hint text;
BEGIN
	EXECUTE sql;
	RETURN 'works';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
		hint = PG_EXCEPTION_HINT;
	RETURN st || ': ' || regexp_replace(msg, 'version [0-9.]+', 'version N', 'g')
		|| ' / ' || hint;
END $$;
SELECT q AS call, pg_temp.try(q) AS outcome FROM (VALUES
	('SELECT lifecycle_invite(''ver1'', ''ver1@example.com'', ''ver'')'),
	('SELECT lifecycle_touch(''ver1'', ''ver'')'),
	('SELECT lifecycle_define_policy(''ver'', ''{}'')'),
	('SELECT lifecycle_tick()'),
	('SELECT lifecycle_now()'),
	('SELECT count(*) FROM lifecycle.overdue'),
	('SELECT count(*) FROM lifecycle.worker_stats')) v(q);
SELECT count(*) AS users_left FROM lifecycle.users WHERE tenant = 'ver';
-- The update done (here: the version put back), calls work again.
UPDATE pg_extension SET extversion = :'lc_version' WHERE extname = 'lifecycle';
\c
SELECT lifecycle_invite('ver1', 'ver1@example.com', 'ver') > 0 AS invited;
SELECT count(*) AS users FROM lifecycle.users WHERE tenant = 'ver';
