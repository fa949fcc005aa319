-- The auditor's three one-liners of docs/COMPLIANCE.md, verbatim, run by
-- a member of lifecycle_auditor (filtered to this test's tenant and roles).
CREATE ROLE cmp_q_app LOGIN IN ROLE lifecycle_app;
CREATE ROLE cmp_q_auditor LOGIN IN ROLE lifecycle_auditor;
CREATE ROLE cmp_q_admin LOGIN IN ROLE lifecycle_admin;
CREATE ROLE cmp_q_eu_auditor LOGIN IN ROLE lifecycle_auditor;
SELECT lifecycle_grant_tenant('cmp_q_eu_auditor', 'cmp_q');
SELECT lifecycle_define_policy('cmp_q', '{"invite_reminders": [],
  "invite_expires_after": "1 day", "expired_erase_after": "1 day"}') > 0 AS defined;
SET ROLE cmp_q_app;
SELECT lifecycle_invite('q1', 'q1@example.com', 'cmp_q', 'cmp_q') > 0 AS q1,
       lifecycle_invite('q2', 'q2@example.com', 'cmp_q', 'cmp_q') > 0 AS q2,
       lifecycle_invite('q3', 'q3@example.com', 'cmp_q', 'cmp_q') > 0 AS q3;
SELECT lifecycle_erase('q3', 'cmp_q', 'ticket 77') > 0 AS erased;
RESET ROLE;
SELECT lifecycle_travel('1 day 2 hours') IS NOT NULL AS travelled;

SET ROLE cmp_q_eu_auditor;
-- Who is kept past policy?
SELECT tenant, subject, state, deadline_event, overdue_by > interval '1 hour' AS overdue
  FROM (SELECT tenant, subject, state, deadline_event, deadline_at, overdue_by, last_error
  FROM lifecycle.violations ORDER BY overdue_by DESC) q WHERE tenant = 'cmp_q' ORDER BY subject;
-- Who was erased, when and why?
SELECT tenant, policy, state_before, reason, requested_by, erased_at <= lifecycle_now() AS past
  FROM (SELECT erased_at, tenant, user_id, policy, state_before, reason, requested_by
  FROM lifecycle.erasures ORDER BY erased_at DESC) q WHERE tenant = 'cmp_q';
-- Who may see what?
SELECT role, tenants,
       may_call ~ 'lifecycle_invite' AS invite, may_call ~ 'lifecycle_erase' AS erase,
       may_call ~ 'lifecycle_hold' AS hold, may_call ~ 'lifecycle_graph' AS graph,
       coalesce(may_read ~ 'violations', false) AS views,
       coalesce(may_read ~ 'erasures', false) AS erasures,
       coalesce(may_read ~ 'channels', false) AS channels,
       coalesce(may_read ~ '(users|history|outbox|policies|clock)', false) AS tables
  FROM (SELECT r.rolname AS role,
       CASE WHEN r.rolsuper THEN 'all (superuser)'
            ELSE coalesce((SELECT string_agg(DISTINCT g.tenant, ', ')
                             FROM lifecycle.tenant_grants g
                             JOIN pg_roles gr ON gr.rolname = g.role_name
                            WHERE pg_has_role(r.oid, gr.oid, 'MEMBER')), 'all') END AS tenants,
       (SELECT string_agg(p.proname, ', ' ORDER BY p.proname)
          FROM pg_proc p
          JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
          JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'lifecycle'
         WHERE p.proname NOT LIKE '\_%'
           AND has_function_privilege(r.oid, p.oid, 'EXECUTE')) AS may_call,
       (SELECT string_agg(c.relname || CASE WHEN has_table_privilege(r.oid, c.oid, 'SELECT')
                                            THEN '' ELSE ' (some columns)' END,
                          ', ' ORDER BY c.relname)
          FROM pg_class c
         WHERE c.relnamespace = 'lifecycle'::regnamespace AND c.relkind IN ('r', 'v')
           AND has_any_column_privilege(r.oid, c.oid, 'SELECT')) AS may_read
  FROM pg_roles r
 WHERE r.rolcanlogin
   AND (r.rolsuper OR pg_has_role(r.oid, 'lifecycle_app', 'MEMBER')
        OR pg_has_role(r.oid, 'lifecycle_auditor', 'MEMBER'))
 ORDER BY 1) q WHERE role LIKE 'cmp\_q\_%' ORDER BY role;
RESET ROLE;
SELECT lifecycle_tick() >= 0 AS ticked;
DELETE FROM lifecycle.tenant_grants WHERE role_name = 'cmp_q_eu_auditor';
DROP ROLE cmp_q_app, cmp_q_auditor, cmp_q_admin, cmp_q_eu_auditor;
