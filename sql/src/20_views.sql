-- lifecycle: views for DBAs and auditors.  None shows e-mail or attrs;
-- rows of tenants the acting role is not granted are hidden.
--
-- The views hide other tenants' rows with lifecycle._tenant_visible():
-- as security barriers, so that a caller's own (leaky) function in a WHERE
-- clause cannot be pushed below that filter and see hidden rows.

-- A hold is in force while held and its until (if any) lies ahead: a hold
-- whose until has passed counts as lapsed in every view and metric at
-- once, whether or not the worker has written its hold_lapse yet.

-- Per tenant, policy and state: how many, since when, what falls due next,
-- the earliest retention deadline and how many are past it (violations).
-- The groups and their counts come from lifecycle.counts and the deltas
-- not folded yet (67_counts.sql: exact, without reading the users); the
-- tenant filter runs once per group (OFFSET 0 keeps it below the rest);
-- then per group one probe of users_group_since, users_group_next_at and
-- users_group_deadline_at for the earliest times, an index-only count of
-- the users past their deadline under no hold in force (the set of
-- lifecycle.violations; users_group_deadline_at includes held and
-- hold_until), and the few users whose hold has lapsed (users_hold_until),
-- grouped once.  The clock is an index condition (read once per probe;
-- the planner sees its value, so it expects few late rows and plans no
-- JIT).  The group's workflow (0.3.0, after the 0.2.0 columns) is its
-- policy's (a policy belongs to one workflow): one probe of the policies'
-- primary key per group.
CREATE VIEW lifecycle.retention_report WITH (security_barrier) AS
WITH lapsed AS MATERIALIZED (
	-- Held users whose hold has lapsed: not held for every column below.
	SELECT u.tenant, u.policy, u.state, count(*) AS users,
		   min(u.next_at) AS next_due
	  FROM lifecycle.users u
	 WHERE u.held AND u.hold_until <= @extschema@.lifecycle_now()
	 GROUP BY u.tenant, u.policy, u.state
)
SELECT g.tenant, g.policy, g.state, g.users,
	   (SELECT min(u.state_since) FROM lifecycle.users u
		 WHERE u.tenant = g.tenant AND u.policy = g.policy
		   AND u.state = g.state) AS oldest_since,
	   LEAST((SELECT min(u.next_at) FROM lifecycle.users u
			   WHERE u.tenant = g.tenant AND u.policy = g.policy
				 AND u.state = g.state AND u.next_at IS NOT NULL AND NOT u.held),
			 l.next_due) AS next_due,
	   g.held - coalesce(l.users, 0) AS held,
	   (SELECT min(u.deadline_at) FROM lifecycle.users u
		 WHERE u.tenant = g.tenant AND u.policy = g.policy
		   AND u.state = g.state AND u.deadline_at IS NOT NULL) AS next_deadline,
	   (SELECT count(*) FROM lifecycle.users u
		 WHERE u.tenant = g.tenant AND u.policy = g.policy AND u.state = g.state
		   AND u.deadline_at < @extschema@.lifecycle_now() - interval '1 minute'
		   AND NOT (u.held AND (u.hold_until IS NULL
				OR u.hold_until > @extschema@.lifecycle_now()))) AS violations,
	   (SELECT p.workflow FROM lifecycle.policies p
		 WHERE p.name = g.policy
		 ORDER BY p.version DESC LIMIT 1) AS workflow
  FROM (SELECT c.tenant, c.key1 AS policy, c.key2 AS state,
			   sum(c.n)::bigint AS users, sum(c.held)::bigint AS held
		  FROM (SELECT k.tenant, k.key1, k.key2, k.n, k.held
				  FROM lifecycle.counts k WHERE k.family = 'users'
				UNION ALL
				SELECT d.tenant, d.key1, d.key2, d.n, d.held
				  FROM lifecycle.count_deltas d WHERE d.family = 'users') c
		 GROUP BY c.tenant, c.key1, c.key2
		HAVING sum(c.n) <> 0
		OFFSET 0) g
  LEFT JOIN lapsed l
	ON l.tenant = g.tenant AND l.policy = g.policy AND l.state = g.state
 WHERE lifecycle._tenant_visible(g.tenant);

-- Timers due but not fired (worker down or behind, or a transition that
-- keeps failing: see last_error).  A lapsed hold's hold_lapse is one.
-- The work is one range of users_next_at and one heap visit per row
-- listed, and no function call per row (issue 20: a call of the SECURITY
-- DEFINER lifecycle_now() or _tenant_visible() costs more than the row):
-- the clock is an index condition (read once per scan; the planner sees
-- its value) and an InitPlan elsewhere; the tenant filter is
-- _tenants_unlimited() once, _tenant_visible() per row only for a role
-- limited to some tenants.
CREATE VIEW lifecycle.overdue WITH (security_barrier) AS
SELECT u.id, u.tenant, u.subject, u.state, u.next_event, u.next_at AS due_at,
	   (SELECT @extschema@.lifecycle_now()) - u.next_at AS overdue_by,
	   u.retries, u.retry_at, u.last_error, u.workflow
  FROM lifecycle.users u
 WHERE u.next_at <= @extschema@.lifecycle_now()
   AND NOT (u.held AND (u.hold_until IS NULL
			OR u.hold_until > (SELECT @extschema@.lifecycle_now())))
   AND ((SELECT lifecycle._tenants_unlimited())
		OR lifecycle._tenant_visible(u.tenant));

-- Subjects kept past their policy: the retention deadline of their state
-- (users.deadline_at, whatever reminder is pending) passed more than a
-- minute ago, and no hold in force.  Empty while the worker is healthy.
-- Two ranges, each read whole by its partial index and nothing else:
-- users_deadline_at for users not on hold (its predicate is the first
-- branch's "NOT held", its range the deadline), users_hold_until for held
-- users whose hold has lapsed.  No function call per row, as in
-- lifecycle.overdue: the work is one heap visit per row listed.  The union
-- is a subquery of the view, not the view itself: PostgreSQL flattens a
-- view that is a bare UNION ALL into its branches, and the caller's
-- (leaky) WHERE clause would then run before the tenant filter.
CREATE VIEW lifecycle.violations WITH (security_barrier) AS
SELECT v.* FROM (
	SELECT u.id, u.tenant, u.subject, u.policy, u.policy_version, u.state,
		   u.deadline_event, u.deadline_at,
		   (SELECT @extschema@.lifecycle_now()) - u.deadline_at AS overdue_by,
		   u.next_event, u.next_at, u.last_error, u.workflow
	  FROM lifecycle.users u
	 WHERE NOT u.held
	   AND u.deadline_at < @extschema@.lifecycle_now() - interval '1 minute'
	   AND ((SELECT lifecycle._tenants_unlimited())
			OR lifecycle._tenant_visible(u.tenant))
	UNION ALL
	SELECT u.id, u.tenant, u.subject, u.policy, u.policy_version, u.state,
		   u.deadline_event, u.deadline_at,
		   (SELECT @extschema@.lifecycle_now()) - u.deadline_at AS overdue_by,
		   u.next_event, u.next_at, u.last_error, u.workflow
	  FROM lifecycle.users u
	 WHERE u.held AND u.hold_until <= @extschema@.lifecycle_now()
	   AND u.deadline_at < (SELECT @extschema@.lifecycle_now()) - interval '1 minute'
	   AND ((SELECT lifecycle._tenants_unlimited())
			OR lifecycle._tenant_visible(u.tenant))) v;

-- Legal holds in force (a lapsed hold is not, even before its hold_lapse
-- is written), one row per held subject: the columns of 0.2.0 are those of
-- the subject's held user instance (else of their held instance started
-- first); workflows (0.3.0) names the workflows of every held instance of
-- the subject, sorted, each once.  Holds are few: the held rows come from
-- users_hold_until and the subject's instances from users_tenant_subject.
CREATE VIEW lifecycle.holds WITH (security_barrier) AS
SELECT u.id, u.tenant, u.subject, u.state, u.hold_reason AS reason,
	   u.hold_until AS until, p.at AS held_since, p.actor AS held_by,
	   CASE WHEN u.subject IS NULL THEN ARRAY[u.workflow]
	   ELSE ARRAY(SELECT DISTINCT w.workflow FROM lifecycle.users w
				   WHERE w.tenant = u.tenant AND w.subject = u.subject
					 AND w.held AND (w.hold_until IS NULL
						 OR w.hold_until > @extschema@.lifecycle_now())
				   ORDER BY w.workflow) END AS workflows
  FROM (SELECT DISTINCT ON (h.tenant, h.subject,
							CASE WHEN h.subject IS NULL THEN h.id END) h.*
		  FROM lifecycle.users h
		 WHERE h.held AND (h.hold_until IS NULL
			   OR h.hold_until > @extschema@.lifecycle_now())
		   AND lifecycle._tenant_visible(h.tenant)
		 ORDER BY h.tenant, h.subject,
				  CASE WHEN h.subject IS NULL THEN h.id END,
				  h.workflow <> 'user', h.id) u
  -- When and by whom the subject's hold was placed: of the latest hold
  -- row of each of its held instances, the earliest (an instance started
  -- while the subject was held took the hold later, from the call that
  -- started it).  One instance: its latest hold row, as in 0.2.0.
  LEFT JOIN LATERAL (
	SELECT l.at, l.actor
	  FROM lifecycle.users w
	 CROSS JOIN LATERAL (SELECT h.at, h.id, h.actor FROM lifecycle.history h
						  WHERE h.user_id = w.id AND h.event = 'hold'
						  ORDER BY h.at DESC, h.id DESC LIMIT 1) l
	 WHERE w.id = u.id
		OR (u.subject IS NOT NULL AND w.tenant = u.tenant AND w.subject = u.subject
			AND w.held AND (w.hold_until IS NULL
				OR w.hold_until > @extschema@.lifecycle_now()))
	 ORDER BY l.at, l.id LIMIT 1) p ON true;

-- The workers, from shared memory (no rows' pids without preloading).
CREATE VIEW lifecycle.worker_stats AS
SELECT s.worker, s.pid, s.started, s.last_wake, s.batches,
	   s.done AS transitions_total, s.failed AS failed_total,
	   s.errors_total, s.last_error, s.last_error_at, s.lag AS current_lag,
	   o.spans_exported AS spans_exported_total,
	   o.spans_dropped AS spans_dropped_total,
	   o.failed_requests AS export_failed_requests_total
  FROM lifecycle._worker_stats() s
  LEFT JOIN lifecycle._otel_stats() o ON s.worker = 'exporter';
