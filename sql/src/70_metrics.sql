-- lifecycle: metrics for Prometheus.
--
-- lifecycle.metrics has one row per Prometheus sample: name, labels (jsonb,
-- every value a string) and value.  Each name is exactly the sample name
-- that contrib/prometheus-postgres-exporter/lifecycle-queries.yaml makes
-- the exporter publish, so a scrape can be checked against this view.
--
--   lifecycle_state_users{tenant,policy,state,workflow}
--                                                instances per state (gauge)
--   lifecycle_state_held{tenant,policy,state,workflow}
--                                                of which under a hold in force (gauge)
--   lifecycle_transitions_total{event,workflow}  history rows per event (counter)
--   lifecycle_timers_overdue                     timers due, not fired, no hold in force
--   lifecycle_timers_lag_seconds                 age of the oldest of them (0: none)
--   lifecycle_timers_violations                  rows of lifecycle.violations (deadline
--                                                past by over a minute, no hold in force)
--   lifecycle_workflow_timers_overdue{workflow}  the two above per workflow (0.3.0;
--   lifecycle_workflow_timers_violations{workflow}  the totals keep 0.2.0's labels)
--   lifecycle_outbox_messages{channel,status}    messages (channel "" = none)
--   lifecycle_dead_letters{channel}              messages with status dead
--   lifecycle_worker_up{worker}                  1 while the worker runs, else 0
--   lifecycle_worker_pid{worker}                 its pid (0: down); a change = restart
--   lifecycle_worker_batches_total{worker}       from shared memory (reset at
--   lifecycle_worker_transitions_total{worker}     server start; Prometheus
--   lifecycle_worker_failed_total{worker}          handles counter resets)
--   lifecycle_worker_errors_total{worker}
--   lifecycle_worker_lag_seconds{worker}         lag the worker saw at its last pass
--   lifecycle_timer_lateness_seconds             histogram (_bucket{le}, _sum, _count)
--                                                of timers' lateness: due_at -> at of
--                                                every history row of a timer (0.3.0)
--   lifecycle_otel_spans_exported_total          OpenTelemetry exporter (0.3.0):
--   lifecycle_otel_spans_dropped_total             spans sent, spans dropped,
--   lifecycle_otel_failed_requests_total           requests that failed
--
-- Cost: the user, transition and message families read the counts kept
-- as they change (lifecycle.counts and the deltas not folded yet,
-- 67_counts.sql), exact without reading users, history or outbox; the
-- held users' count subtracts those whose hold has lapsed (the partial
-- index users_hold_until); the timer family counts, per group of the
-- counts, the due timers and the users past their deadline with
-- index-only scans of users_group_next_at and users_group_deadline_at
-- (work in proportion to the late users, not to all); the worker family
-- reads shared memory.  The workflow label of a group is its policy's
-- (a policy belongs to one workflow): the policies are joined once per
-- group, never per instance.  A query that filters on name (as each exporter
-- query does) runs only the branches of that name: every name below is a
-- constant, so the planner drops the others.  Hot counters (the worker's
-- transitions, batches, errors) come from shared memory.  The per-event
-- totals count history rows, so that they count application calls as well
-- as timers and survive restarts; so does the lateness histogram.
--
-- Rows of tenants the acting role may not see are left out of the user,
-- transition, timer and message families (as in lifecycle.retention_report,
-- lifecycle.overdue, lifecycle.comms and lifecycle.dead_letters); each is
-- grouped by tenant first so the visibility check runs once per tenant,
-- not once per row.  The workers are not per tenant.

CREATE VIEW lifecycle.metrics AS
WITH counted AS MATERIALIZED (
	-- lifecycle.counts and the deltas not folded yet (67_counts.sql).
	SELECT c.family, c.tenant, c.key1, c.key2,
		   sum(c.n)::bigint AS n, sum(c.held)::bigint AS held
	  FROM (SELECT k.family, k.tenant, k.key1, k.key2, k.n, k.held
			  FROM lifecycle.counts k
			UNION ALL
			SELECT d.family, d.tenant, d.key1, d.key2, d.n, d.held
			  FROM lifecycle.count_deltas d) c
	 GROUP BY c.family, c.tenant, c.key1, c.key2
	HAVING sum(c.n) <> 0
), visible AS MATERIALIZED (
	SELECT c.* FROM counted c WHERE lifecycle._tenant_visible(c.tenant)
), policy_workflows AS MATERIALIZED (
	-- Each policy's workflow (one per policy, whatever the version).
	SELECT DISTINCT ON (p.name) p.name AS policy, p.workflow
	  FROM lifecycle.policies p
	 ORDER BY p.name, p.version DESC
), lapsed AS MATERIALIZED (
	-- Held users whose hold has lapsed (users_hold_until): not held.
	SELECT u.tenant, u.policy, u.state::text AS state, count(*) AS users
	  FROM lifecycle.users u
	 WHERE u.held AND u.hold_until <= @extschema@.lifecycle_now()
	 GROUP BY u.tenant, u.policy, u.state
), visible_states AS MATERIALIZED (
	SELECT c.tenant, c.key1 AS policy, c.key2 AS state, c.n AS users,
		   c.held - coalesce(l.users, 0) AS held,
		   coalesce(pw.workflow, '') AS workflow
	  FROM visible c
	  LEFT JOIN lapsed l
		ON l.tenant = c.tenant AND l.policy = c.key1 AND l.state = c.key2
	  LEFT JOIN policy_workflows pw ON pw.policy = c.key1
	 WHERE c.family = 'users'
), transitions AS MATERIALIZED (
	-- key2: the workflow of the instance that wrote the history rows
	SELECT c.key1 AS event, c.key2 AS workflow, sum(c.n) AS n
	  FROM visible c
	 WHERE c.family = 'events'
	 GROUP BY c.key1, c.key2
	HAVING sum(c.n) <> 0
), late AS MATERIALIZED (
	-- The lateness of timers (at - due_at) counted per bucket as history
	-- rows are written (family "lateness": key1 the least bucket that
	-- holds it, held the sum in microseconds).
	SELECT c.key1 AS le, sum(c.n) AS n, sum(c.held) AS us
	  FROM visible c
	 WHERE c.family = 'lateness'
	 GROUP BY c.key1
), lateness AS MATERIALIZED (
	SELECT coalesce(sum(l.n), 0) AS timers,
		   coalesce(sum(l.us), 0) / 1000000.0 AS late_sum,
		   coalesce(sum(l.n) FILTER (WHERE l.le = '1'), 0) AS le_1,
		   coalesce(sum(l.n) FILTER (WHERE l.le IN ('1', '10')), 0) AS le_10,
		   coalesce(sum(l.n) FILTER (WHERE l.le IN ('1', '10', '60')), 0) AS le_60,
		   coalesce(sum(l.n) FILTER (WHERE l.le IN ('1', '10', '60', '300')), 0) AS le_300,
		   coalesce(sum(l.n) FILTER (WHERE l.le IN ('1', '10', '60', '300',
				'3600')), 0) AS le_3600,
		   coalesce(sum(l.n) FILTER (WHERE l.le IN ('1', '10', '60', '300',
				'3600', '86400')), 0) AS le_86400
	  FROM late l
), group_timers AS MATERIALIZED (
	-- Per group of visible users (from the counts), index-only counts:
	-- due timers of users not on hold (users_group_next_at) and users past
	-- their deadline by over a minute under no hold in force, the set of
	-- lifecycle.violations (users_group_deadline_at, which includes held
	-- and hold_until): work in proportion to the late users, not to all.
	-- The clock is an index condition (read once per probe; the planner
	-- sees its value, so it expects few rows and plans no JIT).
	SELECT c.tenant, coalesce(pw.workflow, '') AS workflow, t.due, t.oldest,
		   v.violations
	  FROM visible c
	  LEFT JOIN policy_workflows pw ON pw.policy = c.key1
	 CROSS JOIN LATERAL (
		SELECT count(*) AS due, min(u.next_at) AS oldest
		  FROM lifecycle.users u
		 WHERE u.tenant = c.tenant AND u.policy = c.key1
		   AND u.state = c.key2
		   AND u.next_at <= @extschema@.lifecycle_now() AND NOT u.held) t
	 CROSS JOIN LATERAL (
		SELECT count(*) AS violations
		  FROM lifecycle.users u
		 WHERE u.tenant = c.tenant AND u.policy = c.key1
		   AND u.state = c.key2
		   AND u.deadline_at < @extschema@.lifecycle_now() - interval '1 minute'
		   AND NOT (u.held AND (u.hold_until IS NULL
				OR u.hold_until > @extschema@.lifecycle_now()))) v
	 WHERE c.family = 'users'
), lapsed_due AS MATERIALIZED (
	-- Held users whose hold has lapsed and whose timer is due (few:
	-- users_hold_until).
	SELECT u.tenant, u.workflow, count(*) AS due, min(u.next_at) AS oldest
	  FROM lifecycle.users u
	 WHERE u.held AND u.hold_until <= @extschema@.lifecycle_now()
	   AND u.next_at <= @extschema@.lifecycle_now()
	   AND lifecycle._tenant_visible(u.tenant)
	 GROUP BY u.tenant, u.workflow
), visible_due AS MATERIALIZED (
	SELECT g.tenant, g.workflow, g.due AS overdue, g.oldest FROM group_timers g
	UNION ALL
	SELECT l.tenant, l.workflow, l.due, l.oldest FROM lapsed_due l
), workflow_timers AS MATERIALIZED (
	-- Per workflow of a visible group: due timers and violations.
	SELECT w.workflow, sum(w.overdue) AS overdue, sum(w.violations) AS violations
	  FROM (SELECT d.workflow, d.overdue, 0 AS violations FROM visible_due d
			UNION ALL
			SELECT g.workflow, 0, g.violations FROM group_timers g) w
	 GROUP BY w.workflow
), outbox AS MATERIALIZED (
	SELECT c.key1 AS channel, c.key2 AS status, sum(c.n) AS messages
	  FROM visible c
	 WHERE c.family = 'messages'
	 GROUP BY c.key1, c.key2
	HAVING sum(c.n) <> 0
), workers AS MATERIALIZED (
	SELECT w.* FROM lifecycle._worker_stats() w
), otel AS MATERIALIZED (
	SELECT o.* FROM lifecycle._otel_stats() o
)
SELECT 'lifecycle_state_users'::text AS name,
	   pg_catalog.jsonb_build_object('tenant', s.tenant, 'policy', s.policy,
									 'state', s.state,
									 'workflow', s.workflow) AS labels,
	   s.users::float8 AS value
  FROM visible_states s
UNION ALL
SELECT 'lifecycle_state_held',
	   pg_catalog.jsonb_build_object('tenant', s.tenant, 'policy', s.policy,
									 'state', s.state, 'workflow', s.workflow),
	   s.held::float8
  FROM visible_states s
UNION ALL
SELECT 'lifecycle_transitions_total',
	   pg_catalog.jsonb_build_object('event', t.event, 'workflow', t.workflow),
	   t.n::float8
  FROM transitions t
UNION ALL
SELECT 'lifecycle_timer_lateness_seconds_bucket',
	   pg_catalog.jsonb_build_object('le', b.le), b.n::float8
  FROM lateness l
 CROSS JOIN LATERAL (VALUES ('1', l.le_1), ('10', l.le_10), ('60', l.le_60),
							('300', l.le_300), ('3600', l.le_3600),
							('86400', l.le_86400), ('+Inf', l.timers)) b(le, n)
UNION ALL
SELECT 'lifecycle_timer_lateness_seconds_sum', '{}'::jsonb, l.late_sum::float8
  FROM lateness l
UNION ALL
SELECT 'lifecycle_timer_lateness_seconds_count', '{}'::jsonb, l.timers::float8
  FROM lateness l
UNION ALL
SELECT 'lifecycle_timers_overdue', '{}'::jsonb,
	   coalesce(sum(d.overdue), 0)::float8
  FROM visible_due d
UNION ALL
SELECT 'lifecycle_timers_lag_seconds', '{}'::jsonb,
	   coalesce(extract(epoch FROM @extschema@.lifecycle_now() - min(d.oldest)), 0)::float8
  FROM visible_due d
UNION ALL
SELECT 'lifecycle_timers_violations', '{}'::jsonb,
	   coalesce(sum(g.violations), 0)::float8
  FROM group_timers g
UNION ALL
SELECT 'lifecycle_workflow_timers_overdue',
	   pg_catalog.jsonb_build_object('workflow', w.workflow), w.overdue::float8
  FROM workflow_timers w
UNION ALL
SELECT 'lifecycle_workflow_timers_violations',
	   pg_catalog.jsonb_build_object('workflow', w.workflow), w.violations::float8
  FROM workflow_timers w
UNION ALL
SELECT 'lifecycle_outbox_messages',
	   pg_catalog.jsonb_build_object('channel', o.channel, 'status', o.status),
	   o.messages::float8
  FROM outbox o
UNION ALL
SELECT 'lifecycle_dead_letters',
	   pg_catalog.jsonb_build_object('channel', o.channel),
	   o.messages::float8
  FROM outbox o
 WHERE o.status = 'dead'
UNION ALL
SELECT 'lifecycle_worker_up', pg_catalog.jsonb_build_object('worker', w.worker),
	   (w.pid IS NOT NULL)::int::float8
  FROM workers w
UNION ALL
SELECT 'lifecycle_worker_pid', pg_catalog.jsonb_build_object('worker', w.worker),
	   coalesce(w.pid, 0)::float8
  FROM workers w
UNION ALL
SELECT 'lifecycle_worker_batches_total',
	   pg_catalog.jsonb_build_object('worker', w.worker), w.batches::float8
  FROM workers w
UNION ALL
SELECT 'lifecycle_worker_transitions_total',
	   pg_catalog.jsonb_build_object('worker', w.worker), w.done::float8
  FROM workers w
UNION ALL
SELECT 'lifecycle_worker_failed_total',
	   pg_catalog.jsonb_build_object('worker', w.worker), w.failed::float8
  FROM workers w
UNION ALL
SELECT 'lifecycle_worker_errors_total',
	   pg_catalog.jsonb_build_object('worker', w.worker), w.errors_total::float8
  FROM workers w
UNION ALL
SELECT 'lifecycle_worker_lag_seconds',
	   pg_catalog.jsonb_build_object('worker', w.worker),
	   coalesce(extract(epoch FROM w.lag), 0)::float8
  FROM workers w
UNION ALL
SELECT 'lifecycle_otel_spans_exported_total', '{}'::jsonb, o.spans_exported::float8
  FROM otel o
UNION ALL
SELECT 'lifecycle_otel_spans_dropped_total', '{}'::jsonb, o.spans_dropped::float8
  FROM otel o
UNION ALL
SELECT 'lifecycle_otel_failed_requests_total', '{}'::jsonb, o.failed_requests::float8
  FROM otel o;


COMMENT ON VIEW lifecycle.metrics IS
	'One row per Prometheus sample (name, labels, value); see contrib/prometheus-postgres-exporter/.';

GRANT SELECT ON lifecycle.metrics TO lifecycle_auditor;
