-- Tenant scoping: a role limited to tenant A (lifecycle.tenant_grants,
-- managed with lifecycle_grant_tenant / lifecycle_revoke_tenant) can
-- neither read nor change tenant B's subjects, through functions (42501)
-- or views (rows hidden; lifecycle.erasures by row-level security).
CREATE ROLE cmp_t_app LOGIN IN ROLE lifecycle_app;
CREATE ROLE cmp_t_auditor LOGIN IN ROLE lifecycle_auditor;
CREATE ROLE cmp_t_admin LOGIN IN ROLE lifecycle_admin;      -- limited to A
CREATE ROLE cmp_t_boss LOGIN IN ROLE lifecycle_admin;       -- unlimited
CREATE ROLE cmp_t_group NOLOGIN;
CREATE ROLE cmp_t_member LOGIN IN ROLE lifecycle_app, cmp_t_group;

-- Data in both tenants: live, held, overdue and erased subjects.
SELECT lifecycle_define_policy('cmp_t', '{"invite_reminders": [],
  "invite_expires_after": "1 day", "expired_erase_after": "5 days"}') > 0 AS defined;
SELECT lifecycle_invite(s, s || '@example.com', t, 'cmp_t') > 0 AS invited
  FROM (VALUES ('a1', 'cmp_tA'), ('a2', 'cmp_tA'), ('a3', 'cmp_tA'),
			   ('b1', 'cmp_tB'), ('b2', 'cmp_tB'), ('b3', 'cmp_tB')) v(s, t);
SELECT lifecycle_hold('a2', 'cmp_tA', 'case A'), lifecycle_hold('b2', 'cmp_tB', 'case B');
SELECT lifecycle_erase('a3', 'cmp_tA') > 0 AS a3_erased,
	   lifecycle_erase('b3', 'cmp_tB') > 0 AS b3_erased;
SELECT lifecycle_travel('2 days') IS NOT NULL AS travelled;   -- a1, b1 overdue

-- Granting: only an unlimited admin; bad arguments are refused.
SET ROLE cmp_t_boss;
SELECT lifecycle_grant_tenant('cmp_t_app', 'cmp_tA');
SELECT lifecycle_grant_tenant('cmp_t_app', 'cmp_tA') AS again;
SELECT lifecycle_grant_tenant('cmp_t_auditor', 'cmp_tA');
SELECT lifecycle_grant_tenant('cmp_t_admin', 'cmp_tA');
SELECT lifecycle_grant_tenant('cmp_t_group', 'cmp_tA');
SELECT lifecycle_grant_tenant(NULL, 'cmp_tA');
SELECT lifecycle_grant_tenant('cmp_t_app', NULL);
SELECT lifecycle_grant_tenant('cmp_t_app', ' ');
SELECT lifecycle_grant_tenant('cmp_t_app', repeat('x', 64));
SELECT lifecycle_grant_tenant('cmp_t_no_such_role', 'cmp_tA');
-- Revoking the last tenant would leave the role unlimited: refused.
SELECT lifecycle_revoke_tenant('cmp_t_app', 'cmp_tA');
SELECT lifecycle_revoke_tenant('cmp_t_app', 'cmp_tZ') AS not_granted;
SELECT lifecycle_grant_tenant('cmp_t_app', 'cmp_tC'),
	   lifecycle_revoke_tenant('cmp_t_app', 'cmp_tC');
RESET ROLE;
SELECT role_name, tenant FROM lifecycle.tenant_grants
 WHERE role_name::text LIKE 'cmp\_t\_%' ORDER BY 1, 2;

-- The limited app: tenant A works, tenant B is refused for every call.
SET ROLE cmp_t_app;
SELECT state FROM lifecycle_status('a1', 'cmp_tA');
SELECT lifecycle_invite('a4', 'a4@example.com', 'cmp_tA') > 0 AS invited_a4;
SELECT lifecycle_invite('b4', 'b4@example.com', 'cmp_tB');
SELECT lifecycle_register('b1', 'cmp_tB');
SELECT lifecycle_touch('b1', 'cmp_tB');
SELECT lifecycle_complete('b1', 'cmp_tB');
SELECT lifecycle_restore('b1', 'cmp_tB');
SELECT lifecycle_erase('b1', 'cmp_tB');
SELECT * FROM lifecycle_status('b1', 'cmp_tB');
SELECT * FROM lifecycle_history('b1', 'cmp_tB');
-- Even an unknown subject of B says 42501, not 42704: no probing.
SELECT lifecycle_touch('no-such', 'cmp_tB');
RESET ROLE;
-- Nothing changed in B.
SELECT subject, state FROM lifecycle.users WHERE tenant = 'cmp_tB' ORDER BY id;

-- A role limited through a group it is a member of.
SET ROLE cmp_t_member;
SELECT lifecycle_register('a4', 'cmp_tA');
SELECT lifecycle_register('b1', 'cmp_tB');
RESET ROLE;

-- The limited auditor sees only tenant A in every view and table.
SET ROLE cmp_t_auditor;
SELECT tenant, policy, state, users FROM lifecycle.retention_report
 WHERE tenant LIKE 'cmp\_t_' ORDER BY 1, 2, 3;
SELECT DISTINCT tenant FROM lifecycle.retention_report ORDER BY 1;
SELECT tenant, subject, deadline_event FROM lifecycle.violations ORDER BY 1, 2;
SELECT tenant, subject FROM lifecycle.overdue ORDER BY 1, 2;
SELECT tenant, subject, reason FROM lifecycle.holds ORDER BY 1, 2;
SELECT tenant, state_before FROM lifecycle.erasures ORDER BY 1;
SELECT role_name, tenant FROM lifecycle.tenant_grants ORDER BY 1, 2;
SELECT DISTINCT tenant FROM lifecycle.audit_trail ORDER BY 1;
SELECT * FROM lifecycle_status('b2', 'cmp_tB');
SELECT count(*) AS a_history FROM lifecycle_history('a1', 'cmp_tA');
RESET ROLE;
-- Not even through a leaky function of the auditor's own, which the
-- planner would otherwise run below the views' tenant filter.
CREATE FUNCTION public.cmp_leak(text) RETURNS boolean
LANGUAGE plpgsql COST 0.0000001 AS $$
BEGIN
	IF $1 LIKE '%b_' OR $1 = 'cmp_tB' THEN
		RAISE NOTICE 'leaked: %', $1;
	END IF;
	RETURN true;
END $$;
SET ROLE cmp_t_auditor;
SELECT count(*) AS holds FROM lifecycle.holds WHERE cmp_leak(subject);
SELECT count(*) AS overdue FROM lifecycle.overdue WHERE cmp_leak(subject);
SELECT count(*) AS violations FROM lifecycle.violations WHERE cmp_leak(subject);
SELECT count(*) AS report FROM lifecycle.retention_report WHERE cmp_leak(tenant);
SELECT count(*) AS erasures FROM lifecycle.erasures WHERE cmp_leak(tenant);
SELECT count(*) AS grants FROM lifecycle.tenant_grants WHERE cmp_leak(tenant);
SELECT count(*) > 0 AS trail FROM lifecycle.audit_trail WHERE cmp_leak(tenant);
RESET ROLE;
DROP FUNCTION public.cmp_leak(text);
-- The unlimited superuser sees both.
SELECT DISTINCT tenant FROM lifecycle.holds WHERE tenant LIKE 'cmp\_t_' ORDER BY 1;

-- The limited admin: A only, and it may not manage grants.
SET ROLE cmp_t_admin;
SELECT lifecycle_hold('b1', 'cmp_tB', 'nope');
SELECT lifecycle_release('b2', 'cmp_tB');
SELECT lifecycle_archive('b1', 'cmp_tB');
SELECT lifecycle_grant_tenant('cmp_t_admin', 'cmp_tB');
SELECT lifecycle_revoke_tenant('cmp_t_admin', 'cmp_tA');
-- Policies are shared by all tenants: a limited admin may not change them.
SELECT lifecycle_define_policy('cmp_t', '{"erase_after": "1 day"}');
SELECT lifecycle_define_policy('default', '{}');
SELECT lifecycle_hold('a1', 'cmp_tA', 'ok for A');
SELECT lifecycle_release('a1', 'cmp_tA');
-- The graph counts only tenant A's subjects of the policy.
SELECT (regexp_match(lifecycle_graph('cmp_t'), 'erased\\n(\d+)'))[1] AS erased_seen;
-- A tick by a limited admin still advances every tenant (timers are the
-- policy's, not the admin's), and the history says "lifecycle worker".
SELECT lifecycle_tick() >= 0 AS ticked;
RESET ROLE;
SELECT tenant, subject, state FROM lifecycle.users
 WHERE tenant IN ('cmp_tA', 'cmp_tB') AND subject IN ('a1', 'b1') ORDER BY 1;

-- Grants of a dropped role are ignored, not an error for everybody.
CREATE ROLE cmp_t_gone IN ROLE lifecycle_app;
SELECT lifecycle_grant_tenant('cmp_t_gone', 'cmp_tA');
DROP ROLE cmp_t_gone;
SET ROLE cmp_t_app;
SELECT lifecycle_touch('a4', 'cmp_tA') AS touched,
       (SELECT state FROM lifecycle_status('a4', 'cmp_tA')) AS status;
RESET ROLE;

-- Clean up the grants (the last one of each role goes with the role).
DELETE FROM lifecycle.tenant_grants WHERE role_name::text LIKE 'cmp\_t\_%';
DROP ROLE cmp_t_app, cmp_t_auditor, cmp_t_admin, cmp_t_boss, cmp_t_member, cmp_t_group;
