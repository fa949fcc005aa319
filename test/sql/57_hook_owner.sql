-- Hooks run with the privileges of their function's owner, never as the
-- extension's owner, and only a role with the privileges of that owner may
-- name the function in a policy.
CREATE ROLE cmp_k_admin LOGIN IN ROLE lifecycle_admin;
CREATE ROLE cmp_k_app LOGIN IN ROLE lifecycle_app;
CREATE ROLE cmp_k_owner NOLOGIN;
GRANT cmp_k_owner TO cmp_k_admin;
CREATE SCHEMA cmp_k AUTHORIZATION cmp_k_owner;
CREATE TABLE cmp_k.calls (hook text, subject text, run_as name, superuser boolean);
ALTER TABLE cmp_k.calls OWNER TO cmp_k_owner;
-- A hook owned by a plain role, recording who it runs as.
SET ROLE cmp_k_owner;
CREATE FUNCTION cmp_k.on_erase(subject text, tenant text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog
AS $$ INSERT INTO cmp_k.calls SELECT 'erase', subject, current_user,
	  (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) $$;
CREATE FUNCTION cmp_k.on_archive(subject text, tenant text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog
AS $$ INSERT INTO cmp_k.calls SELECT 'archive', subject, current_user,
	  (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) $$;
RESET ROLE;
-- A superuser's function with the hook signature.
CREATE FUNCTION public.cmp_k_su(subject text, tenant text) RETURNS void
LANGUAGE sql AS $$ SELECT NULL $$;

-- The admin (a member of the owner role) may name the owner's functions,
-- not a superuser's nor a catalog function.
SET ROLE cmp_k_admin;
SELECT lifecycle_define_policy('cmp_k', '{"archive_reminders": [],
  "erase_after": "1 day", "archive_after": "1 day",
  "hooks": {"erase": "cmp_k.on_erase", "archive": "cmp_k.on_archive"}}') > 0 AS defined;
SELECT lifecycle_define_policy('cmp_k2', '{"hooks": {"erase": "public.cmp_k_su"}}');
SELECT lifecycle_define_policy('cmp_k2', '{"hooks": {"restore": "pg_catalog.textcat"}}');
RESET ROLE;
SELECT count(*) AS cmp_k2_versions FROM lifecycle.policies WHERE name = 'cmp_k2';

-- Called by the application (erase), by an admin (archive) and by the
-- timer (erase after archive): every time as the owner, never superuser.
SET ROLE cmp_k_app;
SELECT lifecycle_invite(s, s || '@example.com', 'cmp_k', 'cmp_k') > 0 AS invited
  FROM unnest(ARRAY['k1', 'k2']) s;
SELECT lifecycle_erase('k1', 'cmp_k') > 0 AS erased;
RESET ROLE;
SET ROLE cmp_k_admin;
SELECT lifecycle_archive('k2', 'cmp_k');
RESET ROLE;
SELECT lifecycle_travel('2 days') IS NOT NULL AS travelled;
SELECT lifecycle_tick() >= 1 AS ticked;
SELECT hook, subject, run_as, superuser FROM cmp_k.calls ORDER BY hook, subject;
-- The extension restored its own user afterwards.
SELECT current_user = session_user AS restored;

-- A superuser may name any function; it then runs as its owner.
SELECT lifecycle_define_policy('cmp_k3', '{"hooks": {"erase": "public.cmp_k_su"}}') > 0 AS defined;

DROP SCHEMA cmp_k CASCADE;
DROP FUNCTION public.cmp_k_su(text, text);
DROP ROLE cmp_k_admin, cmp_k_app, cmp_k_owner;
