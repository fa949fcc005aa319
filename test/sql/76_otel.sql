-- OpenTelemetry (issue 19): the settings, the trace id of instances, the
-- traceparent kept with history, and what the exporter reads.  The export
-- itself runs against a real receiver in test/t/270_otel_traces.pl and
-- 271_otel_faults.pl.

-- Settings: export is off by default; the endpoint must be an http(s) URL
-- (lifecycle.otel_headers, superuser-only, is checked in
-- test/t/270_otel_traces.pl).
SELECT name, setting, context FROM pg_settings
 WHERE name IN ('lifecycle.otel_endpoint', 'lifecycle.otel_service_name',
				'lifecycle.traceparent')
 ORDER BY name;
SET lifecycle.otel_endpoint = 'http://collector:4318';	-- sighup: refused here
\set VERBOSITY terse
ALTER SYSTEM SET lifecycle.otel_endpoint = 'ftp://collector/';
\set VERBOSITY default
SELECT count(*) AS visible_to_superuser FROM pg_settings WHERE name = 'lifecycle.otel_headers';

-- Every instance gets its own random trace id when it starts.
SELECT lifecycle_invite('ot1', 'ot1@example.com', 't76') > 0 AS invited,
	   lifecycle_invite('ot2', 'ot2@example.com', 't76') > 0 AS invited;
SELECT count(DISTINCT trace_id) AS distinct_trace_ids,
	   bool_and(trace_id::text !~ '^0+-0+-0+-0+-0+$') AS none_zero
  FROM lifecycle.users WHERE tenant = 't76';

-- history.traceparent: NULL unless the application set one, per
-- transaction (SET LOCAL).
BEGIN;
SET LOCAL lifecycle.traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
SELECT lifecycle_register('ot1', 't76');
COMMIT;
SHOW lifecycle.traceparent;
SELECT lifecycle_register('ot2', 't76');
SELECT u.subject, h.event, h.traceparent
  FROM lifecycle.history h JOIN lifecycle.users u ON u.id = h.user_id
 WHERE u.tenant = 't76' ORDER BY h.id;

-- Malformed values: a WARNING (not echoing the value), the setting stays
-- empty, the call goes on.
BEGIN;
SET LOCAL lifecycle.traceparent = 'ot2@example.com';
SHOW lifecycle.traceparent;
SELECT lifecycle_complete('ot2', 't76');
COMMIT;
SET lifecycle.traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01';
SET lifecycle.traceparent = 'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
SET lifecycle.traceparent = '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01';
SET lifecycle.traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra';
-- A later version may append fields.
SET lifecycle.traceparent = '01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra';
SHOW lifecycle.traceparent;
RESET lifecycle.traceparent;
SELECT h.event, h.traceparent IS NULL AS no_traceparent
  FROM lifecycle.history h JOIN lifecycle.users u ON u.id = h.user_id
 WHERE u.tenant = 't76' AND h.event = 'complete';

-- What the exporter reads: the workflow named once, no personal data.
SELECT t.workflow, t.event, t.from_state, t.to_state, t.policy,
	   t.trace_id = replace(u.trace_id::text, '-', '') AS instance_trace,
	   t.traceparent IS NOT NULL AS app_trace
  FROM lifecycle._otel_transitions t JOIN lifecycle.users u ON u.id = t.instance_id
 WHERE u.tenant = 't76' ORDER BY t.id;
SELECT a.attname FROM pg_attribute a
 WHERE a.attrelid = 'lifecycle._otel_transitions'::regclass AND a.attnum > 0
   AND a.attname IN ('subject', 'email', 'attrs', 'detail', 'payload');

-- Counters: in worker_stats (the exporter's row) and lifecycle.metrics.
SELECT worker, spans_exported_total IS NOT NULL AS has_span_counters
  FROM lifecycle.worker_stats ORDER BY worker;
SELECT name, labels FROM lifecycle.metrics
 WHERE name LIKE 'lifecycle\_otel\_%' OR name LIKE 'lifecycle\_timer\_lateness%'
 ORDER BY name, (labels ->> 'le') = '+Inf', nullif(labels ->> 'le', '+Inf')::float8;
-- The histogram: cumulative buckets, +Inf = count.
SELECT bool_and(b.value <= c.value) AS buckets_within_count,
	   max(b.value) FILTER (WHERE b.labels ->> 'le' = '+Inf') = max(c.value) AS inf_is_count
  FROM lifecycle.metrics b, lifecycle.metrics c
 WHERE b.name = 'lifecycle_timer_lateness_seconds_bucket'
   AND c.name = 'lifecycle_timer_lateness_seconds_count';
-- Earlier files fired timers with lifecycle_tick(): they are counted.
SELECT value > 0 AS timers_counted FROM lifecycle.metrics
 WHERE name = 'lifecycle_timer_lateness_seconds_count';

-- Auditors read the counters; the application does not.
SET ROLE lifecycle_auditor;
SELECT spans_dropped >= 0 AS auditor_reads FROM lifecycle._otel_stats();
RESET ROLE;
SET ROLE lifecycle_app;
SELECT * FROM lifecycle._otel_stats();
SELECT * FROM lifecycle.otel_cursor;
RESET ROLE;
