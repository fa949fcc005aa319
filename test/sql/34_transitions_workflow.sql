-- lifecycle_transitions_total names the workflow (issue 18: every metric
-- names it, as the state families do): one sample per event and
-- workflow, from the counts kept as they change (the events family keyed
-- by the workflow of the instance); the exporter's query passes the
-- label on (contrib/prometheus-postgres-exporter/lifecycle-queries.yaml).
\set SHOW_CONTEXT never
SET timezone = 'UTC';

CREATE TEMP TABLE m0 AS SELECT * FROM lifecycle.metrics
 WHERE name = 'lifecycle_transitions_total';

-- A subject with the user lifecycle and a request, held and released
-- (hold and release in both workflows), the request answered.
SELECT lifecycle_invite('w1', 'w1@example.com', 't34w') > 0 AS invited;
SELECT lifecycle_start('dsar', 'w1', 't34w', key => 'k') > 0 AS started;
SELECT lifecycle_hold('w1', 't34w', 'audit');
SELECT lifecycle_release('w1', 't34w');
SELECT lifecycle_signal('dsar', 'w1', 'answer', 't34w', 'k') AS answered;

-- What this file did, by workflow and event.
SELECT m.labels ->> 'workflow' AS workflow, m.labels ->> 'event' AS event,
	   m.value - coalesce(b.value, 0) AS delta
  FROM lifecycle.metrics m
  LEFT JOIN m0 b ON b.name = m.name AND b.labels = m.labels
 WHERE m.name = 'lifecycle_transitions_total'
   AND m.value - coalesce(b.value, 0) <> 0
 ORDER BY 1, 2;
-- Every sample has both labels, and equals a full count of history.
SELECT count(*) FILTER (WHERE NOT (labels ? 'event' AND labels ? 'workflow')) AS unlabelled,
	   count(*) FILTER (WHERE labels - 'event' - 'workflow' <> '{}') AS other_labels
  FROM lifecycle.metrics WHERE name = 'lifecycle_transitions_total';
SELECT count(*) AS mismatches
  FROM (SELECT labels ->> 'event' AS event, labels ->> 'workflow' AS workflow, value
		  FROM lifecycle.metrics WHERE name = 'lifecycle_transitions_total') m
  FULL JOIN (SELECT h.event, coalesce(u.workflow, '') AS workflow, count(*)::float8 AS n
			   FROM lifecycle.history h LEFT JOIN lifecycle.users u ON u.id = h.user_id
			  GROUP BY 1, 2) f
	ON f.event = m.event AND f.workflow = m.workflow
 WHERE m.value IS DISTINCT FROM f.n;
-- Still after the deltas are folded.
SELECT lifecycle_tick() >= 0 AS ticked;
SELECT count(*) AS mismatches
  FROM (SELECT labels ->> 'event' AS event, labels ->> 'workflow' AS workflow, value
		  FROM lifecycle.metrics WHERE name = 'lifecycle_transitions_total') m
  FULL JOIN (SELECT h.event, coalesce(u.workflow, '') AS workflow, count(*)::float8 AS n
			   FROM lifecycle.history h LEFT JOIN lifecycle.users u ON u.id = h.user_id
			  GROUP BY 1, 2) f
	ON f.event = m.event AND f.workflow = m.workflow
 WHERE m.value IS DISTINCT FROM f.n;

-- Nothing of this file is left running.
SELECT lifecycle_erase('w1', 't34w') > 0 AS erased;
