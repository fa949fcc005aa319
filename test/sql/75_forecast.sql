-- lifecycle_forecast(): per day and timer event, how many users fire if
-- nobody acts.  Checked against what the timers then actually do: the
-- clock is moved from one due timer to the next and every tick recorded.
\set SHOW_CONTEXT never
SET timezone = 'UTC';
CREATE ROLE cmp_fc_auditor LOGIN IN ROLE lifecycle_auditor;
CREATE ROLE cmp_fc_app LOGIN IN ROLE lifecycle_app;
CREATE ROLE cmp_fc_limited LOGIN IN ROLE lifecycle_auditor;
SELECT lifecycle_grant_tenant('cmp_fc_limited', 't75-other');

SELECT lifecycle_define_policy('p75', '{"invite_reminders": ["2 days"],
	"invite_expires_after": "5 days", "dormant_after": "10 days",
	"archive_after": "6 days", "archive_reminders": ["3 days", "1 day"],
	"erase_after": "20 days", "expired_erase_after": "4 days"}');

-- A user base: adopted accounts seen over the last 30 days (some never
-- registered), invitations a day apart, a hold that lapses.
CREATE TABLE rt.acc75 AS
SELECT 'f' || i AS subject, 'f' || i || '@example.com' AS email,
	   lifecycle_now() - i * interval '37 hours' AS last_seen,
	   i % 7 <> 0 AS registered
  FROM generate_series(1, 20) i;
SELECT * FROM lifecycle_adopt('rt.acc75', 't75', 'p75');
SELECT lifecycle_invite('i' || i, 'i' || i || '@example.com', 't75', 'p75') > 0 AS invited,
	   rt.travel('1 day') IS NOT NULL AS travelled
  FROM generate_series(1, 3) i;
SELECT lifecycle_hold('f2', 't75', 'case 75', lifecycle_now() + interval '7 days');

-- Advance to the end of the horizon, firing every timer exactly when it
-- falls due; returns how many ticks ran.
CREATE FUNCTION rt.run_until(p_until timestamptz) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	nxt timestamptz;
	ticks int := 0;
BEGIN
	LOOP
		SELECT min(next_at) INTO nxt FROM lifecycle.users
		 WHERE tenant = 't75' AND next_at IS NOT NULL;
		EXIT WHEN nxt IS NULL OR nxt > p_until;
		IF nxt > lifecycle_now() THEN
			PERFORM lifecycle_travel(nxt - lifecycle_now());
		END IF;
		PERFORM lifecycle_tick();
		ticks := ticks + 1;
		EXIT WHEN ticks > 1000;
	END LOOP;
	RETURN ticks;
END
$$;
-- What the worker did since t0, per day and event (as the forecast counts).
CREATE FUNCTION rt.fired(p_from timestamptz, p_until timestamptz)
RETURNS TABLE (day date, event text, users bigint)
LANGUAGE sql AS $$
	SELECT h.at::date, h.event, count(*)
	  FROM lifecycle.history h JOIN lifecycle.users u ON u.id = h.user_id
	 WHERE u.tenant = 't75' AND h.actor = 'lifecycle worker'
	   AND h.at >= p_from AND h.at <= p_until
	 GROUP BY 1, 2
$$;

-- The forecast is read-only.
CREATE TABLE rt.count75 AS
	SELECT (SELECT count(*) FROM lifecycle.history) AS h,
		   (SELECT count(*) FROM lifecycle.users u, lifecycle.users v
			 WHERE false) AS u;
SET ROLE cmp_fc_auditor;
CREATE TEMP TABLE fc AS SELECT day, event, users FROM lifecycle_forecast('40 days', 'p75', 't75');
CREATE TEMP TABLE t0 AS SELECT lifecycle_now() AS t0;
RESET ROLE;
SELECT (SELECT count(*) FROM lifecycle.history) = h AS history_unchanged FROM rt.count75;
SELECT event, sum(users) AS users FROM fc GROUP BY event ORDER BY event;

-- Reality, in a transaction rolled back afterwards.
BEGIN;
SELECT rt.run_until(t0 + interval '40 days') > 0 AS ran FROM t0;
-- Forecast and reality agree on every day and event.
SELECT 'forecast only' AS side, * FROM (
	SELECT * FROM fc EXCEPT SELECT * FROM rt.fired((SELECT t0 FROM t0),
												   (SELECT t0 + interval '40 days' FROM t0))) a
UNION ALL
SELECT 'fired only', * FROM (
	SELECT * FROM rt.fired((SELECT t0 FROM t0), (SELECT t0 + interval '40 days' FROM t0))
	EXCEPT SELECT * FROM fc) b;
SELECT count(*) > 5 AS many_rows, count(DISTINCT event) >= 5 AS many_events FROM fc;
ROLLBACK;

-- With a definition: the same forecast as if the running users were
-- migrated to it, validated and not stored; then migrate for real and
-- compare again.
SET ROLE cmp_fc_auditor;
DROP TABLE fc, t0;
CREATE TEMP TABLE fc AS SELECT day, event, users FROM lifecycle_forecast('30 days', 'p75', 't75',
	'{"invite_reminders": [], "invite_expires_after": "3 days",
	  "dormant_after": "5 days", "archive_after": "4 days",
	  "archive_reminders": ["2 days"], "erase_after": "10 days",
	  "expired_erase_after": "2 days"}');
CREATE TEMP TABLE t0 AS SELECT lifecycle_now() AS t0;
RESET ROLE;
SELECT count(*) AS versions FROM lifecycle.policies WHERE name = 'p75';
BEGIN;
SELECT lifecycle_define_policy('p75', '{"invite_reminders": [], "invite_expires_after": "3 days",
	  "dormant_after": "5 days", "archive_after": "4 days",
	  "archive_reminders": ["2 days"], "erase_after": "10 days",
	  "expired_erase_after": "2 days"}');
SELECT lifecycle_migrate('p75') > 0 AS migrated;
SELECT rt.run_until(t0 + interval '30 days') > 0 AS ran FROM t0;
SELECT 'forecast only' AS side, * FROM (
	SELECT * FROM fc EXCEPT SELECT * FROM rt.fired((SELECT t0 FROM t0),
												   (SELECT t0 + interval '30 days' FROM t0))) a
UNION ALL
SELECT 'fired only', * FROM (
	SELECT * FROM rt.fired((SELECT t0 FROM t0), (SELECT t0 + interval '30 days' FROM t0))
	EXCEPT SELECT * FROM fc) b;
SELECT count(*) > 5 AS many_rows FROM fc;
ROLLBACK;

-- Roles and tenant limits: an auditor limited to other tenants sees no
-- user of t75 and may not name it; the application may not forecast.
SET ROLE cmp_fc_limited;
SELECT count(*) AS visible FROM lifecycle_forecast('40 days', 'p75');
SELECT * FROM lifecycle_forecast('40 days', 'p75', 't75');
RESET ROLE;
SET ROLE cmp_fc_app;
SELECT * FROM lifecycle_forecast('40 days', 'p75', 't75');
RESET ROLE;

-- Bad arguments.
SELECT * FROM lifecycle_forecast(NULL);
SELECT * FROM lifecycle_forecast('0');
SELECT * FROM lifecycle_forecast('-1 day');
SELECT * FROM lifecycle_forecast('11 years');
SELECT * FROM lifecycle_forecast('1 day', 'no such policy');
SELECT * FROM lifecycle_forecast('1 day', tenant => '');
SELECT * FROM lifecycle_forecast('1 day', definition => '{}');
SELECT * FROM lifecycle_forecast('1 day', 'p75', definition => '[]');
SELECT * FROM lifecycle_forecast('1 day', 'p75', definition => '{"dormant_afterr": "1 day"}');
SELECT * FROM lifecycle_forecast('1 day', 'p75', definition => '{"dormant_after": "-1 day"}');
SELECT * FROM lifecycle_forecast('1 day', 'p75', definition => '{"channel": "no such channel"}');

SELECT lifecycle_release('f2', 't75');
SELECT rt.cleanup('t75') > 0 AS cleaned;
