-- lifecycle.metrics: one row per Prometheus sample.  Earlier test files
-- leave users, history and messages behind, so global families are checked
-- as deltas or against the views they summarise; per-tenant families use
-- this file's own tenants (metrics_a, metrics_b).

-- Shape: name, labels jsonb, value float8.
SELECT a.attname, format_type(a.atttypid, a.atttypmod)
  FROM pg_attribute a
 WHERE a.attrelid = 'lifecycle.metrics'::regclass AND a.attnum > 0
 ORDER BY a.attnum;

-- Every family is there, even with nothing to count.
SELECT name, count(*) > 0 AS present
  FROM lifecycle.metrics
 WHERE name IN ('lifecycle_timers_overdue', 'lifecycle_timers_lag_seconds',
				'lifecycle_timers_violations', 'lifecycle_worker_up',
				'lifecycle_worker_pid', 'lifecycle_worker_batches_total',
				'lifecycle_worker_transitions_total', 'lifecycle_worker_failed_total',
				'lifecycle_worker_errors_total', 'lifecycle_worker_lag_seconds')
 GROUP BY name ORDER BY name;
-- Sample names are valid Prometheus names; labels are flat string maps.
SELECT count(*) AS bad_samples
  FROM lifecycle.metrics m
 WHERE m.name !~ '^lifecycle_[a-z_]+$'
	OR jsonb_typeof(m.labels) <> 'object'
	OR EXISTS (SELECT 1 FROM jsonb_each(m.labels) l
				WHERE jsonb_typeof(l.value) <> 'string'
				   OR l.key !~ '^[a-z_]+$')
	OR m.value IS NULL;
-- No two samples share name and labels.
SELECT count(*) AS duplicate_samples FROM (
	SELECT name, labels FROM lifecycle.metrics GROUP BY 1, 2 HAVING count(*) > 1) d;

-- Baselines of the global families.
CREATE TEMP TABLE m0 AS SELECT name, labels, value FROM lifecycle.metrics;

-- Users per tenant, policy and state.
SELECT count(lifecycle_invite('m' || g, 'm' || g || '@example.com', 'metrics_a'))
	   AS invited
  FROM generate_series(1, 6) g;
SELECT lifecycle_invite('n1', 'n1@example.com', 'metrics_b') IS NOT NULL AS invited;
SELECT lifecycle_register('m1', 'metrics_a'), lifecycle_register('m2', 'metrics_a'),
	   lifecycle_register('m3', 'metrics_a');
SELECT lifecycle_complete('m3', 'metrics_a');
SELECT lifecycle_hold('m4', 'metrics_a', 'litigation');
SELECT lifecycle_erase('m5', 'metrics_a') IS NOT NULL AS erased;

SELECT labels ->> 'tenant' AS tenant, labels ->> 'policy' AS policy,
	   labels ->> 'state' AS state, value
  FROM lifecycle.metrics
 WHERE name = 'lifecycle_state_users' AND labels ->> 'tenant' LIKE 'metrics\_%'
 ORDER BY 1, 2, 3;
SELECT labels ->> 'tenant' AS tenant, labels ->> 'state' AS state, value
  FROM lifecycle.metrics
 WHERE name = 'lifecycle_state_held' AND labels ->> 'tenant' LIKE 'metrics\_%'
   AND value > 0
 ORDER BY 1, 2;
-- The same numbers as lifecycle.retention_report, for every tenant.
SELECT count(*) AS mismatches
  FROM lifecycle.retention_report r
  FULL JOIN (SELECT labels ->> 'tenant' AS tenant, labels ->> 'policy' AS policy,
					labels ->> 'state' AS state, value
			   FROM lifecycle.metrics WHERE name = 'lifecycle_state_users') m
	ON m.tenant = r.tenant AND m.policy = r.policy AND m.state = r.state::text
 WHERE m.value IS DISTINCT FROM r.users::float8;

-- Transitions by event: what this file did since the baseline.
SELECT m.labels ->> 'event' AS event, m.value - coalesce(b.value, 0) AS delta
  FROM lifecycle.metrics m
  LEFT JOIN m0 b ON b.name = m.name AND b.labels = m.labels
 WHERE m.name = 'lifecycle_transitions_total'
   AND m.value - coalesce(b.value, 0) <> 0
 ORDER BY 1;

-- Messages by channel and status (no channel: unrouted), as deltas.
SELECT m.labels ->> 'channel' AS channel, m.labels ->> 'status' AS status,
	   m.value - coalesce(b.value, 0) AS delta
  FROM lifecycle.metrics m
  LEFT JOIN m0 b ON b.name = m.name AND b.labels = m.labels
 WHERE m.name = 'lifecycle_outbox_messages'
   AND m.value - coalesce(b.value, 0) <> 0
 ORDER BY 1, 2;
-- Dead letters agree with the outbox.
SELECT coalesce(sum(value), 0) = (SELECT count(*) FROM lifecycle.outbox
								  WHERE status = 'dead') AS dead_letters_agree
  FROM lifecycle.metrics WHERE name = 'lifecycle_dead_letters';

-- Timers: fire everything due now, then travel past this file's invite
-- reminders (3 days): m6 and n1 are overdue (m4 is held), and the metrics
-- say what the overdue and violations views say.
SELECT lifecycle_tick() >= 0 AS ticked;
SELECT max(id) AS h0 FROM lifecycle.history \gset
SELECT lifecycle_travel('3 days 1 hour') IS NOT NULL AS travelled;
SELECT tenant, subject, next_event FROM lifecycle.overdue
 WHERE tenant LIKE 'metrics\_%' ORDER BY 1, 2;
SELECT (SELECT value FROM lifecycle.metrics WHERE name = 'lifecycle_timers_overdue')
	   = (SELECT count(*) FROM lifecycle.overdue) AS overdue_agrees,
	   (SELECT value FROM lifecycle.metrics WHERE name = 'lifecycle_timers_lag_seconds')
	   = (SELECT extract(epoch FROM max(overdue_by)) FROM lifecycle.overdue) AS lag_agrees,
	   (SELECT value FROM lifecycle.metrics WHERE name = 'lifecycle_timers_lag_seconds')
	   >= 3600 AS lag_at_least_an_hour,
	   (SELECT value FROM lifecycle.metrics WHERE name = 'lifecycle_timers_violations')
	   = (SELECT count(*) FROM lifecycle.violations) AS violations_agree;
-- An auditor limited to one tenant sees only that tenant's users and timers.
CREATE ROLE regress_metrics_scoped IN ROLE lifecycle_auditor;
INSERT INTO lifecycle.tenant_grants VALUES ('regress_metrics_scoped', 'metrics_b');
SET ROLE regress_metrics_scoped;
SELECT labels ->> 'tenant' AS tenant, labels ->> 'state' AS state, value
  FROM lifecycle.metrics WHERE name = 'lifecycle_state_users' ORDER BY 1, 2;
SELECT value AS overdue_seen FROM lifecycle.metrics
 WHERE name = 'lifecycle_timers_overdue';
SELECT labels ->> 'status' AS status, value AS messages_seen FROM lifecycle.metrics
 WHERE name = 'lifecycle_outbox_messages' ORDER BY 1;
SELECT labels ->> 'event' AS event, value AS transitions_seen FROM lifecycle.metrics
 WHERE name = 'lifecycle_transitions_total' ORDER BY 1;
RESET ROLE;
DELETE FROM lifecycle.tenant_grants WHERE role_name = 'regress_metrics_scoped';
-- After a tick the reminders have fired and are counted.
SELECT lifecycle_tick() >= 2 AS ticked;
SELECT count(*) AS mine_overdue FROM lifecycle.overdue
 WHERE tenant LIKE 'metrics\_%';
SELECT (SELECT value FROM lifecycle.metrics WHERE name = 'lifecycle_timers_overdue')
	   = (SELECT count(*) FROM lifecycle.overdue) AS overdue_agrees;
SELECT count(*) AS my_reminders
  FROM lifecycle.history h JOIN lifecycle.users u ON u.id = h.user_id
 WHERE h.id > :h0 AND h.event = 'invite_reminder' AND u.tenant LIKE 'metrics\_%';
SELECT m.value - coalesce(b.value, 0)
	   = (SELECT count(*) FROM lifecycle.history h
		   WHERE h.id > :h0 AND h.event = 'invite_reminder') AS reminders_counted
  FROM lifecycle.metrics m
  LEFT JOIN m0 b ON b.name = m.name AND b.labels = m.labels
 WHERE m.name = 'lifecycle_transitions_total'
   AND m.labels = '{"event": "invite_reminder", "workflow": "user"}';

-- Workers: one sample per worker kind; up is 0 or 1 and matches the pid.
SELECT labels ->> 'worker' AS worker, value IN (0, 1) AS up_is_boolean
  FROM lifecycle.metrics WHERE name = 'lifecycle_worker_up' ORDER BY 1;
SELECT count(*) AS up_pid_mismatches
  FROM lifecycle.metrics u
  JOIN lifecycle.metrics p ON p.name = 'lifecycle_worker_pid' AND p.labels = u.labels
 WHERE u.name = 'lifecycle_worker_up' AND (u.value = 1) <> (p.value > 0);
SELECT count(*) AS counter_mismatches
  FROM lifecycle.worker_stats s
  JOIN lifecycle.metrics m ON m.labels = jsonb_build_object('worker', s.worker)
 WHERE (m.name = 'lifecycle_worker_transitions_total' AND m.value <> s.transitions_total)
	OR (m.name = 'lifecycle_worker_errors_total' AND m.value <> s.errors_total)
	OR (m.name = 'lifecycle_worker_batches_total' AND m.value <> s.batches);

-- Privileges: auditors read it; the application does not.
CREATE ROLE regress_metrics_auditor IN ROLE lifecycle_auditor;
CREATE ROLE regress_metrics_app IN ROLE lifecycle_app;
SET ROLE regress_metrics_auditor;
SELECT count(*) > 0 AS auditor_reads FROM lifecycle.metrics;
RESET ROLE;
SET ROLE regress_metrics_app;
SELECT count(*) FROM lifecycle.metrics;
RESET ROLE;
DROP ROLE regress_metrics_auditor, regress_metrics_app, regress_metrics_scoped;
