-- lifecycle_adopt(): an application's existing accounts come under a
-- policy in one statement, read with the caller's privileges.
\set SHOW_CONTEXT never
SET timezone = 'UTC';
CREATE ROLE cmp_ad_app LOGIN IN ROLE lifecycle_app;
CREATE ROLE cmp_ad_other LOGIN IN ROLE lifecycle_app;
GRANT USAGE, CREATE ON SCHEMA rt TO cmp_ad_app;
GRANT USAGE ON SCHEMA rt TO cmp_ad_other;

-- A fixed reference time, so that results do not depend on how long the
-- statements take.
CREATE TABLE rt.t0 AS SELECT lifecycle_now() AS t0;
CREATE TABLE rt.accounts (subject text, email text, last_seen timestamptz,
						  registered boolean, region text, attrs jsonb);
INSERT INTO rt.accounts
SELECT s, s || '@example.com', t0 + seen, reg, region, attrs
  FROM rt.t0, (VALUES
	('fresh',  interval '-10 days',  true, 'eu', '{"plan": "pro"}'::jsonb),
	('stale1', interval '-200 days', true, NULL, NULL),
	('stale2', interval '-100 days', NULL, NULL, NULL),
	('never',  NULL,                 false, NULL, NULL),
	('future', interval '5 days',    true, NULL, NULL),
	('noseen', NULL,                 true, NULL, NULL),
	('known',  interval '-300 days', true, NULL, NULL)) v(s, seen, reg, region, attrs);
GRANT SELECT ON rt.accounts TO cmp_ad_app;

-- A subject the tenant already knows is skipped and stays as it was.
SELECT lifecycle_invite('known', 'known@example.com', 't71') > 0 AS invited;

SET ROLE cmp_ad_app;
SELECT * FROM lifecycle_adopt('rt.accounts', 't71');
RESET ROLE;

-- Registered accounts are active with last_seen as given (a future one
-- counts as the call); never registered ones expired as of the call.
-- Dormancy already past is armed at the call (fires at the next tick);
-- the others at last_seen + dormant_after.
SELECT u.subject, u.state, u.email, u.region, u.attrs,
	   u.state_since = u.created_at AS since_call,
	   CASE WHEN u.last_seen IS NULL THEN 'null'
			WHEN u.last_seen = u.created_at THEN 'call'
			ELSE (u.last_seen - t0)::text END AS last_seen,
	   u.next_event,
	   CASE WHEN u.next_at = u.created_at THEN 'at the call'
			ELSE (u.next_at - COALESCE(u.last_seen, u.created_at))::text END AS next_after,
	   u.policy, u.policy_version
  FROM lifecycle.users u, rt.t0 WHERE u.tenant = 't71' ORDER BY u.id;
-- One history row "adopt" each, by the caller; no message for adoption.
SELECT u.subject, h.event, h.from_state, h.to_state, h.actor, h.due_at IS NULL AS no_due
  FROM lifecycle.history h JOIN lifecycle.users u ON u.id = h.user_id
 WHERE u.tenant = 't71' ORDER BY h.id;
SELECT count(*) AS messages FROM lifecycle.outbox o
  JOIN lifecycle.users u ON u.id = o.user_id
 WHERE u.tenant = 't71' AND o.message <> 'invite';

-- Idempotent: a second call adopts nothing and changes nothing.
CREATE TABLE rt.before71 AS SELECT * FROM lifecycle.users WHERE tenant = 't71';
SET ROLE cmp_ad_app;
SELECT * FROM lifecycle_adopt('rt.accounts', 't71');
RESET ROLE;
SELECT count(*) AS changed FROM (
	SELECT * FROM lifecycle.users WHERE tenant = 't71'
	EXCEPT SELECT * FROM rt.before71) c;

-- The first tick sends the stale accounts their archive notice, with the
-- full grace after it: adoption never archives without notice.
SELECT lifecycle_tick() >= 2 AS ticked;
SELECT u.subject, u.state, o.message,
	   (o.payload ->> 'archive_at')::timestamptz - u.state_since AS grace
  FROM lifecycle.users u JOIN lifecycle.outbox o ON o.user_id = u.id
 WHERE u.tenant = 't71' AND o.message = 'archive_notice' ORDER BY u.subject;
SELECT subject, state FROM lifecycle.users
 WHERE tenant = 't71' AND state IN ('archived', 'erased');

-- spread: timers already due are spread evenly over it, oldest first; a
-- timer not yet due keeps its time.
CREATE TABLE rt.stale AS
SELECT 'sp' || i AS subject, 'sp' || i || '@example.com' AS email,
	   t0 - (100 + i) * interval '1 day' AS last_seen
  FROM rt.t0, generate_series(1, 4) i
UNION ALL SELECT 'sp-fresh', 'spf@example.com', t0 FROM rt.t0;
GRANT SELECT ON rt.stale TO cmp_ad_app;
SET ROLE cmp_ad_app;
SELECT * FROM lifecycle_adopt('rt.stale', 't71s', spread => '4 hours');
RESET ROLE;
SELECT subject, next_event,
	   CASE WHEN subject = 'sp-fresh' THEN (next_at - last_seen)::text
			ELSE (next_at - created_at)::text END AS armed
  FROM lifecycle.users WHERE tenant = 't71s' ORDER BY next_at, subject;
-- An adopted account's first deadline is the time adoption armed for it:
-- the ramp is no violation; a worker that falls behind it is.
SELECT subject, deadline_event, deadline_at = next_at AS deadline_is_armed_time
  FROM lifecycle.users WHERE tenant = 't71s' ORDER BY next_at, subject;
SELECT count(*) AS violations FROM lifecycle.violations WHERE tenant = 't71s';
SELECT rt.travel('150 minutes') IS NOT NULL AS travelled;
SELECT subject, deadline_event FROM lifecycle.violations
 WHERE tenant = 't71s' ORDER BY subject;

-- The relation is read with the caller's privileges: its row-level
-- security applies ...
CREATE TABLE rt.rls_accounts (subject text, email text, last_seen timestamptz);
INSERT INTO rt.rls_accounts VALUES ('mine1', 'm1@example.com', now()),
	('theirs1', 't1@example.com', now()), ('mine2', 'm2@example.com', now());
ALTER TABLE rt.rls_accounts ENABLE ROW LEVEL SECURITY;
CREATE POLICY only_mine ON rt.rls_accounts FOR SELECT TO cmp_ad_app
	USING (subject LIKE 'mine%');
GRANT SELECT ON rt.rls_accounts TO cmp_ad_app;
SET ROLE cmp_ad_app;
SELECT * FROM lifecycle_adopt('rt.rls_accounts', 't71r');
RESET ROLE;
SELECT subject FROM lifecycle.users WHERE tenant = 't71r' ORDER BY subject;
-- ... and what it runs (a view's functions) runs as the caller, not as the
-- extension's owner.
SET ROLE cmp_ad_app;
CREATE VIEW rt.who_reads AS
	SELECT 'w1' AS subject, 'w1@example.com' AS email, now() AS last_seen,
		   jsonb_build_object('reader', current_user) AS attrs;
SELECT * FROM lifecycle_adopt('rt.who_reads', 't71r');
RESET ROLE;
SELECT subject, attrs FROM lifecycle.users WHERE tenant = 't71r' AND subject = 'w1';
-- A view the caller owns over the extension's own table gains nothing:
-- its read is checked as its owner (42501), and nothing is adopted.
SET ROLE cmp_ad_app;
CREATE VIEW rt.steal AS SELECT subject, email, last_seen FROM lifecycle.users;
SELECT * FROM lifecycle_adopt('rt.steal', 't71steal');
RESET ROLE;
SELECT count(*) AS stolen FROM lifecycle.users WHERE tenant = 't71steal';
-- A name that needs quoting is quoted (resolved from the regclass).
CREATE TABLE rt."Odd ""name""; drop table rt.t0" (subject text, email text, last_seen timestamptz);
INSERT INTO rt."Odd ""name""; drop table rt.t0" VALUES ('odd', 'odd@example.com', now());
SELECT * FROM lifecycle_adopt('rt."Odd ""name""; drop table rt.t0"', 't71r');
SELECT count(*) AS t0_still_there FROM rt.t0;

-- No SELECT privilege: 42501, on the table or on a column it needs.
SET ROLE cmp_ad_other;
SELECT * FROM lifecycle_adopt('rt.accounts', 't71o');
RESET ROLE;
GRANT SELECT (subject, email) ON rt.accounts TO cmp_ad_other;
SET ROLE cmp_ad_other;
SELECT * FROM lifecycle_adopt('rt.accounts', 't71o');
RESET ROLE;
-- Tenant limits apply (42501).
SELECT lifecycle_grant_tenant('cmp_ad_other', 't71-only');
GRANT SELECT ON rt.accounts TO cmp_ad_other;
SET ROLE cmp_ad_other;
SELECT * FROM lifecycle_adopt('rt.accounts', 't71o');
RESET ROLE;
SELECT count(*) AS adopted_by_other FROM lifecycle.users WHERE tenant = 't71o';

-- Bad arguments.
SELECT * FROM lifecycle_adopt(NULL);
SELECT * FROM lifecycle_adopt('rt.accounts', NULL);
SELECT * FROM lifecycle_adopt('rt.accounts', ' ');
SELECT * FROM lifecycle_adopt('rt.accounts', 't71e', 'no such policy');
SELECT * FROM lifecycle_adopt('rt.accounts', 't71e', spread => '0');
SELECT * FROM lifecycle_adopt('rt.accounts', 't71e', spread => '-1 day');
CREATE TABLE rt.no_seen (subject text, email text);
SELECT * FROM lifecycle_adopt('rt.no_seen', 't71e');
CREATE INDEX rt_no_seen_subject ON rt.no_seen (subject);
SELECT * FROM lifecycle_adopt('rt.rt_no_seen_subject', 't71e');

-- Bad rows: 22023 naming the first bad row, and nothing adopted.  Each
-- table below has good rows, then one bad row at position 3.
CREATE FUNCTION rt.adopt_bad(bad_subject text, bad_email text,
	bad_region text = NULL, bad_attrs jsonb = NULL) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
	CREATE TABLE rt.bad (subject text, email text, last_seen timestamptz,
						 region text, attrs jsonb);
	INSERT INTO rt.bad VALUES ('g1', 'g1@example.com', now(), NULL, NULL),
		('g2', 'g2@example.com', now(), NULL, NULL),
		(bad_subject, bad_email, now(), bad_region, bad_attrs),
		('g4', 'not an address', now(), NULL, NULL);
	PERFORM lifecycle_adopt('rt.bad', 't71b');
	RETURN 'adopted';
EXCEPTION WHEN invalid_parameter_value THEN
	RETURN SQLERRM || ' (users: ' ||
		(SELECT count(*) FROM lifecycle.users WHERE tenant = 't71b') || ')';
END
$$;
SELECT rt.adopt_bad(NULL, 'b@example.com');
SELECT rt.adopt_bad('   ', 'b@example.com');
SELECT rt.adopt_bad(repeat('x', 257), 'b@example.com');
SELECT rt.adopt_bad('b3', NULL);
SELECT rt.adopt_bad('b3', 'b3@example..com');
SELECT rt.adopt_bad('b3', 'b3@example.com', '');
SELECT rt.adopt_bad('b3', 'b3@example.com', NULL, '[1, 2]');
SELECT rt.adopt_bad('b3', 'b3@example.com', NULL,
					jsonb_build_object('big', repeat('x', 9000)));
SELECT rt.adopt_bad('g1', 'b3@example.com');		-- repeats row 1
SELECT rt.adopt_bad('b3', 'b3@example.com');		-- row 4 is bad
SELECT count(*) AS users FROM lifecycle.users WHERE tenant = 't71b';
-- The error names the row, never its values.
SELECT rt.adopt_bad('b3', 'secret-value@@example.com') !~ 'secret' AS no_value;

-- Clean up: no timers left for the files that follow.
SELECT rt.cleanup('t71') + rt.cleanup('t71s') + rt.cleanup('t71r') > 0 AS cleaned;
