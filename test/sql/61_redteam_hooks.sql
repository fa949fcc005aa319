-- Red team: hooks.  A lifecycle_admin member who owns a schema writes the
-- hooks.  They run as that owner, sandboxed as PostgreSQL sandboxes index
-- expressions (SECURITY_RESTRICTED_OPERATION, a GUC nest level of their
-- own): nothing they set outlives them, operators they plant never run as
-- anyone else, and lifecycle functions they call act as the owner, with
-- the owner's tenant limits.  Here the hooks are fired by a superuser
-- session (lifecycle_archive, lifecycle_tick), as in the worker.
CREATE ROLE cmp_h_owner LOGIN IN ROLE lifecycle_admin;
CREATE SCHEMA cmp_h AUTHORIZATION cmp_h_owner;
GRANT CREATE ON SCHEMA public TO cmp_h_owner;
-- Somebody else's data, and a superuser's function with the hook signature.
SELECT lifecycle_invite('hb1', 'hb1@example.com', 'cmp_hB') > 0 AS invited;
CREATE FUNCTION public.cmp_h_su(subject text, tenant text) RETURNS void
LANGUAGE sql AS $$ SELECT NULL $$;

SET SESSION AUTHORIZATION cmp_h_owner;
CREATE TABLE cmp_h.pwned (what text, who name, su boolean);
CREATE TABLE cmp_h.log (hook text, what text, result text);
GRANT ALL ON cmp_h.pwned, cmp_h.log TO PUBLIC;
-- Runs as whoever calls it; as a superuser it makes its owner one.
CREATE FUNCTION cmp_h.pwn(what text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO cmp_h.pwned SELECT what, current_user, r.rolsuper
	  FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user;
	IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r
		 WHERE r.rolname OPERATOR(pg_catalog.=) current_user) THEN
		ALTER ROLE cmp_h_owner SUPERUSER;
	END IF;
	RETURN true;
END $$;
-- Operators the extension's statements use, planted in the owner's schema
-- and in public.
CREATE FUNCTION cmp_h.texteq(text, text) RETURNS boolean LANGUAGE sql
AS $$ SELECT cmp_h.pwn('cmp_h.= text'); SELECT pg_catalog.texteq($1, $2) $$;
CREATE OPERATOR cmp_h.= (LEFTARG = text, RIGHTARG = text, FUNCTION = cmp_h.texteq);
CREATE FUNCTION cmp_h.int8eq(bigint, bigint) RETURNS boolean LANGUAGE sql
AS $$ SELECT cmp_h.pwn('cmp_h.= bigint'); SELECT pg_catalog.int8eq($1, $2) $$;
CREATE OPERATOR cmp_h.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = cmp_h.int8eq);
CREATE FUNCTION cmp_h.tsle(timestamptz, timestamptz) RETURNS boolean LANGUAGE sql
AS $$ SELECT cmp_h.pwn('cmp_h.<= timestamptz'); SELECT pg_catalog.timestamptz_le($1, $2) $$;
CREATE OPERATOR cmp_h.<= (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = cmp_h.tsle);
CREATE FUNCTION public.cmp_h_texteq(text, text) RETURNS boolean LANGUAGE sql
AS $$ SELECT cmp_h.pwn('public.= text'); SELECT pg_catalog.texteq($1, $2) $$;
CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.cmp_h_texteq);

-- Hook 1: changes the session's settings (no SET clause of its own, so
-- nothing but the sandbox would undo them).
CREATE FUNCTION cmp_h.set_path(subject text, tenant text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_catalog.set_config('search_path', 'cmp_h, public, pg_catalog', false);
	PERFORM pg_catalog.set_config('work_mem', '77kB', false);
	PERFORM pg_catalog.set_config('statement_timeout', '1', false);
END $$;
-- Hook 2: the same as SECURITY DEFINER.
CREATE FUNCTION cmp_h.set_path_sd(subject text, tenant text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
	PERFORM pg_catalog.set_config('search_path', 'cmp_h, public, pg_catalog', false);
	PERFORM pg_catalog.set_config('work_mem', '78kB', false);
END $$;
-- Hook 3: tries, one by one, what its owner may not do, and records the
-- SQLSTATE of each attempt (00000: it worked).
CREATE FUNCTION cmp_h.try(what text, sql text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	BEGIN
		EXECUTE sql;
		INSERT INTO cmp_h.log VALUES ('try', what, '00000');
	EXCEPTION WHEN others THEN
		INSERT INTO cmp_h.log VALUES ('try', what, SQLSTATE);
	END;
END $$;
CREATE FUNCTION cmp_h.escalate(subject text, tenant text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO cmp_h.log VALUES ('escalate', 'runs as', current_user);
	PERFORM cmp_h.try('define a policy with a superuser''s hook',
		$q$SELECT public.lifecycle_define_policy('cmp_h_evil', '{"hooks": {"erase": "public.cmp_h_su"}}')$q$);
	PERFORM cmp_h.try('grant itself tenant B',
		$q$SELECT public.lifecycle_grant_tenant('cmp_h_owner', 'cmp_hB')$q$);
	PERFORM cmp_h.try('revoke its own limit',
		$q$SELECT public.lifecycle_revoke_tenant('cmp_h_owner', 'cmp_hA')$q$);
	PERFORM cmp_h.try('erase a user of tenant B',
		$q$SELECT public.lifecycle_erase('hb1', 'cmp_hB')$q$);
	PERFORM cmp_h.try('hold a user of tenant B',
		$q$SELECT public.lifecycle_hold('hb1', 'cmp_hB', 'mine')$q$);
	PERFORM cmp_h.try('read tenant B',
		$q$SELECT * FROM public.lifecycle_status('hb1', 'cmp_hB')$q$);
	PERFORM cmp_h.try('move the clock',
		$q$SELECT public.lifecycle_travel('1 day')$q$);
	PERFORM cmp_h.try('add a channel',
		$q$SELECT public.lifecycle_add_channel('cmp_h_ch', 'webhook', 'http://127.0.0.1:9/x', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')$q$);
	PERFORM cmp_h.try('SET ROLE', $q$SET ROLE lifecycle_admin$q$);
	PERFORM cmp_h.try('set_config role',
		$q$SELECT pg_catalog.set_config('role', 'lifecycle_admin', false)$q$);
	PERFORM cmp_h.try('SET SESSION AUTHORIZATION', $q$SET SESSION AUTHORIZATION DEFAULT$q$);
	PERFORM cmp_h.try('create a temp table', $q$CREATE TEMP TABLE cmp_h_t (i int)$q$);
	PERFORM cmp_h.try('LISTEN', $q$LISTEN cmp_h$q$);
	-- Its own tenant works, as itself.
	PERFORM cmp_h.try('invite in tenant A',
		$q$SELECT public.lifecycle_invite('ha9', 'ha9@example.com', 'cmp_hA')$q$);
END $$;
SELECT lifecycle_define_policy('cmp_h1', '{"hooks": {"archive": "cmp_h.set_path"}}') > 0 AS defined;
SELECT lifecycle_define_policy('cmp_h2', '{"hooks": {"archive": "cmp_h.set_path_sd"}}') > 0 AS defined;
SELECT lifecycle_define_policy('cmp_h3', '{"hooks": {"archive": "cmp_h.escalate"}}') > 0 AS defined;
SELECT lifecycle_define_policy('cmp_h4', '{"archive_after": "1 day", "archive_reminders": [],
  "hooks": {"archive": "cmp_h.set_path"}}') > 0 AS defined;
SELECT count(lifecycle_invite(s, s || '@example.com', 'cmp_hA', p)) AS invited
  FROM (VALUES ('ha1', 'cmp_h1'), ('ha2', 'cmp_h2'), ('ha3', 'cmp_h3'),
			   ('ha4', 'cmp_h4'), ('ha5', 'cmp_h4'), ('ha6', 'cmp_h4')) v(s, p);
SELECT count(lifecycle_register(s, 'cmp_hA')) AS registered
  FROM unnest(ARRAY['ha1', 'ha2', 'ha3', 'ha4', 'ha5', 'ha6']) s;
SELECT count(lifecycle_complete(s, 'cmp_hA')) AS completed
  FROM unnest(ARRAY['ha4', 'ha5', 'ha6']) s;
RESET SESSION AUTHORIZATION;
REVOKE CREATE ON SCHEMA public FROM cmp_h_owner;
-- From now on the owner is limited to tenant A.
SELECT lifecycle_grant_tenant('cmp_h_owner', 'cmp_hA');

-- A superuser archives (the hook runs): the session's settings survive.
SHOW search_path;
SELECT lifecycle_archive('ha1', 'cmp_hA');
SELECT pg_catalog.current_setting('search_path') AS search_path,
	   pg_catalog.current_setting('work_mem') AS work_mem,
	   pg_catalog.current_setting('statement_timeout') AS statement_timeout;
SELECT lifecycle_archive('ha2', 'cmp_hA');
SELECT pg_catalog.current_setting('search_path') AS search_path,
	   pg_catalog.current_setting('work_mem') AS work_mem;
-- Within one transaction too, and for statements after the hook in it.
BEGIN;
SELECT lifecycle_restore('ha1', 'cmp_hA');
SELECT lifecycle_archive('ha1', 'cmp_hA');
SELECT lifecycle_hold('ha2', 'cmp_hA', 'after the hook');
SELECT pg_catalog.current_setting('search_path') AS search_path;
COMMIT;
-- The timer path: three users archived by one batch, each hook setting
-- the path before the next user's statements.
SELECT lifecycle_travel('2 days') IS NOT NULL AS travelled;
SELECT lifecycle_tick() >= 3 AS ticked;
SELECT pg_catalog.current_setting('search_path') AS search_path;
SELECT subject, state FROM lifecycle.users WHERE tenant OPERATOR(pg_catalog.=) 'cmp_hA'
   AND subject OPERATOR(pg_catalog.~) '^ha[1-6]$' ORDER BY subject;

-- (Without the sandbox, the settings are the hook's now: undo them so
-- that what follows tests hook 3 alone.)
RESET search_path;
RESET work_mem;
RESET statement_timeout;
-- Hook 3: lifecycle functions inside a hook act as its owner.
SELECT lifecycle_archive('ha3', 'cmp_hA');
SELECT what, result FROM cmp_h.log WHERE hook OPERATOR(pg_catalog.=) 'try' ORDER BY what;
SELECT result AS hook_runs_as FROM cmp_h.log WHERE what OPERATOR(pg_catalog.=) 'runs as';
SELECT count(*) AS evil_policies FROM lifecycle.policies WHERE name OPERATOR(pg_catalog.=) 'cmp_h_evil';
SELECT state, held FROM lifecycle.users WHERE subject OPERATOR(pg_catalog.=) 'hb1';
SELECT role_name, tenant FROM lifecycle.tenant_grants
 WHERE role_name OPERATOR(pg_catalog.=) 'cmp_h_owner';

-- No planted operator ran, and nobody became superuser.
SELECT what, who, su FROM cmp_h.pwned;
SELECT rolsuper FROM pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'cmp_h_owner';

-- Positive control: the planted operators are live for SQL that puts
-- their schema on its own path (here as the owner: one row, not super).
SET SESSION AUTHORIZATION cmp_h_owner;
SET search_path = cmp_h, pg_catalog;
SELECT 'a'::text = 'a'::text AS planted_live;
RESET search_path;
RESET SESSION AUTHORIZATION;
SELECT what, who, su FROM cmp_h.pwned;
DELETE FROM cmp_h.pwned;

-- Clean up.
\set VERBOSITY terse
SELECT lifecycle_release('ha2', 'cmp_hA');
\set VERBOSITY default
SELECT lifecycle_erase(subject, tenant) > 0 FROM lifecycle.users
 WHERE tenant IN ('cmp_hA', 'cmp_hB') AND state <> 'erased' AND NOT held;
DELETE FROM lifecycle.tenant_grants WHERE role_name = 'cmp_h_owner';
ALTER ROLE cmp_h_owner NOSUPERUSER;
DROP SCHEMA cmp_h CASCADE;
DROP FUNCTION public.cmp_h_su(text, text);
DROP FUNCTION public.cmp_h_texteq(text, text) CASCADE;
DROP OWNED BY cmp_h_owner;
DROP ROLE cmp_h_owner;
