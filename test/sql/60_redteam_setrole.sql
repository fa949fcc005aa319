-- Red team: a tenant-limited role does not escape its limits with
-- SET ROLE to the group role it is a member of (lifecycle_app,
-- lifecycle_auditor, lifecycle_admin), nor lift them, and a limited admin
-- cannot do what concerns every tenant (channels, the clock, policies,
-- tenant grants, other tenants' dead letters): 42501 for all of it.
-- The session user is the limited role (SET SESSION AUTHORIZATION), as
-- for a real login.
CREATE ROLE cmp_r_app LOGIN IN ROLE lifecycle_app;
CREATE ROLE cmp_r_aud LOGIN IN ROLE lifecycle_auditor;
CREATE ROLE cmp_r_adm LOGIN IN ROLE lifecycle_admin;
SELECT lifecycle_add_channel('cmp_r_ch', 'webhook', 'http://127.0.0.1:9/cmp_r', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw');
SELECT lifecycle_define_policy('cmp_r', '{"channel": "cmp_r_ch", "invite_reminders": [],
  "invite_expires_after": "1 day", "expired_erase_after": "30 days"}') > 0 AS defined;
SELECT count(lifecycle_invite(s, s || '@example.com', t, 'cmp_r')) AS invited
  FROM (VALUES ('ra1', 'cmp_rA'), ('ra2', 'cmp_rA'), ('rb1', 'cmp_rB'),
			   ('rb2', 'cmp_rB'), ('rb3', 'cmp_rB')) v(s, t);
SELECT lifecycle_register('rb2', 'cmp_rB'), lifecycle_register('ra2', 'cmp_rA');
-- Unrouted messages (no channel) of each tenant, for the application to claim.
SELECT lifecycle_invite('ra8', 'ra8@example.com', 'cmp_rA') > 0,
	   lifecycle_invite('rb8', 'rb8@example.com', 'cmp_rB') > 0;
SELECT lifecycle_hold('rb3', 'cmp_rB', 'case B');
SELECT lifecycle_erase('rb1', 'cmp_rB') > 0 AS rb1_erased;
-- A dead letter of each tenant.
UPDATE lifecycle.outbox o SET status = 'dead', attempts = 5
  FROM lifecycle.users u
 WHERE u.id = o.user_id AND u.subject IN ('ra1', 'rb2') AND o.message = 'invite';
SELECT lifecycle_grant_tenant(r, 'cmp_rA')
  FROM unnest(ARRAY['cmp_r_app', 'cmp_r_aud', 'cmp_r_adm']) r;
SELECT lifecycle_travel('2 days') IS NOT NULL AS travelled;   -- ra1 overdue
CREATE TABLE public.cmp_r_accounts (subject text, email text, last_seen timestamptz);
INSERT INTO public.cmp_r_accounts VALUES ('rb7', 'rb7@example.com', now());
GRANT SELECT ON public.cmp_r_accounts TO PUBLIC;
CREATE TABLE pg_temp.cmp_r_b_ids AS
SELECT o.id AS o_id FROM lifecycle.outbox o JOIN lifecycle.users u ON u.id = o.user_id
 WHERE u.tenant = 'cmp_rB' AND o.status = 'unrouted';
GRANT SELECT ON pg_temp.cmp_r_b_ids TO PUBLIC;
CREATE TABLE cmp_r_clock AS SELECT lifecycle_now() - now() AS off;
CREATE TABLE cmp_r_before AS SELECT id, subject, state, held FROM lifecycle.users
 WHERE tenant = 'cmp_rB';
\set VERBOSITY terse

-- The limited application, as itself and after SET ROLE lifecycle_app.
SET SESSION AUTHORIZATION cmp_r_app;
SELECT lifecycle_touch('rb2', 'cmp_rB');
SET ROLE lifecycle_app;
SELECT current_user, session_user;
SELECT lifecycle_invite('rb9', 'rb9@example.com', 'cmp_rB');
SELECT lifecycle_register('rb2', 'cmp_rB');
SELECT lifecycle_touch('rb2', 'cmp_rB');
SELECT lifecycle_complete('rb2', 'cmp_rB');
SELECT lifecycle_restore('rb2', 'cmp_rB');
SELECT lifecycle_erase('rb2', 'cmp_rB');
SELECT * FROM lifecycle_status('rb2', 'cmp_rB');
SELECT count(*) FROM lifecycle_history('rb2', 'cmp_rB');
SELECT lifecycle_update('rb2', 'cmp_rB', email => 'rb2-new@example.com');
SELECT lifecycle_export('rb2', 'cmp_rB') IS NOT NULL;
SELECT * FROM lifecycle_adopt('public.cmp_r_accounts', 'cmp_rB');
-- Claiming hands out its own tenant's messages only; acknowledging
-- another tenant's message does nothing.
CREATE TEMP TABLE cmp_r_claimed AS SELECT id FROM lifecycle_claim_messages(1000);
SELECT lifecycle_ack_messages(ARRAY(SELECT o_id FROM pg_temp.cmp_r_b_ids)) AS acked_b;
-- Its own tenant still works.
SELECT lifecycle_touch('ra2', 'cmp_rA');
RESET ROLE;
RESET SESSION AUTHORIZATION;

-- The limited auditor, after SET ROLE lifecycle_auditor: no row of B in
-- any view, no status or history of B.
SET SESSION AUTHORIZATION cmp_r_aud;
SET ROLE lifecycle_auditor;
SELECT 'retention_report' AS v, count(*) FILTER (WHERE tenant = 'cmp_rB') AS b,
	   count(*) FILTER (WHERE tenant = 'cmp_rA') > 0 AS a FROM lifecycle.retention_report
UNION ALL SELECT 'overdue', count(*) FILTER (WHERE tenant = 'cmp_rB'),
	   count(*) FILTER (WHERE tenant = 'cmp_rA') > 0 FROM lifecycle.overdue
UNION ALL SELECT 'violations', count(*) FILTER (WHERE tenant = 'cmp_rB'), NULL FROM lifecycle.violations
UNION ALL SELECT 'holds', count(*) FILTER (WHERE tenant = 'cmp_rB'), NULL FROM lifecycle.holds
UNION ALL SELECT 'erasures', count(*) FILTER (WHERE tenant = 'cmp_rB'), NULL FROM lifecycle.erasures
UNION ALL SELECT 'dead_letters', count(*) FILTER (WHERE tenant = 'cmp_rB'),
	   count(*) FILTER (WHERE tenant = 'cmp_rA') > 0 FROM lifecycle.dead_letters
UNION ALL SELECT 'tenant_grants', count(*) FILTER (WHERE tenant = 'cmp_rB'), NULL FROM lifecycle.tenant_grants
UNION ALL SELECT 'metrics', count(*) FILTER (WHERE labels ->> 'tenant' = 'cmp_rB'), NULL FROM lifecycle.metrics;
SELECT sum(messages) AS comms_messages FROM lifecycle.comms WHERE channel = 'cmp_r_ch';
SELECT line AS graph_counts_a_only
  FROM regexp_split_to_table(lifecycle_graph('cmp_r'), E'\n') line
 WHERE line ~ '^  (invited|active|erased) \[';
SELECT * FROM lifecycle_status('rb2', 'cmp_rB');
SELECT count(*) FROM lifecycle_history('rb2', 'cmp_rB');
SELECT count(*) FROM lifecycle_forecast('30 days', 'cmp_r', 'cmp_rB');
RESET ROLE;
RESET SESSION AUTHORIZATION;

-- The limited admin, as itself and after SET ROLE lifecycle_admin.
SET SESSION AUTHORIZATION cmp_r_adm;
-- Without SET ROLE: what concerns every tenant is refused.
SELECT lifecycle_add_channel('cmp_r_ch', 'webhook', 'http://127.0.0.1:9/stolen', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw');
SELECT lifecycle_add_channel('cmp_r_ch2', 'webhook', 'http://127.0.0.1:9/new', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw');
SELECT lifecycle_travel('1 day');
SELECT lifecycle_retry_dead('cmp_r_ch');
SELECT lifecycle_retry_dead();
SELECT lifecycle_define_policy('cmp_r', '{"erase_after": "1 day"}');
SELECT lifecycle_grant_tenant('cmp_r_adm', 'cmp_rB');
SET ROLE lifecycle_admin;
SELECT current_user, session_user;
SELECT lifecycle_archive('rb2', 'cmp_rB');
SELECT lifecycle_hold('rb2', 'cmp_rB', 'mine now');
SELECT lifecycle_release('rb3', 'cmp_rB');
SELECT lifecycle_erase('rb2', 'cmp_rB');
SELECT lifecycle_add_channel('cmp_r_ch', 'webhook', 'http://127.0.0.1:9/stolen', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw');
SELECT lifecycle_travel('1 day');
SELECT lifecycle_retry_dead('cmp_r_ch');
SELECT lifecycle_define_policy('cmp_r', '{"erase_after": "1 day"}');
SELECT lifecycle_migrate('cmp_r');
-- Lifting its own limits: granting itself B, revoking its only tenant
-- (which would leave it unlimited), granting or revoking others.
SELECT lifecycle_grant_tenant('cmp_r_adm', 'cmp_rB');
SELECT lifecycle_revoke_tenant('cmp_r_adm', 'cmp_rA');
SELECT lifecycle_grant_tenant('cmp_r_app', 'cmp_rB');
SELECT lifecycle_revoke_tenant('cmp_r_app', 'cmp_rA');
-- Through the views it sees no row of B either.
SELECT count(*) AS b_rows FROM lifecycle.overdue WHERE tenant = 'cmp_rB';
-- Its own tenant still works.
SELECT lifecycle_hold('ra2', 'cmp_rA', 'ok for A');
SELECT lifecycle_release('ra2', 'cmp_rA');
RESET ROLE;
RESET SESSION AUTHORIZATION;
\set VERBOSITY default

-- Nothing changed: B's users, grants, channel, clock, policy, dead letters,
-- unrouted messages.
SELECT count(*) FILTER (WHERE u.tenant = 'cmp_rA') > 0 AS claimed_a,
	   count(*) FILTER (WHERE u.tenant <> 'cmp_rA') AS claimed_other
  FROM pg_temp.cmp_r_claimed c JOIN lifecycle.outbox o ON o.id = c.id
  JOIN lifecycle.users u ON u.id = o.user_id;
SELECT o.status, o.claimed_at IS NULL AS unclaimed FROM lifecycle.outbox o
 WHERE o.id IN (SELECT o_id FROM pg_temp.cmp_r_b_ids);
SELECT b.subject, u.state = b.state AND u.held = b.held AS unchanged
  FROM cmp_r_before b JOIN lifecycle.users u ON u.id = b.id ORDER BY b.id;
SELECT count(*) AS b_users FROM lifecycle.users WHERE tenant = 'cmp_rB';
SELECT role_name, tenant FROM lifecycle.tenant_grants
 WHERE role_name::text LIKE 'cmp\_r\_%' ORDER BY 1, 2;
SELECT name, target FROM lifecycle.channels WHERE name LIKE 'cmp_r%' ORDER BY 1;
SELECT count(*) AS cmp_r_versions FROM lifecycle.policies WHERE name = 'cmp_r';
SELECT u.subject, o.status FROM lifecycle.outbox o JOIN lifecycle.users u ON u.id = o.user_id
 WHERE u.tenant IN ('cmp_rA', 'cmp_rB') AND o.message = 'invite' AND u.subject IN ('ra1', 'rb2')
 ORDER BY 1;
SELECT lifecycle_now() - now() = off AS clock_unmoved FROM cmp_r_clock;

-- Clean up.
SELECT lifecycle_erase(subject, tenant) > 0 FROM lifecycle.users
 WHERE tenant IN ('cmp_rA', 'cmp_rB') AND state <> 'erased' AND NOT held;
SELECT lifecycle_release('rb3', 'cmp_rB');
SELECT lifecycle_erase('rb3', 'cmp_rB') > 0;
DELETE FROM lifecycle.tenant_grants WHERE role_name::text LIKE 'cmp\_r\_%';
DROP TABLE cmp_r_before, cmp_r_clock, public.cmp_r_accounts;
DROP ROLE cmp_r_app, cmp_r_aud, cmp_r_adm;
