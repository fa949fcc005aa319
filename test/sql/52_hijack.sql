-- Hardened install: an unprivileged user plants functions and operators
-- in public (before CREATE EXTENSION and after) and in pg_temp that shadow
-- what the extension calls; callers with the worst search_path (public
-- before pg_catalog) use the whole API; none of the planted objects runs.
-- Runs in a database of its own, so the planting precedes the install.
CREATE DATABASE cmp_hijack;
\c cmp_hijack
CREATE ROLE cmp_evil LOGIN;
CREATE ROLE cmp_hj_app LOGIN IN ROLE lifecycle_app;
CREATE ROLE cmp_hj_admin LOGIN IN ROLE lifecycle_admin;
CREATE ROLE cmp_hj_auditor LOGIN IN ROLE lifecycle_auditor;
-- A legacy database: everybody may create in public.
GRANT CREATE ON SCHEMA public TO PUBLIC;
-- Every planted object writes here when it runs (as whoever runs it).
CREATE TABLE public.cmp_pwned (what text, who name DEFAULT current_user);
GRANT INSERT ON public.cmp_pwned TO PUBLIC;

SET ROLE cmp_evil;
CREATE FUNCTION public.cmp_log(what text) RETURNS boolean
LANGUAGE sql AS $$ INSERT INTO public.cmp_pwned (what) VALUES (what) RETURNING true $$;
-- Shadows of functions the extension calls (same or better-matching
-- signatures), each logging before doing the real work.
CREATE FUNCTION public.now() RETURNS timestamptz
LANGUAGE sql AS $$ SELECT public.cmp_log('now'); SELECT pg_catalog.now() $$;
CREATE FUNCTION public.lower(text) RETURNS text
LANGUAGE sql AS $$ SELECT public.cmp_log('lower'); SELECT pg_catalog.lower($1) $$;
CREATE FUNCTION public.btrim(text) RETURNS text
LANGUAGE sql AS $$ SELECT public.cmp_log('btrim'); SELECT pg_catalog.btrim($1) $$;
CREATE FUNCTION public.unnest(bigint[]) RETURNS SETOF bigint
LANGUAGE sql AS $$ SELECT public.cmp_log('unnest'); SELECT pg_catalog.unnest($1) $$;
CREATE FUNCTION public.unnest(text[]) RETURNS SETOF text
LANGUAGE sql AS $$ SELECT public.cmp_log('unnest'); SELECT pg_catalog.unnest($1) $$;
CREATE FUNCTION public.jsonb_build_object(VARIADIC text[]) RETURNS jsonb
LANGUAGE sql AS $$ SELECT public.cmp_log('jsonb_build_object'); SELECT '{}'::jsonb $$;
CREATE FUNCTION public.format(text, VARIADIC text[]) RETURNS text
LANGUAGE sql AS $$ SELECT public.cmp_log('format'); SELECT pg_catalog.format($1, VARIADIC $2) $$;
CREATE FUNCTION public.quote_ident(text) RETURNS text
LANGUAGE sql AS $$ SELECT public.cmp_log('quote_ident'); SELECT pg_catalog.quote_ident($1) $$;
CREATE FUNCTION public.current_setting(text) RETURNS text
LANGUAGE sql AS $$ SELECT public.cmp_log('current_setting'); SELECT 'none'::text $$;
CREATE FUNCTION public.session_user() RETURNS name
LANGUAGE sql AS $$ SELECT public.cmp_log('session_user'); SELECT 'postgres'::name $$;
CREATE FUNCTION public.current_schemas(boolean) RETURNS name[]
LANGUAGE sql AS $$ SELECT public.cmp_log('current_schemas'); SELECT pg_catalog.current_schemas($1) $$;
CREATE FUNCTION public.pg_has_role(name, name, text) RETURNS boolean
LANGUAGE sql AS $$ SELECT public.cmp_log('pg_has_role'); SELECT true $$;
CREATE FUNCTION public.pg_has_role(name, oid, text) RETURNS boolean
LANGUAGE sql AS $$ SELECT public.cmp_log('pg_has_role'); SELECT true $$;
CREATE FUNCTION public.octet_length(text) RETURNS int
LANGUAGE sql AS $$ SELECT public.cmp_log('octet_length'); SELECT 1 $$;
CREATE FUNCTION public.enum_range(anyenum) RETURNS anyarray
LANGUAGE sql AS $$ SELECT public.cmp_log('enum_range'); SELECT pg_catalog.enum_range($1) $$;
-- Operators on text, name, bigint, timestamptz and jsonb.
CREATE FUNCTION public.cmp_texteq(text, text) RETURNS boolean
LANGUAGE sql AS $$ SELECT public.cmp_log('= text'); SELECT pg_catalog.texteq($1, $2) $$;
CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.cmp_texteq);
CREATE FUNCTION public.cmp_textne(text, text) RETURNS boolean
LANGUAGE sql AS $$ SELECT public.cmp_log('<> text'); SELECT pg_catalog.textne($1, $2) $$;
CREATE OPERATOR public.<> (LEFTARG = text, RIGHTARG = text, FUNCTION = public.cmp_textne);
CREATE FUNCTION public.cmp_namecat(name, text) RETURNS boolean
LANGUAGE sql AS $$ SELECT public.cmp_log('= name'); SELECT $1::text = $2 $$;
CREATE OPERATOR public.= (LEFTARG = name, RIGHTARG = text, FUNCTION = public.cmp_namecat);
CREATE FUNCTION public.cmp_int8eq(bigint, bigint) RETURNS boolean
LANGUAGE sql AS $$ SELECT public.cmp_log('= bigint'); SELECT pg_catalog.int8eq($1, $2) $$;
CREATE OPERATOR public.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = public.cmp_int8eq);
CREATE FUNCTION public.cmp_tsle(timestamptz, timestamptz) RETURNS boolean
LANGUAGE sql AS $$ SELECT public.cmp_log('<= timestamptz'); SELECT pg_catalog.timestamptz_le($1, $2) $$;
CREATE OPERATOR public.<= (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = public.cmp_tsle);
CREATE FUNCTION public.cmp_tslt(timestamptz, timestamptz) RETURNS boolean
LANGUAGE sql AS $$ SELECT public.cmp_log('< timestamptz'); SELECT pg_catalog.timestamptz_lt($1, $2) $$;
CREATE OPERATOR public.< (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = public.cmp_tslt);
CREATE FUNCTION public.cmp_tsmi(timestamptz, timestamptz) RETURNS interval
LANGUAGE sql AS $$ SELECT public.cmp_log('- timestamptz'); SELECT pg_catalog.timestamptz_mi($1, $2) $$;
CREATE OPERATOR public.- (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = public.cmp_tsmi);
CREATE FUNCTION public.cmp_textcat(text, text) RETURNS text
LANGUAGE sql AS $$ SELECT public.cmp_log('|| text'); SELECT pg_catalog.textcat($1, $2) $$;
CREATE OPERATOR public.|| (LEFTARG = text, RIGHTARG = text, FUNCTION = public.cmp_textcat);
CREATE FUNCTION public.cmp_jsonget(jsonb, text) RETURNS text
LANGUAGE sql AS $$ SELECT public.cmp_log('->> jsonb'); SELECT pg_catalog.jsonb_object_field_text($1, $2) $$;
CREATE OPERATOR public.->> (LEFTARG = jsonb, RIGHTARG = text, FUNCTION = public.cmp_jsonget);
RESET ROLE;

-- The install itself, with public on the search path (as always for
-- CREATE EXTENSION into public), runs none of them.
CREATE EXTENSION lifecycle;
SELECT count(*) AS planted_ran_at_install FROM public.cmp_pwned;

-- More planted after the install, now that the extension's types exist.
SET ROLE cmp_evil;
CREATE FUNCTION public.coalesce_(text) RETURNS text LANGUAGE sql AS $$ SELECT $1 $$;
CREATE FUNCTION public.jsonb_build_object(text, text, text, text, text, text,
	text, text, text, text, text, jsonb, text, text) RETURNS jsonb
LANGUAGE sql AS $$ SELECT public.cmp_log('jsonb_build_object 14'); SELECT '{}'::jsonb $$;
CREATE FUNCTION public.lifecycle_now(integer) RETURNS timestamptz
LANGUAGE sql AS $$ SELECT public.cmp_log('lifecycle_now(int)'); SELECT pg_catalog.now() $$;
RESET ROLE;

-- The application, with public first on its search path and its own
-- pg_temp shadows (functions, and tables named like the extension's).
SET ROLE cmp_hj_app;
CREATE FUNCTION pg_temp.now() RETURNS timestamptz
LANGUAGE sql AS $$ SELECT public.cmp_log('pg_temp.now'); SELECT pg_catalog.now() $$;
CREATE FUNCTION pg_temp.lower(text) RETURNS text
LANGUAGE sql AS $$ SELECT public.cmp_log('pg_temp.lower'); SELECT pg_catalog.lower($1) $$;
CREATE FUNCTION pg_temp.unnest(bigint[]) RETURNS SETOF bigint
LANGUAGE sql AS $$ SELECT public.cmp_log('pg_temp.unnest'); SELECT pg_catalog.unnest($1) $$;
CREATE FUNCTION pg_temp.cmp_texteq(text, text) RETURNS boolean
LANGUAGE sql AS $$ SELECT public.cmp_log('pg_temp = text'); SELECT pg_catalog.texteq($1, $2) $$;
CREATE OPERATOR pg_temp.= (LEFTARG = text, RIGHTARG = text, FUNCTION = pg_temp.cmp_texteq);
CREATE TEMP TABLE users (id bigint, tenant text, subject text);
CREATE TEMP TABLE history (id bigint);
CREATE TEMP TABLE tenant_grants (role_name name, tenant text);
CREATE TEMP TABLE clock (one boolean, offset_by interval);
SET search_path = pg_temp, public, pg_catalog;
SELECT lifecycle_invite('hj1', 'hj1@example.com', 'cmp_hj', 'default', 'eu',
						'{"k": "v"}') IS NOT NULL AS invited;
SELECT lifecycle_invite('hj2', 'hj2@example.com', 'cmp_hj') IS NOT NULL AS invited;
SELECT lifecycle_invite('hj1', 'hj1@example.com', 'cmp_hj') IS NOT NULL AS again;
SELECT lifecycle_register('hj1', 'cmp_hj');
SELECT lifecycle_touch('hj1', 'cmp_hj');
SELECT lifecycle_complete('hj1', 'cmp_hj');
SELECT lifecycle_touch('hj1', 'cmp_hj');
SELECT lifecycle_complete('hj1', 'cmp_hj');
SELECT state, next_event, held FROM lifecycle_status('hj1', 'cmp_hj');
SELECT event, actor FROM lifecycle_history('hj1', 'cmp_hj');
SELECT lifecycle_erase('hj2', 'cmp_hj', 'request') IS NOT NULL AS erased;
SELECT lifecycle_touch('nobody', 'cmp_hj');
RESET search_path;
RESET ROLE;
SELECT count(*) AS planted_ran_for_app FROM public.cmp_pwned;

-- The admin, the same way.
SET ROLE cmp_hj_admin;
SET search_path = public, pg_catalog;
SELECT lifecycle_define_policy('cmp_hj', '{"erase_after": "1 day", "archive_after": "1 day",
	"archive_reminders": ["12 hours"]}') IS NOT NULL AS defined;
SELECT lifecycle_invite('hj3', 'hj3@example.com', 'cmp_hj', 'cmp_hj') IS NOT NULL AS invited;
SELECT lifecycle_register('hj3', 'cmp_hj');
SELECT lifecycle_hold('hj1', 'cmp_hj', 'case 7', NULL);
SELECT lifecycle_release('hj1', 'cmp_hj');
SELECT lifecycle_archive('hj1', 'cmp_hj');
SELECT lifecycle_restore('hj1', 'cmp_hj');
SELECT lifecycle_complete('hj3', 'cmp_hj');
SELECT lifecycle_travel('3 days') IS NOT NULL AS travelled;
SELECT lifecycle_tick() IS NOT NULL AS ticked;
SELECT lifecycle_travel('2 days') IS NOT NULL AS travelled;
SELECT lifecycle_tick() IS NOT NULL AS ticked;
SELECT state FROM lifecycle_status('hj1', 'cmp_hj');
SELECT lifecycle_graph('cmp_hj') IS NOT NULL AS graph;
SELECT lifecycle_grant_tenant('cmp_hj_auditor', 'cmp_hj');
SELECT lifecycle_grant_tenant('cmp_hj_auditor', 'cmp_hj2');
SELECT lifecycle_revoke_tenant('cmp_hj_auditor', 'cmp_hj2');
SELECT lifecycle_prune_history() IS NOT NULL AS pruned;
SELECT lifecycle_now() IS NOT NULL AS now;
RESET search_path;
RESET ROLE;
SELECT count(*) AS planted_ran_for_admin FROM public.cmp_pwned;

-- The auditor reads every view with the same search path.
SET ROLE cmp_hj_auditor;
SET search_path = public, pg_catalog;
SELECT count(*) IS NOT NULL AS read FROM lifecycle.retention_report;
SELECT count(*) IS NOT NULL AS read FROM lifecycle.violations;
SELECT count(*) IS NOT NULL AS read FROM lifecycle.overdue;
SELECT count(*) IS NOT NULL AS read FROM lifecycle.holds;
SELECT count(*) IS NOT NULL AS read FROM lifecycle.erasures;
SELECT count(*) IS NOT NULL AS read FROM lifecycle.worker_stats;
SELECT count(*) IS NOT NULL AS read FROM lifecycle.tenant_grants;
RESET search_path;
RESET ROLE;
SELECT count(*) AS planted_ran_for_auditor FROM public.cmp_pwned;

-- Positive control: the shadows are live for a caller's own SQL with
-- public first on its search path (three calls, three log rows).
SET search_path = public, pg_catalog;
SELECT now() IS NOT NULL AS a, lower('X') AS b, 'x'::text = 'y'::text AS c;
RESET search_path;
SELECT what FROM public.cmp_pwned ORDER BY what;

-- The scenario did happen (the shadows were not simply unused).
SELECT subject, state FROM lifecycle.users ORDER BY id;
SELECT state_before, reason, requested_by FROM lifecycle.erasures ORDER BY id;

-- Every SECURITY DEFINER function of the extension pins search_path to
-- pg_catalog, pg_temp; the only others are the documented
-- lifecycle_define_policy and lifecycle_forecast wrappers (SQL, every name
-- qualified, they must see the caller's search_path to resolve
-- unqualified hook names), the internal lifecycle._minus (granted to
-- nobody, search_path pinned) and pure C helpers that run no SQL
-- (lifecycle._adopt_problem, _rearm_at, _rearm_event, _shard, and the
-- triggers _cache_invalidate and _outbox_notify).
SELECT p.oid::regprocedure AS function, p.prosecdef, p.proconfig
  FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
   AND d.classid = 'pg_proc'::regclass
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'lifecycle'
 WHERE NOT (p.prosecdef AND p.proconfig = '{"search_path=pg_catalog, pg_temp"}')
 ORDER BY 1;

\c contrib_regression
DROP DATABASE cmp_hijack;
DROP ROLE cmp_evil, cmp_hj_app, cmp_hj_admin, cmp_hj_auditor;
