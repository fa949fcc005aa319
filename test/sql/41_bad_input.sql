-- Bad input: every call refuses it with its documented SQLSTATE (NULL
-- 22004; empty, malformed or oversized 22023; unknown 42704) and leaves no
-- row behind.  Strings that look like SQL are stored verbatim and harmless.
\set SHOW_CONTEXT never
SET timezone = 'UTC';

-- Runs a statement; returns "ok" or "SQLSTATE: message".
CREATE FUNCTION rt.outcome(stmt text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE stmt;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
CREATE TEMP VIEW totals AS
SELECT (SELECT count(*) FROM lifecycle.users) AS users,
	   (SELECT count(*) FROM lifecycle.history) AS history,
	   (SELECT count(*) FROM lifecycle.outbox) AS outbox,
	   (SELECT count(*) FROM lifecycle.erasures) AS erasures,
	   (SELECT count(*) FROM lifecycle.policies) AS policies;
CREATE TEMP TABLE before AS SELECT * FROM totals;

-- NULL subject: 22004 from every call.
SELECT lifecycle_invite(NULL, 'a@example.com', 't41');
\echo :LAST_ERROR_SQLSTATE
SELECT f, rt.outcome(format('SELECT %s(NULL, %L)', f, 't41')) AS outcome
  FROM unnest(ARRAY['lifecycle_register', 'lifecycle_touch', 'lifecycle_complete',
					'lifecycle_restore', 'lifecycle_archive', 'lifecycle_erase',
					'lifecycle_release', 'lifecycle_status', 'lifecycle_history']) f;
SELECT rt.outcome($$SELECT lifecycle_hold(NULL, 't41', 'audit')$$) AS hold;

-- Empty, blank or too long subject: 22023.
SELECT lifecycle_invite('', 'a@example.com', 't41');
\echo :LAST_ERROR_SQLSTATE
SELECT s, rt.outcome(format('SELECT lifecycle_invite(%L, %L, %L)', s, 'a@example.com', 't41')) AS outcome
  FROM unnest(ARRAY['', ' ', E'\t\n']) s;
SELECT rt.outcome(format('SELECT lifecycle_invite(%L, %L, %L)', repeat('s', 257), 'a@example.com', 't41')) AS too_long;
SELECT rt.outcome(format('SELECT lifecycle_register(%L, %L)', '', 't41')) AS register_empty;

-- Malformed e-mail addresses: 22023 (NULL: 22004).
SELECT lifecycle_invite('m1', 'not-an-address', 't41');
\echo :LAST_ERROR_SQLSTATE
SELECT e, rt.outcome(format('SELECT lifecycle_invite(%L, %L, %L)', 'm1', e, 't41')) AS outcome
  FROM unnest(ARRAY['plainaddress', '@example.com', 'a@', 'a@b', 'a@.com', 'a@example.',
					'a@@example.com', 'a@b@example.com', 'a@example..com',
					'a b@example.com', 'a@exa mple.com', '<a@example.com>',
					'a@example.com, b@example.com', 'a@example.com;b@example.com',
					'"a"@example.com', 'a\b@example.com',
					E'a@example.com\nBcc: victim@example.com', E'a@example.com\r',
					'', ' ']) e;
SELECT rt.outcome(format('SELECT lifecycle_invite(%L, %L, %L)', 'm1',
	repeat('a', 243) || '@example.com', 't41')) AS too_long;   -- 255 bytes
SELECT rt.outcome($$SELECT lifecycle_invite('m1', NULL, 't41')$$) AS null_email;

-- Tenant, policy, region.
SELECT rt.outcome($$SELECT lifecycle_invite('m1', 'a@example.com', NULL)$$) AS null_tenant;
SELECT rt.outcome($$SELECT lifecycle_invite('m1', 'a@example.com', '')$$) AS empty_tenant;
SELECT rt.outcome(format('SELECT lifecycle_invite(%L, %L, %L)', 'm1', 'a@example.com', repeat('t', 64))) AS long_tenant;
SELECT rt.outcome($$SELECT lifecycle_invite('m1', 'a@example.com', 't41', NULL)$$) AS null_policy;
SELECT rt.outcome($$SELECT lifecycle_invite('m1', 'a@example.com', 't41', '')$$) AS empty_policy;
SELECT rt.outcome($$SELECT lifecycle_invite('m1', 'a@example.com', 't41', 'no-such-policy')$$) AS unknown_policy;
SELECT rt.outcome($$SELECT lifecycle_invite('m1', 'a@example.com', 't41', 'default', '')$$) AS empty_region;
SELECT rt.outcome(format('SELECT lifecycle_invite(%L, %L, %L, %L, %L)', 'm1', 'a@example.com', 't41',
	'default', repeat('r', 64))) AS long_region;

-- attrs: an object of at most 8192 bytes.
SELECT lifecycle_invite('m1', 'a@example.com', 't41', attrs => jsonb_build_object('blob', repeat('x', 9000)));
\echo :LAST_ERROR_SQLSTATE
SELECT a, rt.outcome(format('SELECT lifecycle_invite(%L, %L, %L, attrs => %L)', 'm1', 'a@example.com', 't41', a)) AS outcome
  FROM unnest(ARRAY['[]', '[{"a": 1}]', '"text"', '42', 'true', 'null']) a;
SELECT rt.outcome($$SELECT lifecycle_invite('m1', 'a@example.com', 't41', attrs => NULL)$$) AS null_attrs;
SELECT rt.outcome(format('SELECT lifecycle_invite(%L, %L, %L, attrs => %L)', 'm1', 'a@example.com', 't41',
	jsonb_build_object('blob', repeat('x', 8200)))) AS oversized;

-- Unknown subjects (and tenants): 42704 from every call.
SELECT lifecycle_touch('nobody', 't41');
\echo :LAST_ERROR_SQLSTATE
SELECT f, rt.outcome(format('SELECT %s(%L, %L)', f, 'nobody', t)) AS outcome
  FROM unnest(ARRAY['lifecycle_register', 'lifecycle_touch', 'lifecycle_complete',
					'lifecycle_restore', 'lifecycle_archive', 'lifecycle_erase',
					'lifecycle_release', 'lifecycle_status', 'lifecycle_history']) f,
	   unnest(ARRAY['t41', 'no-such-tenant']) t
 ORDER BY t, f;

-- Other arguments.
SELECT rt.outcome($$SELECT lifecycle_erase('nobody', 't41', NULL)$$) AS null_reason;
SELECT rt.outcome($$SELECT lifecycle_erase('nobody', 't41', '')$$) AS empty_reason;
SELECT rt.outcome($$SELECT lifecycle_travel(NULL)$$) AS null_travel;
SELECT rt.outcome($$SELECT lifecycle_tick(-1)$$) AS negative_tick;

-- Nothing was left behind by any of the above.
SELECT t.users - b.users AS users, t.history - b.history AS history,
	   t.outbox - b.outbox AS outbox, t.erasures - b.erasures AS erasures,
	   t.policies - b.policies AS policies
  FROM totals t, before b;

-- At the limits: accepted.
SELECT lifecycle_invite(repeat('s', 256), repeat('a', 242) || '@example.com', repeat('t', 63),
	'default', repeat('r', 63), jsonb_build_object('blob', repeat('x', 8000))) > 0 AS at_limits;
SELECT length(subject), length(email), length(tenant), length(region), pg_column_size(attrs) <= 8192 AS attrs_fit
  FROM lifecycle.users WHERE tenant = repeat('t', 63);
SELECT lifecycle_erase(repeat('s', 256), repeat('t', 63)) > 0 AS erased;

-- Strings that look like SQL, quotes, backslashes, format directives and
-- non-ASCII text are data: stored and returned verbatim, nothing executed.
CREATE TEMP TABLE nasty (n int, subject text, email text, tenant text, attrs jsonb);
INSERT INTO nasty VALUES
	(1, $$'); DROP TABLE lifecycle.users; --$$, 'bobby@example.com', 't41', '{}'),
	(2, $$Robert'); DROP TABLE students;--$$, $$o'brien@example.com$$, $$t41'; DELETE FROM lifecycle.history; --$$,
		'{"x": "1); DROP TABLE lifecycle.outbox; --"}'),
	(3, 'O''Brien "Bob" \ back\\slash \n', 'q@example.com', 't41',
		jsonb_build_object('k''ey"', E'line\nbreak\ttab \\ "quoted"')),
	(4, 'Zoë Ñandú 日本語 🌍', 'zoe@xn--bcher-kva.example', 't41', '{"name": "Zoë 🌍"}'),
	(5, '%s %n %x $1 $$ $q$ :var', 'fmt@example.com', 't41', '{"%s": "$1"}'),
	(6, '<script>alert(1)</script>', 'xss@example.com', 't41', '{"html": "<b>&amp;</b>"}'),
	(7, E'nul?\x01ctl', 'ctl@example.com', 't41', '{}');
SELECT n, lifecycle_invite(subject, email, tenant, attrs => attrs) > 0 AS invited
  FROM nasty ORDER BY n;
SELECT n.n, u.subject = n.subject AS subject_verbatim, u.email = n.email AS email_verbatim,
	   u.tenant = n.tenant AS tenant_verbatim, u.attrs = n.attrs AS attrs_verbatim,
	   o.payload ->> 'subject' = n.subject AS payload_verbatim
  FROM nasty n
  JOIN lifecycle.users u ON u.tenant = n.tenant AND u.subject = n.subject
  JOIN lifecycle.outbox o ON o.user_id = u.id
 ORDER BY n.n;
SELECT n, (SELECT state FROM lifecycle_status(subject, tenant)) AS state,
	   lifecycle_register(subject, tenant) AS registered,
	   (SELECT count(*) FROM lifecycle_history(subject, tenant)) AS history_rows
  FROM nasty ORDER BY n;
SELECT subject FROM lifecycle.users WHERE tenant LIKE 't41%' ORDER BY subject COLLATE "C";
-- Every table is still there, with its rows.
SELECT to_regclass('lifecycle.users') IS NOT NULL AS users_table,
	   to_regclass('lifecycle.history') IS NOT NULL AS history_table,
	   to_regclass('lifecycle.outbox') IS NOT NULL AS outbox_table,
	   (SELECT count(*) FROM lifecycle.history) >= (SELECT history FROM before) AS history_kept;
SELECT n, lifecycle_erase(subject, tenant, 'reason with ''quotes''; DROP TABLE x; --') > 0 AS erased
  FROM nasty ORDER BY n;
SELECT DISTINCT reason FROM lifecycle.erasures WHERE tenant LIKE 't41%';

SELECT rt.cleanup('t41') AS erased;
SELECT count(*) AS pending_timers FROM lifecycle.users WHERE next_at IS NOT NULL;
