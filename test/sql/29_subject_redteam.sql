-- Red team, instances of custom workflows (issue 18): a role limited to
-- one tenant cannot start, signal, read (lifecycle_instances,
-- lifecycle.instances) or export another tenant's instances, nor hold,
-- release, update or erase that subject, as itself or after SET ROLE; a
-- custom workflow's hooks run sandboxed as the user workflow's (as the
-- function's owner, SECURITY_RESTRICTED_OPERATION, a GUC nest level of
-- their own, the owner's tenant limits); a hook that raises leaves the
-- instance due with backoff and its error in lifecycle.overdue; nothing
-- in a definition (names, templates, hints, description) is run as SQL.
\set SHOW_CONTEXT never
SET timezone = 'UTC';
CREATE TABLE public.t29_canary (i int);
INSERT INTO public.t29_canary VALUES (1);
GRANT SELECT ON public.t29_canary TO PUBLIC;

-- A workflow whose texts are SQL an attacker would like run.
\set evil '{"description": "x''); DROP TABLE public.t29_canary; --", "messages": {"opened": {"subject": "''; DROP TABLE public.t29_canary; --", "text": "{{attrs.name}}''); DROP TABLE public.t29_canary; -- $$ \\\\gexec"}}, "states": {"open": {"hint": "''); DROP TABLE public.t29_canary; SELECT (''", "timer": {"event": "close_due", "after": "10 days", "to": "closed", "hook": "close", "deadline": "case"}}, "closed": {"timer": {"event": "purge", "after": "10 days", "from": "due", "to": "erased"}}}, "events": {"open_case": [{"from": ["none"], "to": "open", "message": "opened"}], "reopen": [{"from": ["open"], "effect": "refuse", "hint": "''); DROP TABLE public.t29_canary; --"}]}}'
SELECT lifecycle_define_workflow('t29_case', :'evil') AS version;
SELECT count(*) AS canary FROM public.t29_canary;
-- Names are names: a state, event or deadline that is not one is refused.
SELECT lifecycle_define_workflow('t29_bad', replace(:'evil', '"closed"', '"closed''); DROP TABLE public.t29_canary; --"')::jsonb);
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_workflow('t29_bad', replace(:'evil', '"reopen"', '"re open"')::jsonb);
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_workflow('t29_bad', replace(:'evil', '"case"', '"ca;se"')::jsonb);
\echo :LAST_ERROR_SQLSTATE
SELECT lifecycle_define_workflow('t29''; DROP TABLE public.t29_canary; --', :'evil');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS canary FROM public.t29_canary;

-- Roles: an application and an admin limited to tenant t29A.
CREATE ROLE t29_app LOGIN IN ROLE lifecycle_app;
CREATE ROLE t29_adm LOGIN IN ROLE lifecycle_admin;
CREATE ROLE t29_aud LOGIN IN ROLE lifecycle_auditor;
SELECT lifecycle_grant_tenant(r, 't29A')
  FROM unnest(ARRAY['t29_app', 't29_adm', 't29_aud']) r;
-- Tenant B's subject: a user lifecycle and a case.
SELECT lifecycle_invite('vb1', 'vb1@example.com', 't29B') > 0 AS invited;
SELECT lifecycle_start('t29_case', 'vb1', 't29B', attrs => '{"name": "Vic"}') AS vb1_case \gset
CREATE TEMP TABLE t29_before AS
SELECT id, state, held, email, policy FROM lifecycle.users WHERE tenant = 't29B';
GRANT SELECT ON t29_before TO PUBLIC;
\set VERBOSITY terse

-- The limited application, as itself and after SET ROLE lifecycle_app.
SET SESSION AUTHORIZATION t29_app;
SELECT lifecycle_start('t29_case', 'va1', 't29A') > 0 AS own_tenant_works;
SELECT lifecycle_start('t29_case', 'vb9', 't29B');
SELECT lifecycle_start('t29_case', 'vb1', 't29B');
SELECT lifecycle_signal('t29_case', 'vb1', 'reopen', 't29B');
SELECT * FROM lifecycle_instances('vb1', 't29B');
SELECT lifecycle_export('vb1', 't29B') IS NOT NULL;
SELECT lifecycle_update('vb1', 't29B', email => 'mine@example.com');
SELECT lifecycle_erase('vb1', 't29B');
SET ROLE lifecycle_app;
SELECT lifecycle_start('t29_case', 'vb9', 't29B');
SELECT lifecycle_signal('t29_case', 'vb1', 'reopen', 't29B');
SELECT * FROM lifecycle_instances('vb1', 't29B');
SELECT lifecycle_export('vb1', 't29B') IS NOT NULL;
SELECT lifecycle_update('vb1', 't29B', email => 'mine@example.com');
SELECT lifecycle_erase('vb1', 't29B');
RESET ROLE;
RESET SESSION AUTHORIZATION;

-- The limited admin: hold, release, erase, update, export, as itself and
-- after SET ROLE lifecycle_admin.
SET SESSION AUTHORIZATION t29_adm;
SELECT lifecycle_hold('vb1', 't29B', 'mine');
SELECT lifecycle_release('vb1', 't29B');
SELECT lifecycle_signal('t29_case', 'vb1', 'reopen', 't29B');
SET ROLE lifecycle_admin;
SELECT lifecycle_hold('vb1', 't29B', 'mine');
SELECT lifecycle_release('vb1', 't29B');
SELECT lifecycle_erase('vb1', 't29B');
SELECT lifecycle_export('vb1', 't29B') IS NOT NULL;
SELECT * FROM lifecycle_instances('vb1', 't29B');
RESET ROLE;
RESET SESSION AUTHORIZATION;

-- The limited auditor reads lifecycle.instances of its tenant only, as
-- itself and after SET ROLE lifecycle_auditor.
SET SESSION AUTHORIZATION t29_aud;
SELECT tenant, workflow, state FROM lifecycle.instances
 WHERE tenant IN ('t29A', 't29B') ORDER BY tenant, id;
SET ROLE lifecycle_auditor;
SELECT count(*) AS b_rows FROM lifecycle.instances WHERE tenant = 't29B';
SELECT * FROM lifecycle_instances('vb1', 't29B');
RESET ROLE;
RESET SESSION AUTHORIZATION;
\set VERBOSITY default
-- Tenant B is as it was.
SELECT count(*) AS changed FROM lifecycle.users u JOIN t29_before b USING (id)
 WHERE (u.state, u.held, u.email, u.policy) IS DISTINCT FROM (b.state, b.held, b.email, b.policy);
SELECT count(*) AS b_instances FROM lifecycle.users WHERE tenant = 't29B';
SELECT count(*) AS b_exports FROM lifecycle.history h JOIN lifecycle.users u ON u.id = h.user_id
 WHERE u.tenant = 't29B' AND h.event = 'export';

-- The definition's texts are data: the refusal's hint is the text, the
-- canary lives.
SELECT lifecycle_signal('t29_case', 'vb1', 'reopen', 't29B');
SELECT count(*) AS canary FROM public.t29_canary;

-- Hooks of the custom workflow: written by a limited admin who owns a
-- schema, fired by a superuser's tick (as by the worker).
CREATE ROLE t29_owner LOGIN IN ROLE lifecycle_admin;
CREATE SCHEMA t29 AUTHORIZATION t29_owner;
SET SESSION AUTHORIZATION t29_owner;
CREATE TABLE t29.log (what text, result text);
CREATE FUNCTION t29.try(what text, sql text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	BEGIN
		EXECUTE sql;
		INSERT INTO t29.log VALUES (what, '00000');
	EXCEPTION WHEN others THEN
		INSERT INTO t29.log VALUES (what, SQLSTATE);
	END;
END $$;
CREATE FUNCTION t29.on_close(subject text, tenant text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO t29.log VALUES ('runs as', current_user);
	PERFORM pg_catalog.set_config('search_path', 't29, public, pg_catalog', false);
	PERFORM pg_catalog.set_config('work_mem', '77kB', false);
	PERFORM t29.try('SET ROLE', $q$SET ROLE lifecycle_admin$q$);
	PERFORM t29.try('create a temp table', $q$CREATE TEMP TABLE t29_t (i int)$q$);
	PERFORM t29.try('start in tenant B',
		$q$SELECT public.lifecycle_start('t29_case', 'vb7', 't29B')$q$);
	PERFORM t29.try('hold tenant B',
		$q$SELECT public.lifecycle_hold('vb1', 't29B', 'mine')$q$);
	PERFORM t29.try('export tenant B',
		$q$SELECT public.lifecycle_export('vb1', 't29B')$q$);
	PERFORM t29.try('read tenant B',
		$q$SELECT * FROM public.lifecycle_instances('vb1', 't29B')$q$);
	PERFORM t29.try('start in tenant A',
		$q$SELECT public.lifecycle_start('t29_case', 'va7', 't29A')$q$);
END $$;
-- The erase hook raises, with the subject in its message.
CREATE FUNCTION t29.on_erase(subject text, tenant text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'refusing to erase %', subject;
END $$;
SELECT lifecycle_define_policy('t29_case', '{"hooks": {"close": "t29.on_close", "erase": "t29.on_erase"}}') > 0 AS defined;
RESET SESSION AUTHORIZATION;
SELECT lifecycle_grant_tenant('t29_owner', 't29A');

-- The close hook fires at the tick for va2 alone: va1 and vb1 keep the
-- policy version they started with, which binds no hook.
SELECT lifecycle_start('t29_case', 'va2', 't29A') > 0 AS started;
SHOW search_path;
SELECT rt.travel('11 days') IS NOT NULL AS travelled;
SELECT lifecycle_tick() >= 3 AS ticked;
SELECT pg_catalog.current_setting('search_path') AS search_path,
	   pg_catalog.current_setting('work_mem') AS work_mem;
SELECT what, result, count(*) AS times FROM t29.log GROUP BY what, result ORDER BY what, result;
SELECT tenant, subject, workflow, state FROM lifecycle.users
 WHERE tenant IN ('t29A', 't29B') AND workflow = 't29_case' ORDER BY tenant, subject;

-- The purge timer erases by retention without the erase hook; the
-- subject-wide erasure runs it: it raises, nothing is erased, the
-- caller sees the hook and the policy, never the hook's text.
SELECT lifecycle_erase('va2', 't29A', 'asked to');
SELECT state, subject IS NOT NULL AS subject_kept FROM lifecycle.users
 WHERE tenant = 't29A' AND subject = 'va2';
-- A timer edge with the failing hook: the worker's path.  The instance
-- stays due, retried with backoff, its error (with the subject: it is
-- erased with the row) in lifecycle.overdue.
SET SESSION AUTHORIZATION t29_owner;
CREATE OR REPLACE FUNCTION t29.on_close(subject text, tenant text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'cannot close the case of %', subject;
END $$;
RESET SESSION AUTHORIZATION;
SELECT lifecycle_start('t29_case', 'va3', 't29A') AS va3 \gset
SELECT rt.travel('11 days') IS NOT NULL AS travelled;
SELECT lifecycle_tick() >= 0 AS ticked;
SELECT state, retries, retry_at > lifecycle_now() AS backing_off, last_error
  FROM lifecycle.users WHERE id = :va3;
SELECT state, next_event, retries, last_error FROM lifecycle.overdue WHERE id = :va3;
SELECT lifecycle_tick() >= 0 AS ticked;
SELECT retries FROM lifecycle.users WHERE id = :va3;
SELECT rt.travel('2 minutes') IS NOT NULL AS travelled;
SELECT lifecycle_tick() >= 0 AS ticked;
SELECT retries, retry_at > lifecycle_now() AS backing_off FROM lifecycle.users WHERE id = :va3;

-- Clean up: hooks that do nothing, then erase everything.
SET SESSION AUTHORIZATION t29_owner;
CREATE OR REPLACE FUNCTION t29.on_close(subject text, tenant text) RETURNS void
LANGUAGE sql AS $$ SELECT $$;
CREATE OR REPLACE FUNCTION t29.on_erase(subject text, tenant text) RETURNS void
LANGUAGE sql AS $$ SELECT $$;
RESET SESSION AUTHORIZATION;
SELECT count(*) AS erased FROM (
  SELECT DISTINCT tenant, subject FROM lifecycle.users
   WHERE tenant IN ('t29A', 't29B') AND subject IS NOT NULL) s,
  LATERAL lifecycle_erase(s.subject, s.tenant, 'test cleanup') e;
SELECT count(*) AS canary FROM public.t29_canary;
SELECT count(*) AS live FROM lifecycle.users WHERE tenant IN ('t29A', 't29B') AND state <> 'erased';
DELETE FROM lifecycle.tenant_grants WHERE role_name IN ('t29_app', 't29_adm', 't29_aud', 't29_owner');
DROP SCHEMA t29 CASCADE;
DROP OWNED BY t29_owner;
DROP ROLE t29_app, t29_adm, t29_aud, t29_owner;
DROP TABLE public.t29_canary;
