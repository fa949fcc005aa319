-- Every view and metric covers every workflow and names it (issue 18):
-- violations, overdue, retention_report, comms gain a workflow column
-- after their 0.2.0 columns, metrics a workflow label (and the timer
-- families per workflow), holds stays one row per held subject and names
-- the workflows of their held instances.
\set SHOW_CONTEXT never
SET timezone = 'UTC';

-- The new columns come last: 0.2.0's queries see the columns they knew.
SELECT c.relname, array_agg(a.attname::text ORDER BY a.attnum) AS columns
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
 WHERE c.relnamespace = 'lifecycle'::regnamespace
   AND c.relname IN ('violations', 'overdue', 'holds', 'retention_report', 'comms')
   AND a.attnum > 0
 GROUP BY c.relname ORDER BY 1;

\set review '{"params": {"every": "1 day", "notice": ["1 hour"]}, "messages": {"review_due": {"subject": "Access review", "text": "Review."}}, "states": {"granted": {"timer": {"event": "review_due", "after": "every", "to": "lapsed", "message": "review_due", "deadline": "review", "reminders": {"before": "notice", "event": "review_reminder"}}}, "lapsed": {"timer": {"event": "purge_due", "after": "1 day", "from": "due", "to": "erased"}}}, "events": {"grant": [{"from": ["none", "lapsed"], "to": "granted"}]}}'
SELECT lifecycle_define_workflow('t77_review', :'review') AS version;

-- Subject a: the user lifecycle and two reviews; subject b: one review.
SELECT lifecycle_invite('a', 'a@example.com', 't77') > 0 AS invited;
SELECT lifecycle_start('t77_review', 'a', 't77') > 0 AS started;
SELECT lifecycle_start('t77_review', 'a', 't77', key => 'k2') > 0 AS started;
SELECT lifecycle_start('t77_review', 'b', 't77', email => 'b@example.com') > 0 AS started;

-- retention_report: each group names its policy's workflow.
SELECT policy, state, users, workflow FROM lifecycle.retention_report
 WHERE tenant = 't77' ORDER BY workflow, state;
-- metrics: the state families carry the workflow label.
SELECT labels ->> 'workflow' AS workflow, labels ->> 'policy' AS policy,
	   labels ->> 'state' AS state, value
  FROM lifecycle.metrics
 WHERE name = 'lifecycle_state_users' AND labels ->> 'tenant' = 't77'
 ORDER BY 1, 3;
-- ... and every sample of them agrees with the report, workflow included.
SELECT count(*) AS mismatches
  FROM lifecycle.retention_report r
  FULL JOIN (SELECT labels ->> 'tenant' AS tenant, labels ->> 'policy' AS policy,
					labels ->> 'state' AS state, labels ->> 'workflow' AS workflow,
					value
			   FROM lifecycle.metrics WHERE name = 'lifecycle_state_users') m
	ON m.tenant = r.tenant AND m.policy = r.policy AND m.state = r.state::text
 WHERE m.value IS DISTINCT FROM r.users::float8
	OR m.workflow IS DISTINCT FROM r.workflow;
-- The group's workflow is its instances' own.
SELECT count(*) AS wrong_workflow
  FROM lifecycle.retention_report r
 WHERE EXISTS (SELECT 1 FROM lifecycle.users u
				WHERE u.tenant = r.tenant AND u.policy = r.policy
				  AND u.state = r.state AND u.workflow <> r.workflow);

-- holds: one row per held subject, naming the workflows of the held
-- instances.  Subject a's user instance is held, then review instances
-- as well (set directly: this tests the view, not lifecycle_hold()).
UPDATE lifecycle.users SET held = true, hold_reason = 'litigation'
 WHERE tenant = 't77' AND subject = 'a' AND workflow = 'user';
SELECT subject, state, reason, workflows FROM lifecycle.holds WHERE tenant = 't77';
UPDATE lifecycle.users SET held = true, hold_reason = 'litigation'
 WHERE tenant = 't77' AND subject IN ('a', 'b') AND workflow = 't77_review';
SELECT subject, state, reason, workflows FROM lifecycle.holds
 WHERE tenant = 't77' ORDER BY subject;
-- The 0.2.0 columns of a subject with a held user instance are that
-- instance's.
SELECT h.id = u.id AS user_instance
  FROM lifecycle.holds h JOIN lifecycle.users u
	ON u.tenant = h.tenant AND u.subject = h.subject AND u.workflow = 'user'
 WHERE h.tenant = 't77';
-- A hold whose until has passed is not in force: that instance's workflow
-- is no longer named.
UPDATE lifecycle.users SET hold_until = lifecycle_now() - interval '1 second'
 WHERE tenant = 't77' AND subject = 'a' AND workflow = 't77_review';
SELECT subject, workflows FROM lifecycle.holds WHERE tenant = 't77' ORDER BY subject;
UPDATE lifecycle.users SET held = false, hold_reason = NULL, hold_until = NULL
 WHERE tenant = 't77' AND workflow = 't77_review';
SELECT subject, workflows FROM lifecycle.holds WHERE tenant = 't77' ORDER BY subject;

-- Past the reviews' deadline, no tick: overdue and violations list each
-- instance with its workflow (a's user instance is held: in neither).
SELECT rt.travel('1 day 1 hour') IS NOT NULL AS travelled;
SELECT subject, state, next_event, workflow FROM lifecycle.overdue
 WHERE tenant = 't77' ORDER BY subject, id;
SELECT subject, state, deadline_event, workflow FROM lifecycle.violations
 WHERE tenant = 't77' ORDER BY subject, id;
SELECT policy, state, violations, workflow FROM lifecycle.retention_report
 WHERE tenant = 't77' ORDER BY workflow, state;
-- The per-workflow timer families sum to the totals and agree with the
-- views, workflow by workflow.
SELECT labels ->> 'workflow' AS workflow, value AS overdue
  FROM lifecycle.metrics WHERE name = 'lifecycle_workflow_timers_overdue'
   AND labels ->> 'workflow' = 't77_review';
SELECT count(*) AS overdue_mismatches
  FROM (SELECT workflow, count(*) AS n FROM lifecycle.overdue GROUP BY 1) v
  FULL JOIN (SELECT labels ->> 'workflow' AS workflow, value
			   FROM lifecycle.metrics
			  WHERE name = 'lifecycle_workflow_timers_overdue' AND value > 0) m
	USING (workflow)
 WHERE m.value IS DISTINCT FROM v.n::float8;
SELECT count(*) AS violation_mismatches
  FROM (SELECT workflow, count(*) AS n FROM lifecycle.violations GROUP BY 1) v
  FULL JOIN (SELECT labels ->> 'workflow' AS workflow, value
			   FROM lifecycle.metrics
			  WHERE name = 'lifecycle_workflow_timers_violations' AND value > 0) m
	USING (workflow)
 WHERE m.value IS DISTINCT FROM v.n::float8;
SELECT (SELECT sum(value) FROM lifecycle.metrics
		 WHERE name = 'lifecycle_workflow_timers_overdue')
	   = (SELECT value FROM lifecycle.metrics WHERE name = 'lifecycle_timers_overdue')
	   AS overdue_sums,
	   (SELECT sum(value) FROM lifecycle.metrics
		 WHERE name = 'lifecycle_workflow_timers_violations')
	   = (SELECT value FROM lifecycle.metrics WHERE name = 'lifecycle_timers_violations')
	   AS violations_sum;

-- comms: the reviews' messages are counted under their workflow.
SELECT lifecycle_tick() > 0 AS ticked;
SELECT count(*) AS comms_mismatches
  FROM (SELECT u.workflow, o.status, count(*) AS n
		  FROM lifecycle.outbox o JOIN lifecycle.users u ON u.id = o.user_id
		 GROUP BY 1, 2) o
  FULL JOIN (SELECT workflow, status, sum(messages) AS n
			   FROM lifecycle.comms GROUP BY 1, 2) c USING (workflow, status)
 WHERE o.n IS DISTINCT FROM c.n;
SELECT workflow, sum(messages) > 0 AS has_messages FROM lifecycle.comms
 WHERE workflow = 't77_review' GROUP BY 1;

-- A role limited to another tenant sees none of it.
CREATE ROLE t77_auditor IN ROLE lifecycle_auditor;
SELECT lifecycle_grant_tenant('t77_auditor', 't77_elsewhere');
SET ROLE t77_auditor;
SELECT (SELECT count(*) FROM lifecycle.retention_report WHERE tenant = 't77') AS report,
	   (SELECT count(*) FROM lifecycle.holds WHERE tenant = 't77') AS holds,
	   (SELECT count(*) FROM lifecycle.metrics
		 WHERE name = 'lifecycle_workflow_timers_overdue'
		   AND labels ->> 'workflow' = 't77_review') AS workflow_samples;
RESET ROLE;
DELETE FROM lifecycle.tenant_grants WHERE role_name = 't77_auditor';
DROP ROLE t77_auditor;

-- Clean up: release and erase a; the reviews run out by their timers.
SELECT lifecycle_release('a', 't77') IS NOT NULL AS released;
SELECT lifecycle_erase('a', 't77', 'test cleanup') > 0 AS erased;
SELECT rt.travel('2 days') IS NOT NULL AS travelled;
SELECT lifecycle_tick() >= 0 AS ticked;
SELECT count(*) AS live FROM lifecycle.users WHERE tenant = 't77' AND state <> 'erased';
-- The reviews' messages go too (unrouted: no channel), leaving the outbox
-- as later tests expect it.
WITH d AS (DELETE FROM lifecycle.outbox o USING lifecycle.users u
			WHERE u.id = o.user_id AND u.tenant = 't77' RETURNING 1)
SELECT count(*) > 0 AS messages_removed FROM d;
-- The lifecycle clock goes back to where it was, so that the files after
-- this one see the clock they expect.
SELECT rt.travel('-3 days -1 hour') = interval '-3 days -1 hour' AS travelled_back;
